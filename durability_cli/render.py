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


def fmt(x) -> str:
    """A score in four significant digits; n/a for None and NaN."""
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{x:.4g}"


def render_warnings(console: Console, lines: list[str], limit: int = 10) -> None:
    for line in lines[:limit]:
        console.print(f"[yellow]Warning:[/] {line}", highlight=False, soft_wrap=True)
    if len(lines) > limit:
        console.print(f"[yellow]Warning:[/] ... and {len(lines) - limit} more", highlight=False)


def render_empty_shard(console: Console, shard: tuple[int, int], total: int, data: str) -> None:
    source = "stdin" if data == "-" else data
    console.print(
        f"shard {shard[0]}/{shard[1]} holds none of the {total} specimens of {source}; "
        "nothing to do, no output written",
        highlight=False,
    )


def render_forecast_note(console: Console, info: dict, shard: tuple[int, int] | None) -> None:
    console.print(
        f"Forecast {info['rows']} rows for {info['specimens']} specimens "
        f"({info['samples']} samples, seed {info['seed']}"
        + (f", shard {shard[0]}/{shard[1]})" if shard else ")"),
        highlight=False,
    )


class TrainProgress:
    """A rich progress bar: epoch, loss, validation RMSE, teacher forcing, time left."""

    def __init__(self, console: Console, epochs: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.epochs = epochs
        self.task = None

    def start(self, done: int):
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.epochs, completed=done, status="")

    def update(self, log):
        status = (
            f"loss {log.train_loss:.4f}  val RMSE {log.val_rmse:.4g}{' *' if log.best else '  '}  "
            f"teacher forcing {log.teacher_forcing:.2f}"
        )
        self.progress.update(self.task, completed=log.epoch, status=status)

    def stop(self):
        self.progress.stop()


class TrainLog:
    """Progress for a console that is not a terminal (a log file, CI): one plain line for the
    first epoch, then at most one every LOG_EVERY seconds, and the last one."""

    LOG_EVERY = 10.0

    def __init__(self, console: Console, epochs: int):
        self.console, self.epochs = console, epochs
        self.last = None
        self.started = 0.0

    def start(self, done: int):
        import time

        self.started = time.monotonic()

    def update(self, log):
        import time

        now = time.monotonic()
        if self.last is not None and now - self.last < self.LOG_EVERY and log.epoch < self.epochs:
            return
        self.last = now
        self.console.print(
            f"epoch {log.epoch}/{self.epochs}  loss {log.train_loss:.4f}  val RMSE {log.val_rmse:.4g}"
            f"{' (best)' if log.best else ''}  teacher forcing {log.teacher_forcing:.2f}  "
            f"{now - self.started:.0f} s",
            highlight=False,
            soft_wrap=True,
        )

    def stop(self):
        pass


def render_train_start(console: Console, info: dict, chunk_specimens: int) -> None:
    """The line before the first epoch: specimens, warm-up, parameters, processes, groups."""
    console.print(
        f"Training on {info['n_train']} specimens, validating on {info['n_val']} "
        f"(free run after {info['context']} rows); {info['parameters']:,} parameters"
        + (f"; {info['processes']} processes" if info["processes"] > 1 else "")
        + (
            f"; {chunk_specimens} specimens at a time ({info['groups']} groups)"
            if info.get("groups", 1) > 1
            else ""
        )
        + (f"; resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""),
        highlight=False,
    )


def render_train_summary(console: Console, bundle, output: str) -> None:
    s = bundle.summary
    table = Table(title=f"Trained {output}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    m = bundle.model_config
    table.add_row(
        "model",
        f"{m.cell.upper()} {m.layers}x{m.hidden}, lags {m.lags}, {m.loss}, "
        f"{'residual' if m.residual else 'level'}, monotonic {m.monotonic}; {s['parameters']:,} parameters",
    )
    table.add_row("specimens", f"{len(s['train_specimens'])} train, {len(s['val_specimens'])} validation")
    table.add_row("epochs", f"{s['epochs_run']} run, best {s['best_epoch']} ({s['stopped']})")
    table.add_row(
        "validation RMSE",
        f"{fmt(s['best_val_rmse'])} free-running after {s['val_context']} rows "
        f"(persistence: {fmt(s['val_persistence_rmse'])})",
    )
    table.add_row("time", f"{s['train_seconds']:.1f} s")
    console.print(table)


def render_evaluation(console: Console, report: dict) -> None:
    table = Table(title="Backtest", title_justify="left")
    for col in ("model", "RMSE", "MAE", "bias", "MASE", "skill (RMSE)", "80% coverage", "EOL error"):
        table.add_column(col, justify="right" if col != "model" else "left")
    skill = report.get("skill", {})
    for name, m in report["models"].items():
        cov = (m.get("coverage") or {}).get("80")
        eol = (m.get("eol") or {}).get("mae")
        table.add_row(
            name,
            fmt(m.get("rmse")),
            fmt(m.get("mae")),
            fmt(m.get("bias")),
            fmt(m.get("mase")),
            "" if name == "model" else fmt(skill.get(name)),
            "" if cov is None else f"{cov:.0%}",
            "" if eol is None else fmt(eol),
        )
    console.print(table)
    console.print(
        f"{report.get('n_specimens')} specimens, {report.get('n_origins')} cut-off(s) each; "
        "skill = 1 - RMSE_model / RMSE_baseline",
        highlight=False,
    )


def render_model(console: Console, info: dict, title: str) -> None:
    """Show ``artifact.describe_bundle``: columns, hyper-parameters, training summary, ranges."""
    s = info["summary"]
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    sch = info["schema"]
    table.add_row(
        "format", f"{info['format']} v{info['format_version']} (durability {info['package_version']})"
    )
    table.add_row("columns", f"id {sch['id_col']}, time {sch['time_col']}, target {sch['target']}")
    table.add_row("conditions", ", ".join(sch["covariates"]) or "none")
    table.add_row("static", ", ".join(sch.get("static", [])) or "none")
    table.add_row("model", ", ".join(f"{k}={v}" for k, v in info["model_config"].items()))
    table.add_row("training", ", ".join(f"{k}={v}" for k, v in info["train_config"].items()))
    table.add_row("parameters", f"{info['parameters']:,}")
    if info["model_config"].get("latent"):
        spread = ", ".join(f"{v:.3g}" for v in s.get("latent_train_std", []))
        table.add_row(
            "latent",
            f"z of size {info['model_config']['latent']} per specimen, fitted to each warm-up "
            f"(prior weight {info['model_config']['latent_prior']:g}); spread of the training "
            f"specimens' z (sd per dimension): {spread or 'n/a'}",
        )
    table.add_row(
        "trained on", f"{s.get('source')}: {s.get('n_specimens')} specimens, {s.get('n_rows')} rows"
    )
    table.add_row(
        "validation RMSE",
        f"{fmt(s.get('best_val_rmse'))} (persistence {fmt(s.get('val_persistence_rmse'))}), "
        f"best epoch {s.get('best_epoch')} of {s.get('epochs_run')}",
    )
    for name, (lo, hi) in s.get("envelope", {}).items():
        table.add_row(f"range {name}", f"{lo:.4g} .. {hi:.4g}")
    console.print(table)


class TrainReport:
    """Training progress on ``console``: the notes and the start line, then a bar on a terminal,
    or a plain line at most every LOG_EVERY seconds in a log file or CI; nothing when ``quiet``.
    ``with TrainReport(...) as report`` stops the bar however training ends."""

    def __init__(self, console: Console, run, *, quiet: bool):
        self.console, self.chunk, self.quiet = console, run.train_config.chunk_specimens, quiet
        epochs = run.train_config.epochs
        self.progress = (
            None if quiet else (TrainProgress if console.is_terminal else TrainLog)(console, epochs)
        )
        for note in [] if quiet else run.notes:
            console.print(f"[dim]{note}[/]", highlight=False)

    def start(self, info: dict) -> None:
        if self.progress:
            render_train_start(self.console, info, self.chunk)
            self.progress.start(info["start_epoch"])

    def epoch(self, log) -> None:
        if self.progress:
            self.progress.update(log)

    def __enter__(self) -> TrainReport:
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()
