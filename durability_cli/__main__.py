from durability_cli.cli import main

main()
