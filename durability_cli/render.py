"""Rich tables for the terminal. Everything here prints on the console it is given (stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _num(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.6g}"


def render_schema(console: Console, info: dict) -> None:
    """Show a ``schema.describe`` dict: a row per column (role, gaps, range), then a summary."""
    roles = info["roles"]
    role_of = {
        roles["id"]: "specimen id" + (" (none in file: one specimen)" if roles["id_synthetic"] else "")
    }
    role_of[roles["time"]] = "time (dates)" if roles["time_is_datetime"] else "time"
    role_of[roles["target"]] = "target"
    role_of.update({c: "condition" for c in roles["covariates"]})
    role_of.update({c: "static" for c in roles["static"]})

    table = Table(title=Text(f"Columns of {info['source']}"), title_justify="left")
    table.add_column("column")
    table.add_column("role")
    table.add_column("missing", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    n_rows = info["n_rows"] or 1
    for col, role in role_of.items():
        missing = info["missing"].get(col, 0)
        share = f"{missing:,} ({100 * missing / n_rows:.0f}%)" if missing else "0"
        rng = info["ranges"].get(col) or (info["time_range"] if col == roles["time"] else {})
        table.add_row(Text(col), role, share, _num(rng.get("min")), _num(rng.get("max")))
    console.print(table)

    lengths, spacing = info["lengths"], info["spacing"]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("rows", f"{info['n_rows']:,}")
    summary.add_row("specimens", f"{info['n_specimens']:,}")
    summary.add_row(
        "rows per specimen", f"{lengths['min']} to {lengths['max']} (median {lengths['median']:g})"
    )
    if spacing["median_dt"] is not None:
        kind = (
            "regular"
            if spacing["regular"]
            else f"irregular in {spacing['n_irregular_specimens']} specimen(s)"
        )
        summary.add_row(
            "time step",
            f"{_num(spacing['min_dt'])} to {_num(spacing['max_dt'])} {spacing['unit']} "
            f"(median {_num(spacing['median_dt'])}); {kind}",
        )
    summary.add_row("measured durability", f"{info['n_observed_target']:,} of {info['n_rows']:,} rows")
    console.print(summary)
    for note in info["notes"]:
        console.print(Text(f"- {note}", style="dim"))
