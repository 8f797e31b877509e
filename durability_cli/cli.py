"""The `durability` command line: parse options, call one library function, render.

No model or table logic lives here. Data goes to stdout; progress, logs and tables go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from durability_cli import __version__
from durability_cli.errors import DurabilityError

app = typer.Typer(
    name="durability",
    help="Forecast how the durability of materials decays under changing conditions.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

# Shared options, defined once and reused by every command that reads a table.
DataArg = Annotated[str, typer.Argument(help="Input table: .csv, .csv.gz, .parquet, a folder of Parquet files, or - for stdin.")]
IdCol = Annotated[Optional[str], typer.Option("--id-col", help="Specimen id column (default: auto-detect specimen_id, specimen, series_id, unit, id).", rich_help_panel="Columns")]
TimeCol = Annotated[Optional[str], typer.Option("--time-col", help="Time column (default: auto-detect time, cycle, step, day, t, or a datetime column).", rich_help_panel="Columns")]
TargetCol = Annotated[Optional[str], typer.Option("--target", help="Measured durability column (default: durability).", rich_help_panel="Columns")]
Covariates = Annotated[Optional[str], typer.Option("--covariates", help="Comma-separated condition columns (default: every other numeric column).", rich_help_panel="Columns")]
Static = Annotated[Optional[str], typer.Option("--static", help="Comma-separated per-specimen constant columns (material, batch, ...).", rich_help_panel="Columns")]
Fmt = Annotated[Optional[str], typer.Option("--format", help="Input format when it cannot be told from the name: csv, parquet or jsonl.", rich_help_panel="Columns")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.", rich_help_panel="Advanced")]


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _run(debug: bool, fn):
    """Call ``fn`` and turn the project's errors into one line on stderr and an exit code."""
    try:
        return fn()
    except DurabilityError as exc:
        if debug:
            raise
        err.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None


def _quiet_broken_pipe() -> None:
    """The reader of stdout went away (`| head`): stop quietly, as Unix tools do."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(0)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"durability {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Forecast how the durability of materials decays under changing conditions."""


@app.command()
def schema(
    data: DataArg,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: TargetCol = None,
    covariates: Covariates = None,
    static: Static = None,
    fmt: Fmt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Write the description as JSON on stdout instead of a table on stderr.")] = False,
    debug: Debug = False,
) -> None:
    """Describe a table: detected column roles, specimens, lengths, spacing, missing values, ranges.

    Example:  durability schema sample_data/coating.csv
              cat sample_data/coating.csv | durability schema - --json | jq .n_specimens
    """
    from durability_cli.schema import describe, load_dataset

    def go():
        ds = load_dataset(
            data, fmt=fmt, id_col=id_col, time_col=time_col, target=target,
            covariates=_split(covariates), static=_split(static),
        )
        info = describe(ds)
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2) + "\n")
            sys.stdout.flush()
        else:
            from durability_cli.render import render_schema

            render_schema(err, info)

    _run(debug, go)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
