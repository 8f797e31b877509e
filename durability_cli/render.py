"""Rich tables for the terminal. Everything here prints on the console it is given (stderr)."""

from __future__ import annotations

import contextlib
import math

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from durability_cli.config import (
    SMALL_VALIDATION,
    RowShare,
    cut_line,
    describe_warmup,
    lopsided,
    past_at_cutoff_line,
    step_text,
    steps_differ_line,
)
from durability_cli.errors import cli_text


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
        share = f"{missing:,} ({_share(missing / n_rows)})" if missing else "0"
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
    summary.add_row(
        f"measured {roles['target']}", f"{info['n_observed_target']:,} of {info['n_rows']:,} rows"
    )
    console.print(summary)
    for note in info["notes"]:
        console.print(Text(f"- {cli_text(note)}", style="dim"))


def fmt(x) -> str:
    """A score in four significant digits; n/a for None and NaN."""
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{x:.4g}"


def _share(fraction: float) -> str:
    """A share as a percentage that a small nonzero one does not round to 0 %."""
    percent = 100 * fraction
    return (
        f"{percent:.0f}%"
        if percent >= 1 or percent == 0
        else f"{percent:.1g}%"
        if percent >= 0.1
        else "<0.1%"
    )


def render_warnings(console: Console, lines: list[str], limit: int = 10) -> None:
    for line in lines[:limit]:  # (the library's lines name arguments as `name`: flags here)
        console.print(f"[yellow]Warning:[/] {cli_text(line)}", highlight=False, soft_wrap=True)
    if len(lines) > limit:
        console.print(f"[yellow]Warning:[/] ... and {len(lines) - limit} more", highlight=False)


def render_empty_shard(console: Console, shard: tuple[int, int], total: int, data: str) -> None:
    source = "stdin" if data == "-" else data
    console.print(
        f"shard {shard[0]}/{shard[1]} holds none of the {total} specimens of {source}; "
        "nothing to do, no output written",
        highlight=False,
    )


def render_forecast_note(
    console: Console, info: dict, shard: tuple[int, int] | None, scenarios: int = 0
) -> None:
    console.print(
        f"Forecast {info['rows']} row{'' if info['rows'] == 1 else 's'} for {info['specimens']} "
        f"specimen{'' if info['specimens'] == 1 else 's'} "
        + (f"in {scenarios} scenarios " if scenarios else "")
        + f"({info['samples']} samples, seed {info['seed']}"
        + (f", shard {shard[0]}/{shard[1]})" if shard else ")"),
        highlight=False,
    )


class TrainProgress:
    """A rich progress bar: epoch, loss, validation RMSE (* = best so far), teacher forcing when
    on, elapsed time and time left; it fits an 80-column terminal (the bar takes what is left)."""

    def __init__(self, console: Console, epochs: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            expand=True,
        )
        self.epochs = epochs
        self.task = None

    def start(self, done: int):
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.epochs, completed=done, status="")

    def update(self, log):
        status = f"loss {log.train_loss:.4g}  {_val_text(log, '*' if log.best else ' ')}"
        if log.teacher_forcing > 0:
            status += f" tf {log.teacher_forcing:.2f}"
        self.progress.update(self.task, completed=log.epoch, status=status)

    def stop(self):
        self.progress.stop()


class ForecastProgress:
    """On a terminal, a line that counts the specimens the network has run, with the time so far,
    shown once a run has taken a second (a quick forecast prints nothing) and cleared at its end;
    nothing on a console that is not a terminal (a pipeline's stderr, a log). Use as a context
    manager around the run: ``with ForecastProgress(err, "forecast"):``."""

    DELAY = 1.0

    def __init__(self, console: Console, what: str, quiet: bool = False):
        self.console, self.what, self.quiet = console, what, quiet
        self.progress = self.task = None
        self.done, self.started = 0, 0.0

    def __enter__(self) -> ForecastProgress:
        import time

        from durability_cli.forecasting import reporting

        self.started = time.monotonic()
        shown = self.console.is_terminal and not self.quiet
        self._reporting = reporting(self.add) if shown else contextlib.nullcontext()
        self._reporting.__enter__()
        return self

    def add(self, n: int) -> None:
        import time

        self.done += n
        if self.progress is None and time.monotonic() - self.started >= self.DELAY:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn(f"{self.what}: {{task.completed:,}} specimen run(s)"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.what, total=None)
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done, refresh=True)

    def __exit__(self, *exc) -> None:
        self._reporting.__exit__(*exc)
        if self.progress is not None:
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
            f"epoch {log.epoch}/{self.epochs}  loss {log.train_loss:.4f}  {_val_text(log, ' (best)' if log.best else '')}"
            f"  teacher forcing {log.teacher_forcing:.2f}  "
            f"{now - self.started:.0f} s",
            highlight=False,
            soft_wrap=True,
        )

    def stop(self):
        pass


def _val_text(log, best: str) -> str:
    """An epoch's validation RMSE for the progress ("refit, no validation" in a --refit-all refit,
    which validates on nothing: its RMSE is NaN)."""
    return f"val RMSE {log.val_rmse:.4g}{best}" if math.isfinite(log.val_rmse) else "refit, no validation"


def warmup_text(block: dict, key: str) -> str:
    """'6 rows' or '0.333 of each specimen's rows': a summary's or start line's warm-up
    (training.warmup_fields)."""
    share = block.get(f"{key}_frac")
    return describe_warmup(RowShare(share) if share else block.get(key))


LINE_CANDIDATES = ("Without the warm-up's line (1 of 2)", "With the warm-up's line (2 of 2)")


def _beside_text(info: dict) -> str:
    """How the start line ends: where a resumed run starts, and for --trend-line auto's candidates
    or an ensemble's members trained at the same time (aside.py) which process trains which and
    how far the second got."""
    if "beside" in info:  # the second candidate, shown once the first is done
        return f"; trained at the same time in a second process, {info['beside']} epoch(s) done"
    resumed = f"; resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""
    if info.get("line_beside"):
        return resumed + "; the line's candidate trains at the same time in a second process"
    if others := info.get("members_beside"):  # an ensemble's members split among processes
        return resumed + _shares_beside(others, "train")
    return resumed


def _shares_beside(others: list[list[int]], verb: str) -> str:
    """'; member(s) 2, 4 train at the same time in a second process': the members (numbered from
    1) each other process trains."""
    which = "; ".join(", ".join(map(str, share)) for share in others)
    where = "a second process" if len(others) == 1 else f"{len(others)} other processes"
    return f"; member(s) {which} {verb} at the same time in {where}"


def _refit_beside_text(info: dict) -> str:
    """How a --refit-all start line ends where the members refit in several processes."""
    if "beside" in info:  # a member a child refitted, shown once this process's share is done
        return f"; refitted at the same time in a second process, {info['beside']} epoch(s) done"
    if others := info.get("refit_beside"):
        return _shares_beside(others, "refit")
    return ""


def render_train_start(console: Console, info: dict, chunk_specimens: int) -> None:
    """The line before the first epoch: specimens, warm-up, parameters, processes, groups."""
    if info.get("refit_member"):  # --refit-all: each member again on every specimen (refit_all.py)
        console.print(
            f"Refitting member {info['refit_member']} of {info['members']} on all {info['n_train']} specimens, "
            f"to epoch {info['refit_epochs']} (as its validation chose)" + _refit_beside_text(info),
            highlight=False,
        )
        return
    if info.get("stacked"):  # the members train together: one line for all (numbers: each member's)
        member = f"Ensemble of {info['members']} members trained together, each: "
    else:
        member = f"Ensemble member {info['member']} of {info['members']}: " if info.get("members") else ""
    if info.get("line_candidate"):  # --trend-line auto trains two candidates (line_choice.py)
        member = f"{LINE_CANDIDATES[info['line_candidate'] - 1]}: {member}"
    console.print(
        f"{member}Training on {info['n_train']} specimens, "
        + (
            f"validating on {info['n_val']} (free run after {warmup_text(info, 'context')}"
            + (
                f"; only {info['n_val_scored']} of them longer than that, and scored"
                if info.get("n_val_scored", info["n_val"]) < info["n_val"]
                else ""
            )
            + ")"
            if info["n_val"]
            else "none held out to validate on (--val-fraction 0, or fewer than 4 specimens): the scores "
            "below, and the epoch they choose, are the training specimens' own (free-running)"
        )
        + f"; {info['parameters']:,} parameters"
        + (f"; {info['processes']} processes" if info["processes"] > 1 else "")
        + (
            f"; {chunk_specimens} specimens at a time ({info['groups']} groups)"
            if info.get("groups", 1) > 1
            else ""
        )
        + _beside_text(info),
        highlight=False,
    )


def _time_text(s: dict) -> str:
    """The summary's time: the training's, and where runs trained at the same time in several
    processes (aside.py) the wall time it took, with what trained at once."""
    wall = s.get("trend_line_wall_seconds")
    if wall is not None:
        return f"{wall:.1f} s ({s['train_seconds']:.1f} s of training: the two candidates at the same time)"
    ensemble = s.get("ensemble") or {}
    if ensemble.get("processes", 1) > 1:
        return (
            f"{ensemble['wall_seconds']:.1f} s ({s['train_seconds']:.1f} s of training: the members in "
            f"{ensemble['processes']} processes at the same time)"
        )
    return f"{s['train_seconds']:.1f} s"


def render_train_summary(console: Console, bundle, output: str) -> None:
    s = bundle.summary
    table = Table(title=f"Trained {output}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    m = bundle.model_config
    extras = ", trend line" if m.trend_line else ", trend input" if m.trend else ""
    table.add_row(
        "model",
        f"{m.cell.upper()} {m.layers}x{m.hidden}, lags {m.lags}, {m.loss}, "
        f"{'residual' if m.residual else 'level'}, monotonic {m.monotonic}{extras}; {s['parameters']:,} parameters",
    )
    table.add_row("specimens", f"{len(s['train_specimens'])} train, {len(s['val_specimens'])} validation")
    if refit := refit_text(s, len(bundle.members)):
        table.add_row("refit", refit)
    if paces := warp_text(s):
        table.add_row("warp", paces)
    auto = f"; {s['length_auto']}" if s.get("length_auto") else ""
    table.add_row("epochs", f"{s['epochs_run']} run, best {s['best_epoch']} ({s['stopped']}){auto}")
    table.add_row(
        f"{scored_on(s)} RMSE",
        f"{fmt(s['best_val_rmse'])} free-running after {warmup_text(s, 'val_context')} "
        f"(persistence: {fmt(s['val_persistence_rmse'])})",
    )
    baselines = s.get("val_baseline_rmse") or {}
    if baselines:
        table.add_row("baselines", _baseline_text(baselines, s))
    if path := path_text(s, bundle.schema.covariates, bundle.schema.target):
        table.add_row("path", path)
    if bundle.train_config.combine != "none":
        table.add_row("combine", combine_text(s))
    if s.get("latent_val_rmse_population") is not None:
        table.add_row("latent", latent_text(s))
    if s.get("ensemble") or s.get("ensemble_auto"):
        table.add_row("ensemble", ensemble_row(s))
    if s.get("trend_line_auto"):
        table.add_row("trend line", s["trend_line_auto"])
    if s.get("latent_auto"):
        table.add_row("latent choice", s["latent_auto"])
    if band := band_text(s):
        table.add_row("band", band)
    if pace := _pace_text([m.summary for m in bundle.members]):
        table.add_row("end-of-life pace", pace)
    if base := s.get("fine_tuned_from"):
        table.add_row("fine-tuned from", fine_tuned_text(base))
    table.add_row("time", _time_text(s))
    console.print(table)
    render_warnings(console, training_warnings(bundle))
    for note in ensemble_notes(s, bundle.train_config.ensemble):
        console.print(f"[dim]{note}[/]", highlight=False, soft_wrap=True)


_AUTO_ZERO = ("val_context", "epochs", "ensemble")  # options whose 0 means "chosen automatically"


def _option(key: str, value) -> str:
    """An option's value as inspect shows it: an empty one as none, a 0 that means automatic so."""
    if value == "" or value is None:
        return "none"
    if key in _AUTO_ZERO and value == 0:
        return "0 (auto)"
    return str(value)


def fine_tuned_text(base: dict) -> str:
    """Where a --init-from model's weights came from (summary["fine_tuned_from"])."""
    return f"{base['model']} (trained on {base.get('source')}: {base.get('n_specimens')} specimens)"


def refit_text(summary: dict, members: int) -> str:
    """What --refit-all did after validation chose the epochs ('' without it)."""
    block = summary.get("refit_all") or {}
    if block.get("skipped"):
        return f"--refit-all skipped: {block['skipped']}"
    if not block:
        return ""
    who = f"each of the {members} members" if members > 1 else "the model"
    seconds = summary.get("refit_all_seconds", block["seconds"])
    took = f"in {seconds:.1f} s"
    if summary.get("refit_all_processes", 1) > 1:  # shared among processes (refit_all.py)
        took = (
            f"in {summary['refit_all_wall_seconds']:.1f} s ({seconds:.1f} s of training, in "
            f"{summary['refit_all_processes']} processes at the same time)"
        )
    return (
        f"{who} trained again on all {block['specimens']} specimens to the epoch its validation chose, "
        f"{took} (--refit-all); the validation rows are from before it"
    )


def warp_text(summary: dict) -> str:
    """What --warp did to the training specimens ('' without it)."""
    block = summary.get("warp") or {}
    if block.get("skipped"):
        return f"--warp not applied: {block['skipped']}"
    if not block:
        return ""
    lo, hi = block["paces"]
    return (
        f"each epoch, every training specimen read at a pace of its own, {lo:g}-{hi:g} x as measured (--warp)"
    )


def _pace_text(summaries: list[dict]) -> str:
    from durability_cli.eol_warp import text

    return text(summaries)


def band_text(summary: dict) -> str:
    """How training set the band's width: the scale head refitted to the training specimens'
    free-running errors (how wide its 80 % band was against what they needed, before and after),
    then the validation's factor (scale_refit.py, training.scale_calibration); for an ensemble
    the range over its members; a latent model's also the factor on its z paths' spread. "" for
    models without a refit (point models, --no-refit-scale, files from before it)."""
    members = summary.get("ensemble") or {}
    refits = members.get("scale_refit") or [summary.get("scale_refit")]
    factors = members.get("scale_calibration") or [summary.get("scale_calibration")]
    refits = [r for r in refits if r]
    if not refits:
        return ""

    def span(values, digits: int = 2) -> str:
        lo, hi = min(values), max(values)
        return (
            f"{lo:.{digits}f}"
            if round(lo, digits) == round(hi, digits)
            else f"{lo:.{digits}f}-{hi:.{digits}f}"
        )

    who = f"{len(refits)} members' scale heads" if len(refits) > 1 else "scale head"
    rows = sum(r["rows"] for r in refits)
    widened = span([f for f in factors if f is not None] or [1.0])
    # a factor f (the width that would hold 80 %) means the band was 1 / f x what the errors needed;
    # f = 0: the training specimens' errors were (mostly) zero, and needed no band at all
    sized = [r for r in refits if r["factor_before"] > 0 and r["factor_after"] > 0]
    fit = (
        f"the 80 % band was {span([1 / r['factor_before'] for r in sized])} x as wide as they needed, "
        f"now {span([1 / r['factor_after'] for r in sized])} x"
        if sized
        else "they were zero on most rows"
    )
    spreads = [r["latent_spread"] for r in refits if "latent_spread" in r]
    z_paths = f", the spread of z's draws x {span(spreads)}" if spreads else ""
    return (
        f"{who} refitted to the training specimens' free-running errors ({rows:,} rows){z_paths}: "
        f"{fit}; then widened x {widened} on the {scored_on(summary)} specimens"
    )


def latent_text(summary: dict) -> str:
    """A latent model's validation RMSE with each specimen's z fitted to its warm-up (how it
    forecasts) beside the same with z = 0 for every specimen (the population's forecast)."""
    return (
        f"validation RMSE {fmt(summary.get('best_val_rmse'))} with each specimen's z fitted to its "
        f"warm-up, {fmt(summary.get('latent_val_rmse_population'))} with z = 0 (the population's forecast)"
    )


def training_warnings(bundle) -> list[str]:
    """What train says of a trained model after its summary (``Model.warnings`` in Python): a
    baseline that beat it, a latent on short warm-ups, a run that ended while still improving, a
    monotonic constraint against the data."""
    s = bundle.summary
    out = baseline_warnings(s) + latent_warnings(s) + epoch_warnings(s, bundle.train_config.epochs)
    return out + monotonic_warnings(s, bundle.model_config.monotonic)


def latent_warnings(summary: dict) -> list[str]:
    """A line when the population's forecast (z = 0) beat the fitted z on the validation specimens,
    and one when a latent given by number fits warm-ups shorter than latent_choice's measured
    MIN_WARMUP_ROWS."""
    from durability_cli.latent_choice import MIN_WARMUP_ROWS

    out = []
    if (rows := summary.get("latent_short_warmup")) is not None:
        out.append(
            f"`latent` fits each specimen's hidden factors to its warm-up, and validation warms up on "
            f"{rows:g} rows (median); measured, a latent gained from about {MIN_WARMUP_ROWS} rows and was "
            "level or worse below (docs/TRAINING.md): compare with `latent` 0 on held-out specimens"
        )
    fitted, population = summary.get("best_val_rmse"), summary.get("latent_val_rmse_population")
    if fitted is None or population is None or population >= fitted:
        return out
    return out + [
        f"fitting z to the warm-ups did not help the validation specimens (RMSE {fmt(fitted)} with it, "
        f"{fmt(population)} with z = 0): train once without `latent` and compare, or give longer warm-ups"
    ]


def _went_against(summary: dict, down: bool | None) -> tuple[int, int, str] | None:
    """(how many training specimens went against a ``down``ward (else upward) setting, how many
    went either way, what they did) from ``summary["target_direction"]`` (first measurement to
    last), where most did; None otherwise (or ``down`` None: no setting)."""
    moves = summary.get("target_direction") or {}
    rising, falling = moves.get("rising", 0), moves.get("falling", 0)
    against = None if down is None else rising if down else falling
    if against is None or against <= (rising + falling) / 2:
        return None
    return against, rising + falling, "rose" if down else "fell"


def monotonic_warnings(summary: dict, monotonic: str) -> list[str]:
    """A line when --monotonic forces the steps one way and most training specimens went the other
    (measured higher at their end than at their start, for decreasing)."""
    found = _went_against(summary, {"decreasing": True, "increasing": False}.get(monotonic))
    if found is None:
        return []
    against, n, went = found
    other = "increasing" if monotonic == "decreasing" else "decreasing"
    return [
        f"`monotonic` {monotonic} forces every step {'down' if monotonic == 'decreasing' else 'up'}, but "
        f"{against} of the {n} specimens {went} from their first measurement to their last: "
        f"drop `monotonic`, or use `monotonic` {other}"
    ]


def direction_warnings(summary: dict, threshold: float | None, direction: str) -> list[str]:
    """A line when an end of life is sought with --direction against most training specimens'
    own direction (``above`` where they fell from their first measurement to their last, or
    ``below`` where they rose): a crossing that way comes, if at all, from noise."""
    found = (
        None if threshold is None else _went_against(summary, {"below": True, "above": False}.get(direction))
    )
    out = [] if threshold is None else threshold_warnings(summary, threshold)
    if found is None:
        return out
    against, n, went = found
    other = "below" if direction == "above" else "above"
    return [
        f"`direction` {direction} seeks where the target first goes {direction} {threshold:g}, but {against} "
        f"of the {n} training specimens {went} from their first measurement to their "
        f"last: check `direction` (the other way is {other})",
        *out,
    ]


def threshold_warnings(summary: dict, threshold: float) -> list[str]:
    """A line when the end-of-life threshold lies outside every value measured in training
    (``target_range``): each crossing is then where the forecast runs beyond what the model saw
    fed back, an extrapolation (its rows are flagged `extrapolated`)."""
    seen = summary.get("target_range")
    if not seen or seen[0] <= threshold <= seen[1]:
        return []
    lo, hi = seen
    side = "below" if threshold < lo else "above"
    return [
        f"the threshold {threshold:g} lies {side} every value measured in training [{lo:.4g}, {hi:.4g}]: "
        "every end of life is an extrapolation of the model past its data; check it on held-out "
        "specimens that reached the threshold (evaluate)"
    ]


def epoch_warnings(summary: dict, epochs: int) -> list[str]:
    """A line when training ran out of epochs while the validation RMSE was still improving (the
    best epoch in the last tenth of the run): the cosine learning rate had already decayed."""
    best, run = summary.get("best_epoch"), summary.get("epochs_run")
    if not best or run != epochs or summary.get("stopped") != "max epochs" or best < max(2, 0.9 * run):
        return []
    return [
        f"the {scored_on(summary)} RMSE was still improving at the end (best epoch {best} of {run}): train longer, "
        f"e.g. `epochs` {2 * run}; the learning rate decays over `epochs`, so a longer run is not the "
        "same as more of this one"
    ]


def ensemble_notes(summary: dict, ensemble: int) -> list[str]:
    """A note when a single model was chosen on a few validation specimens (``--ensemble 1``):
    an ensemble of several seeds (each its own split) measured far steadier on such data. The
    automatic choice says the same in its own row."""
    n_val = len(summary.get("val_specimens") or [])
    if ensemble > 1 or summary.get("ensemble_auto") or not 0 < n_val < SMALL_VALIDATION:
        return []
    return [
        f"Note: the best epoch was chosen on {n_val} validation specimens, so this model depends on which "
        "ones they are; --ensemble 5 trains 5 seeds, each with its own split, and averages them (on the "
        "measured Device-B set: test RMSE 0.122 +/- 38% over seeds alone, 0.090 +/- 8% as ensembles of 5)"
    ]


def ensemble_row(summary: dict) -> str:
    """The ensemble row: the members, then how ``--ensemble 0`` (auto) chose them."""
    parts = [ensemble_text(summary["ensemble"])] if summary.get("ensemble") else []
    if summary.get("ensemble_auto"):
        parts.append(summary["ensemble_auto"])
    return "; ".join(parts)


def ensemble_text(block: dict) -> str:
    """An ensemble's members in one line: how many, their seeds, validation RMSEs and best epochs
    (a member kept at its first epochs never improved on its validation specimens)."""
    scores = [v for v in block.get("best_val_rmse", []) if v is not None]
    epochs = block.get("best_epoch") or []
    seeds = ", ".join(str(v) for v in block.get("seeds", []))
    if block.get("val_select") == "joint" and scores and epochs:  # one epoch, one criterion for all
        return (
            f"{block.get('members')} members (seeds {seeds}); one epoch for all (--val-select joint): "
            f"epoch {epochs[0]}, where the mean of the members' validation RMSEs, each on its own "
            f"validation specimens, was lowest: {fmt(sum(scores) / len(scores))} "
            f"({' / '.join(fmt(v) for v in scores)})"
        )
    mean = f", mean {fmt(sum(scores) / len(scores))}" if scores else ""
    best = f"; best epochs {' / '.join('?' if v is None else str(v) for v in epochs)}" if epochs else ""
    return (
        f"{block.get('members')} members (seeds {seeds}); "
        f"validation RMSE {' / '.join(fmt(v) for v in block.get('best_val_rmse', []))}{mean}, "
        f"each on its own validation specimens (the rows above are member 1's){best}"
    )


def combine_text(s: dict) -> str:
    """``--combine mixed_effects``: the weights the forecast averages with, or why it has none."""
    w = (s.get("mixed_effects") or {}).get("weight")
    if w is None:
        return "mixed_effects asked for, but no path could be fitted or scored: the forecast is the model's alone"
    return (
        f"forecast = {w:.3g} x the model + {1 - w:.3g} x the mixed-effects path (inverse squared "
        "validation RMSE; paths, quantiles and end of life move with the mean)"
    )


def path_text(s: dict, covariates: list[str], target: str = "durability") -> str | None:
    """The mixed-effects path's use of the conditions (mixed_effects.py), or None where it reads
    none: each condition's effect on the decay, or how much faster it runs the specimen's clock."""
    block = s.get("mixed_effects") or {}
    for key, values, say in (
        ("conditions", "effect", lambda e: f"{e:+.3g}"),
        ("accelerated", "rate", lambda r: f"x{math.exp(r):.4g}"),
    ):
        if (fit := block.get(key)) is not None:
            each = ", ".join(
                f"{name} {say(v)} (mean {c:.4g})"
                for name, c, v in zip(covariates, fit["centre"], fit[values], strict=False)
            )
            break
    else:
        return None
    if key == "conditions":
        return (
            f"mixed effects: degree {block['degree']}; each unit of a condition above its mean changes "
            f"{target} by this much over {block['tau']:.4g} time units: {each}"
        )
    return (
        f"mixed effects: degree {block['degree']} on the conditions' clock, which each unit of a "
        f"condition above its mean runs faster by {each}"
    )


def scored_on(summary: dict) -> str:
    """What training's free-running scores were taken on: "validation", or where no specimen was
    held out (--val-fraction 0, fewer than 4 specimens) "training": the same specimens it fit."""
    return "training" if summary.get("val_specimens", None) == [] else "validation"


def _baseline_text(baselines: dict, summary: dict) -> str:
    return ", ".join(f"{name} {fmt(v)}" for name, v in baselines.items()) + (
        f" ({scored_on(summary)} RMSE, same warm-up)"
    )


def _member_means(block: dict) -> tuple[float | None, dict]:
    """An ensemble's members' mean validation RMSE and each baseline's mean, every member scored
    on its own validation specimens (None / {} where a member lacks the score)."""
    models = block.get("best_val_rmse") or []
    baselines = block.get("val_baseline_rmse") or []
    if not models or any(v is None for v in models):
        return None, {}
    means = {}
    for name in (baselines[0] or {}) if baselines else ():  # member 1's order, as for one model
        values = [(b or {}).get(name) for b in baselines]
        if all(v is not None for v in values):
            means[name] = sum(values) / len(values)
    return sum(models) / len(models), means


def baseline_warnings(summary: dict) -> list[str]:
    """A line when a baseline forecast the validation specimens better than the model; for an
    ensemble, the means over its members, each on its own validation specimens (member 1's
    split alone is the luck the ensemble averages away)."""
    block = summary.get("ensemble") or {}
    if block.get("val_baseline_rmse"):
        model, scored = _member_means(block)
        what = f"beats the {block.get('members')} members on their own validation specimens (mean "
    else:
        model = summary.get("best_val_rmse")
        scored = {k: v for k, v in (summary.get("val_baseline_rmse") or {}).items() if v is not None}
        what = "beats the model ("
    if model is None or not scored:
        return []
    name, best = min(scored.items(), key=lambda kv: kv[1])
    if best >= model:
        return []
    return [
        f"the {name} baseline ({scored_on(summary)} RMSE {fmt(best)}) {what}{fmt(model)}); try "
        "`durability tune`, a smaller model (`hidden` 32 `layers` 1), `weight_decay` 1e-4, a longer "
        "`val_context`, or more specimens; and check evaluate --baselines on held-out data"
    ]


# The evaluation table: a row per score, a column per model. Keys the report adds later show up
# as rows named after the key; these only give the known ones a readable label and an order.
# A dict of numbers (a score per interval level) is one row: "{}" takes its keys, "90/80/50".
_SCORES = {
    "rmse": "RMSE",
    "mae": "MAE",
    "bias": "bias (pred - truth)",
    "mase": "MASE",
    "skill": "skill vs baseline",
    "skill_interval": "skill p{:g}/p{:g}",
    "better_on": "specimens won",
    "crps": "CRPS",
    "coverage": "coverage {}%",
    "band_sides": "under/over 80% band",
    "interval_width": "width {}%",
    "smape": "sMAPE %",
    "mape": "MAPE %",
    "n": "points scored",
}
_EOL = {
    "n": "forecasts scored",
    "truth_crosses": "truth crosses",
    "truth_censored": "truth censored",
    "pred_crosses": "forecast crosses",
    "both_cross": "both cross",
    "mae": "EOL MAE",
    "bias": "EOL bias",
    "mae_lower_bound": "EOL MAE incl. censored, ≥",
    "interval_coverage": "EOL {:.0%} interval covers",
    "interval_n": "intervals decided",
    "interval_undetermined": "undetermined",
    "interval_sides": "misses early/late",
    "already_past": "past at cut-off",
    "unmeasured": "no truth to score",
}
_PROGNOSTICS = {
    "n_specimens": "specimens",
    "alpha_lambda": "α-λ accuracy",
    "prognostic_horizon": "prognostic horizon",
    "prognostic_horizon_relative": "relative horizon",
    "ph_found": "horizon found",
}
# Not on the terminal (still in the JSON): per-step arrays (lists are never shown), pinball per
# quantile and the interval score (CRPS sums them up), the 2x2 end-of-life counts (shown as
# truth / forecast crossing counts), settings.
_HIDDEN = {
    "below",  # shown for the 80 % band only, beside "above" (band_sides)
    "above",
    "interval_early",  # shown together (interval_sides)
    "interval_late",
    "pinball",
    "interval_score",
    "only_pred",
    "only_true",
    "neither",
    "time_unit",
    "alpha",
    "interval_level",
}


def _eol_counts(eol: dict) -> dict:
    """The end-of-life block with the 2x2 counts read as "truth crosses / is censored, forecast
    crosses", the way the guide asks them to be read."""
    out = dict(eol)
    if {"interval_early", "interval_late"} <= eol.keys():  # which side the interval's misses fall on
        out["interval_sides"] = {"early": eol["interval_early"], "late": eol["interval_late"]}
    if {"both_cross", "only_pred", "only_true", "neither"} <= eol.keys():
        out["truth_crosses"] = eol["both_cross"] + eol["only_true"]
        out["truth_censored"] = eol["only_pred"] + eol["neither"]
        out["pred_crosses"] = eol["both_cross"] + eol["only_pred"]
    return out


def _band_sides(scores: dict) -> dict:
    """The 80 % band's misses, under it and over it, as one row (a calibrated band misses about
    10 % on each side; lopsided misses mean the forecast runs too high or too low)."""
    below, above = (scores.get(k) or {} for k in ("below", "above"))
    if "80" not in below or "80" not in above:
        return {}
    return {"band_sides": {"under": below["80"], "over": above["80"]}}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _score_text(key: str, value) -> str:
    """A cell: a count with separators, a share in percent, a score in four digits; a dict of
    them joined by "/" (shares: "92/78/46%")."""
    share = "coverage" in key or key in ("alpha_lambda", "band_sides")
    digits = 2 if key == "skill_interval" else 3  # two bounds in the width of one score
    if isinstance(value, dict):  # None: NaN in the JSON
        parts = [
            "n/a" if v is None or v != v else f"{100 * v:.0f}" if share else f"{v:.{digits}g}"
            for v in value.values()
        ]
        return "/".join(parts) + ("%" if share else "")
    if value is None:  # NaN in the JSON
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.0%}" if share and value == value else fmt(value)


def _score_rows(blocks: dict[str, dict], labels: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(label, a cell per model) for each number or dict of numbers in ``blocks`` (model name ->
    its scores), known keys first in ``labels``' order, then new ones under their own name."""
    rows = []
    for key in dict.fromkeys([*labels, *(k for b in blocks.values() for k in b)]):
        values = [b.get(key) for b in blocks.values()]
        if key in _HIDDEN or all(v is None for v in values):
            continue
        if all(v is None or _is_number(v) for v in values):
            rows.append((labels.get(key, key.replace("_", " ")), _cells(blocks, key)))
        elif all(
            v is None or (isinstance(v, dict) and all(_is_number(x) or x is None for x in v.values()))
            for v in values
        ):
            subs = "/".join(dict.fromkeys(s for v in values if v for s in v))
            label = labels.get(key, key.replace("_", " ") + " {}").format(subs)
            rows.append((label, _cells(blocks, key)))
    return rows


def _cells(blocks: dict[str, dict], key: str) -> list[str]:
    """A cell per model: blank where a model has no such score (the model's own skill)."""
    return [_score_text(key, b[key]) if key in b else "" for b in blocks.values()]


def direction_note(report: dict) -> list[str]:
    """A line when every end-of-life forecast was already past the threshold at its cut-off (so
    none is scored): the usual cause is a durability that rises with wear scored with the default
    --direction below, or the other way round."""
    eol = next(iter(report.get("models", {}).values()), {}).get("eol") or {}
    past = eol.get("already_past") or 0
    if not past or eol.get("n") or eol.get("unmeasured"):
        return []
    return [past_at_cutoff_line(report.get("direction", "below"), report.get("threshold"))]


_HEADERS = {"mixed_effects": "mixed\neffects"}


def render_evaluation(console: Console, report: dict) -> None:
    """The backtest report on one screen: a column per model (the model, then each baseline), a
    row per score, then the end-of-life and prognostics blocks when the report has them.
    Per-step arrays (``rmse_by_step``) stay in the JSON."""
    models = report.get("models", {})
    skill = report.get("skill", {})
    spread = report.get("skill_spread", {})
    scores = {
        name: {k: v for k, v in m.items() if k not in ("eol", "prognostics")}
        | _band_sides(m)
        | ({"skill": skill[name]} if name in skill else {})
        | (_spread_cells(spread[name]) if name in spread else {})
        for name, m in models.items()
    }
    level = next((b["level"] for b in spread.values()), 0.9)
    tails = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    unit = report.get("time_unit") or "time"
    unit = "time units" if unit == "time" else unit
    sections = [
        ("", _score_rows(scores, _SCORES | {"skill_interval": _SCORES["skill_interval"].format(*tails)}))
    ]
    notes = [
        ("skill = 1 - RMSE_model / RMSE_column (p5/p95: over the specimens drawn again); " if skill else "")
        + "the full report: --json, or -o FILE"
    ]
    notes += skill_notes(report)
    if any(m.get("eol") for m in models.values()):
        eol = {name: _eol_counts(m.get("eol") or {}) for name, m in models.items()}
        level = next((b["interval_level"] for b in eol.values() if _is_number(b.get("interval_level"))), 0.8)
        labels = _EOL | {"interval_coverage": _EOL["interval_coverage"].format(level)}
        sections.append(("End of life", _score_rows(eol, labels)))
        notes.append(
            f"end of life: {report.get('target', 'durability')} {report.get('direction', 'below')} "
            f"{fmt(report.get('threshold'))}; errors and horizons in {unit}"
        )
        notes += direction_note(report)
    if any(m.get("prognostics") for m in models.values()):
        prog = {name: m.get("prognostics") or {} for name, m in models.items()}
        sections.append(("Prognostics", _score_rows(prog, _PROGNOSTICS)))
        first = next(p for p in prog.values() if p)
        lambdas = "/".join(first.get("alpha_lambda", {}))
        alpha = first.get("alpha", 0)
        notes.append(f"α-λ accuracy at λ = {lambdas}: within ±{alpha:.0%} of the true remaining life")

    notes += band_notes(report)
    notes += side_notes(report)
    notes += condition_notes(report)
    notes += cut_notes(report)
    origins = report.get("n_origins")
    title = f"Backtest: {report.get('n_specimens')} specimens, {origins} cut-off{'' if origins == 1 else 's'} each"
    names = list(models)
    if _table(console, title, names, sections, check=True) is None:
        # too wide for the terminal: the rows only the models fill (band, end-of-life interval)
        # in a table of their own, without the baselines' empty columns
        from durability_cli.metrics import BASELINES
        from durability_cli.mixed_effects import NAME

        own = [i for i, name in enumerate(names) if name not in {*BASELINES, NAME}]
        shared, alone = [], []
        for heading, part in sections:
            only = [
                (label, cells)
                for label, cells in part
                if all(c == "" for i, c in enumerate(cells) if i not in own)
            ]
            shared.append((heading, [row for row in part if row not in only]))
            alone.append((heading, [(label, [cells[i] for i in own]) for label, cells in only]))
        _table(console, title, names, [x for x in shared if x[1] or not x[0]])
        _table(
            console,
            "The models' bands and end-of-life intervals",
            [names[i] for i in own],
            [x for x in alone if x[1]],
        )
    for note in notes:
        console.print(cli_text(note), style="dim", highlight=False)


def _table(console: Console, title: str, names: list[str], sections: list, check: bool = False):
    """Print the score table (a column per model, a row per score, ``sections`` of (heading,
    rows)), its columns three spaces apart where they fit the console, else one apart, else
    wrapped; with ``check``, print nothing and return None where even one space apart is too
    wide (else print it and return True)."""
    headers = [_HEADERS.get(name, name) for name in names]  # a long name on two lines
    rows = [row for _, part in sections for row in part]
    widths = [max([len(label) for label, _ in rows] + [len(heading) for heading, _ in sections])]
    for i, header in enumerate(headers):
        widths.append(max([len(str(cells[i])) for _, cells in rows] + [len(x) for x in header.split("\n")]))
    spaced = sum(widths) + 3 * (len(widths) - 1) <= console.width
    fits = spaced or sum(widths) + len(widths) - 1 <= console.width
    if check and not fits:
        return None
    table = Table(
        title=Text(title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1) if spaced or not fits else 0,
    )
    table.add_column("", min_width=widths[0] if fits else None, no_wrap=fits)
    for header, width in zip(headers, widths[1:], strict=True):
        table.add_column(header, justify="right", min_width=width if fits else None, no_wrap=fits)
    for heading, part in sections:
        if heading:
            table.add_section()
            table.add_row(Text(heading, style="bold"))
        for label, cells in part:
            table.add_row(Text(label), *cells)
    console.print(table)
    return True


def _spread_cells(block: dict) -> dict:
    """A baseline's rows of the skill's interval and of the specimens the model wins."""
    if not block.get("specimens"):
        return {}
    return {
        "skill_interval": {"low": block["low"], "high": block["high"]},
        "better_on": {"better": block["specimens_better"], "of": block["specimens"]},
    }


def skill_notes(report: dict) -> list[str]:
    """One line naming the baselines the model does not surely beat: the skill's interval reaches
    0 or below (a few specimens, or a baseline as good on these data). Empty when it beats all."""
    unsure, worse, same, counts = [], [], [], set()
    for name, b in report.get("skill_spread", {}).items():
        low, high = b.get("low"), b.get("high")
        if b.get("specimens") and b.get("specimens_tied") == b["specimens"]:
            same.append(name)  # every specimen's errors equal: neither is better
            continue
        if not _is_number(low) or not _is_number(high) or low != low or low > 0:
            continue
        counts.add(b["specimens"])
        (worse if high < 0 else unsure).append(name)
    parts = ([f"not surely better than {', '.join(unsure)}"] if unsure else []) + (
        [f"worse than {', '.join(worse)}"] if worse else []
    )
    out = []
    if parts:
        over = f"{min(counts)}-{max(counts)}" if len(counts) > 1 else f"{min(counts)}"
        out.append(f"the model is {' and '.join(parts)} here (skill p5/p95 over {over} specimens)")
    if same:
        out.append(
            f"the model's point forecast errs as {', '.join(same)}'s does on every specimen (a tie, not a "
            "loss: a calibrated copy differs only in its band; compare their coverage)"
        )
    return out


BAND_OK = (0.7, 0.9)  # an 80 % band holding a share outside this is worth calibrating
BAND_SPECIMENS = 10  # ... when that share rests on at least this many specimens


def band_notes(report: dict) -> list[str]:
    """A pointer to `durability calibrate` when the model's 80 % band held far more or far less
    than 80 % of the values of a backtest over enough specimens."""
    held = ((report.get("models") or {}).get("model") or {}).get("coverage", {}).get("80")
    if not _is_number(held) or (report.get("n_specimens") or 0) < BAND_SPECIMENS:
        return []
    if BAND_OK[0] <= held <= BAND_OK[1]:
        return []
    how = "too wide" if held > BAND_OK[1] else "too narrow"
    return [
        f"the 80 % band held {held:.0%} of the values ({how}): durability calibrate on held-out specimens "
        "(not these) scales it to what it says; see docs/GUIDE.md"
    ]


def side_notes(report: dict) -> list[str]:
    """A line when the model's 80 % band, or its end-of-life interval, misses mostly on one side
    over enough specimens: the forecast runs ahead of or behind the measured wear, which a band
    that is wide enough on average does not show. "Worse" is the side where the specimen wore
    more than forecast: under the band when durability falls with wear (--direction below), over
    it when it rises."""
    model = (report.get("models") or {}).get("model") or {}
    if (report.get("n_specimens") or 0) < BAND_SPECIMENS:
        return []
    falls = report.get("direction", "below") == "below"
    out = []
    under, over = ((model.get(k) or {}).get("80") for k in ("below", "above"))
    if _is_number(under) and _is_number(over) and lopsided(under, over):
        worse = (under if falls else over) > (over if falls else under)
        if report.get("threshold") is None:  # no --direction given: which way wear goes is not known
            how = f"the measured values ran {'under' if under > over else 'over'} the forecast"
        else:
            how = f"the specimens wore {'faster' if worse else 'more slowly'} than forecast"
        out.append(
            f"the 80 % band's misses are one-sided ({under:.0%} of the values under it, {over:.0%} over): "
            + how
            + "; durability calibrate --sides each on held-out specimens scales the band's halves apart"
        )
    eol = model.get("eol") or {}
    n, early, late = (eol.get(k) for k in ("interval_n", "interval_early", "interval_late"))
    if _is_number(n) and n >= BAND_SPECIMENS and _is_number(early) and _is_number(late):
        if lopsided(early / n, late / n):
            out.append(
                f"the end-of-life interval's misses are one-sided: {early} of {n} specimens crossed before "
                f"it began, {late} after it ended: the forecast end of life runs "
                + ("late (the specimens failed sooner)" if early > late else "early (they lasted longer)")
            )
    return out


def cut_notes(report: dict) -> list[str]:
    """A line when --max-step auto cut a model's backtest steps, and one when a calibrated model's
    backtests ran other steps than its calibration's (the report's settings): the model's, then
    each compared model's, named."""
    s = report.get("settings") or {}
    out = _steps_notes(s, "")
    for name, steps in (s.get("compared_steps") or {}).items():
        out += _steps_notes(steps, f"{name}: ")
    return out


def _steps_notes(s: dict, who: str) -> list[str]:
    out = (
        [
            who
            + cut_line(
                s["cut_steps"], s.get("cut_backtests"), backtests=True, max_step=s.get("max_step", "auto")
            )
        ]
        if s.get("cut_steps")
        else []
    )
    # (a backtest without paths scores the mean alone, which no calibration moves)
    if s.get("calibrated_max_step") is not None and s.get("max_step") is not None and s.get("draws"):
        line = steps_differ_line(
            s["calibrated_max_step"],
            s.get("calibrated_cut_steps"),
            s["max_step"],
            s.get("cut_steps", 0),
            backtests=True,
        )
        out += [who + line] if line else []
    return out


def condition_notes(report: dict) -> list[str]:
    """A line for each condition the model's error follows (metrics.condition_trends): the
    specimens with the most of it and those with the least erred in different ways, so the model
    has not learned how that condition drives the wear across the range of these specimens."""
    known = report.get("threshold") is not None  # with --direction: which way wear goes
    falls = report.get("direction", "below") == "below"
    out = _trend_lines(report.get("by_condition") or {}, known, falls)
    # the models compared with it (evaluate -m A -m B), each named; one that follows none of what
    # the first model follows says so, since that is the comparison's answer
    for model, trends in (report.get("by_condition_compared") or {}).items():
        lines = _trend_lines(trends, known, falls)
        if lines:
            out += [f"{model}: {line}" for line in lines]
        elif out:
            out.append(f"{model}: its error follows none of the conditions")
    return out


def _trend_lines(trends: dict, known: bool, falls: bool) -> list[str]:
    out = []
    for name, c in (trends.get("columns") or {}).items():
        if not c.get("follows"):
            continue
        if c.get("kind") == "category":
            out.append(_category_note(name, c, known, falls))
            continue
        high, low = (_third(c[end], most, known, falls) for end, most in (("high", "most"), ("low", "least")))
        out.append(
            f"the error follows {name} (rank correlation {c['rank_correlation']:+.2f}, {c['specimens']} "
            f"specimens): {high}; {low}. The model has not learned how {name} drives the wear over this "
            'range (docs/GUIDE.md, "When the error follows a condition")'
        )
    return out


def _category_note(name: str, c: dict, known: bool, falls: bool) -> str:
    """condition_notes' line for a categorical column: the groups with the highest and the lowest
    mean error, among those the test compared."""
    from durability_cli.metrics import TREND_GROUP

    tested = [(k, g) for k, g in c["groups"].items() if g["specimens"] >= TREND_GROUP]
    # groups are ordered from the lowest mean error: the last erred most, the first least
    parts = [
        _erred(f"{name} {label} ({g['specimens']} specimens)", g["error"], known, falls)
        for label, g in (tested[-1], tested[0])
    ]
    return (
        f"the error differs by {name} (Kruskal-Wallis p {c['p_value']:.2g}, {c['specimens']} specimens): "
        f"{parts[0]}; {parts[1]}. The model has not learned how {name} changes the wear "
        '(docs/GUIDE.md, "When the error follows a condition")'
    )


def _third(block: dict, most: str, known: bool, falls: bool) -> str:
    """How the third of the specimens with the ``most`` (or least) of a condition erred, by its
    mean error (forecast - measured)."""
    return _erred(f"the third with the {most} (mean {fmt(block['value'])})", block["error"], known, falls)


def _erred(who: str, err: float, known: bool, falls: bool) -> str:
    """``who`` (some specimens) and how they erred by their mean error ``err`` (forecast -
    measured): wore faster or more slowly than forecast where the wear's direction is ``known``
    (``falls``: the durability falls), else ran under or over the forecast."""
    if not known:
        return f"{who} ran {'under' if err > 0 else 'over'} the forecast, by {fmt(abs(err))} on average"
    faster = (err > 0) == falls  # forecast above the measured values of a falling durability: wore faster
    return f"{who} wore {'faster' if faster else 'more slowly'} than forecast, by {fmt(abs(err))} on average"


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
    table.add_row("model", ", ".join(f"{k}={_option(k, v)}" for k, v in info["model_config"].items()))
    table.add_row("training", ", ".join(f"{k}={_option(k, v)}" for k, v in info["train_config"].items()))
    table.add_row("parameters", f"{info['parameters']:,}")
    if info["model_config"].get("latent"):
        spread = ", ".join(f"{v:.3g}" for v in s.get("latent_train_std", []))
        table.add_row(
            "latent",
            f"z of size {info['model_config']['latent']} per specimen, fitted to each warm-up "
            f"(prior weight {info['model_config']['latent_prior']:g}); spread of the training "
            f"specimens' z (sd per dimension): {spread or 'n/a'}",
        )
        if s.get("latent_val_rmse_population") is not None:
            table.add_row("latent on validation", latent_text(s))
    table.add_row(
        "trained on", f"{s.get('source')}: {s.get('n_specimens')} specimens, {s.get('n_rows')} rows"
    )
    if base := s.get("fine_tuned_from"):
        table.add_row("fine-tuned from", fine_tuned_text(base))
    table.add_row(
        f"{scored_on(s)} RMSE",
        f"{fmt(s.get('best_val_rmse'))} (persistence {fmt(s.get('val_persistence_rmse'))}), "
        f"best epoch {s.get('best_epoch')} of {s.get('epochs_run')}",
    )
    if refit := refit_text(s, 1 + len(info.get("members", []))):
        table.add_row("refit", refit)
    if paces := warp_text(s):
        table.add_row("warp", paces)
    if s.get("val_baseline_rmse"):
        table.add_row("baselines", _baseline_text(s["val_baseline_rmse"], s))
    if path := path_text(s, sch["covariates"], sch.get("target", "durability")):
        table.add_row("path", path)
    if (s.get("mixed_effects") or {}).get("weight") is not None:
        table.add_row("combine", combine_text(s))
    if s.get("ensemble") or s.get("ensemble_auto"):
        table.add_row("ensemble", ensemble_row(s))
    if s.get("trend_line_auto"):
        table.add_row("trend line", s["trend_line_auto"])
    if s.get("latent_auto"):
        table.add_row("latent choice", s["latent_auto"])
    if band := band_text(s):
        table.add_row("band", band)
    if pace := _pace_text([s, *info.get("members", [])]):
        table.add_row("end-of-life pace", pace)
    if s.get("calibration"):
        table.add_row("band calibrated", calibration_text(s["calibration"]))
    for name, (lo, hi) in s.get("envelope", {}).items():
        table.add_row(f"range {name}", f"{lo:.4g} .. {hi:.4g}")
    if s.get("target_range"):  # a --monotonic model's default forecast --bounds
        lo, hi = s["target_range"]
        table.add_row(f"range {sch['target']}", f"{lo:.4g} .. {hi:.4g} (measured)")
    console.print(table)


# -- calibrate -------------------------------------------------------------------------------------
def calibration_text(block: dict) -> str:
    """What `durability calibrate` did, in one line (inspect's "band calibrated" row)."""
    level = block.get("level", 0.8)
    text = (
        f"{_factors_text(block)} on {block.get('specimens')} specimens of {block.get('source')} "
        f"({block.get('rows')} rows): {level:.0%} band coverage {_pct(block.get('coverage_before'))} -> "
        f"{_pct(block.get('coverage_after'))}"
    )
    eol = block.get("eol")
    if eol and eol.get("reached"):
        text += (
            f"; end-of-life interval {_shift_text(eol['shift'])} at threshold {fmt(eol.get('threshold'))}, "
            f"coverage {_pct(block.get('eol_interval_coverage_before'))} -> {_pct(eol.get('coverage_after'))} "
            f"({_eol_counted(block.get('eol_interval_n_before'), eol['n'])})"
        )
    return text + (f"; {_steps_ran(block)}" if "max_step" in block else "")


def _steps_ran(block: dict) -> str:
    """'backtests run with --max-step auto (65 future steps cut)': the steps a calibration's
    backtests ran (its block's max_step, cut_steps), which a forecast should run too."""
    cut = block.get("cut_steps")
    counted = f" ({cut} future step(s) cut)" if cut else ""
    return f"backtests run with --max-step {step_text(block['max_step'])}{counted}"


def _eol_counted(n_before, n) -> str:
    """How many end-of-life intervals a calibration's before and after count: evaluate's (decided
    within the horizon) and the run past it, which can decide more."""
    return f"{n} forecasts" if n_before in (None, n) else f"{n_before} -> {n} forecasts"


def _shift_text(shift: float) -> str:
    """'p10 x 0.8, p90 x 1.25 of the remaining life': what a shift does to the interval's ends."""
    return f"p10 x {fmt(math.exp(-shift))}, p90 x {fmt(math.exp(shift))} of the remaining life"


def _factors_text(block: dict) -> str:
    """'x 0.55 at step 21, x 1.05 at step 63, x 1.6 at step 173 (linear in between)': the band's
    factors where the forecast applies them (calibration.step_factors)."""
    factors, centres = block.get("factors") or [], block.get("centres") or []
    if "under" in block and "over" in block:  # --sides each: the two halves' factors
        factors = [
            f"{fmt(u)} under / {fmt(o)} over" for u, o in zip(block["under"], block["over"], strict=True)
        ]
    else:
        factors = [fmt(f) for f in factors]
    if len(factors) == 1:
        return f"x {factors[0]} at every step"
    at = ", ".join(f"x {f} at step {c:g}" for f, c in zip(factors, centres, strict=True))
    return f"{at} (linear in between)"


def _pct(x) -> str:
    return f"{x:.1%}" if _is_number(x) else "n/a"


def render_calibration(console: Console, block: dict, output: str) -> None:
    """The calibration's before and after on stderr, its warnings, and where the model went."""
    level = block.get("level", 0.8)
    table = Table(title=f"Band calibration on {block.get('source')}", title_justify="left")
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_row(
        f"{level:.0%} band coverage", _pct(block.get("coverage_before")), _pct(block.get("coverage_after"))
    )
    if "under_before" in block:  # which side the misses fall on (calibrations from session 32 on)
        table.add_row(
            "values under / over it",
            f"{_pct(block['under_before'])} / {_pct(block['over_before'])}",
            f"{_pct(block['under_after'])} / {_pct(block['over_after'])}",
        )
    table.add_row("mean band width", fmt(block.get("width_before")), fmt(block.get("width_after")))
    eol = block.get("eol")
    if "eol_interval_coverage_before" in block:
        counted = _eol_counted(block.get("eol_interval_n_before"), block.get("eol_interval_n"))
        table.add_row(
            f"end-of-life 80% interval coverage ({counted})",
            _pct(block.get("eol_interval_coverage_before")),
            _pct(block.get("eol_interval_coverage_after")),
        )
    console.print(table)
    cut = f"; {_steps_ran(block)}" if "max_step" in block else ""
    console.print(
        f"band {_factors_text(block)} after the warm-up, from {block.get('specimens')} specimens "
        f"({block.get('rows')} rows after their cut-offs){cut}; the calibrated model: {output}",
        highlight=False,
    )
    if eol and eol.get("reached"):
        console.print(
            f"end-of-life interval: {_shift_text(eol['shift'])} (with the band alone it held "
            f"{_pct(block.get('eol_interval_coverage_band'))})",
            highlight=False,
        )
    render_warnings(console, block.get("warnings") or [])


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
            console.print(f"[dim]{cli_text(note)}[/]", highlight=False)
        if not quiet:
            render_warnings(console, getattr(run, "warnings", []))

    def start(self, info: dict) -> None:
        if self.progress:
            render_train_start(self.console, info, self.chunk)
            self.progress.epochs = info.get("epochs") or self.progress.epochs  # auto: as decided
            self.progress.start(info["start_epoch"])

    def epoch(self, log) -> None:
        if self.progress:
            self.progress.update(log)

    def __enter__(self) -> TrainReport:
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()


# -- tune ------------------------------------------------------------------------------------------
def render_trial_line(console: Console, row: dict) -> None:
    """One line as each trial ends: its number, state, score and time, and the study's best so far."""
    seconds = "" if row.get("seconds") is None else f"  {row['seconds']:.0f} s"
    console.print(
        f"trial {row['number']}  {row['state'].lower()}  RMSE {fmt(row.get('rmse'))}{seconds}  "
        f"(best {fmt(row.get('best'))})",
        highlight=False,
    )


def render_tune_trials(console: Console, result, output: str) -> None:
    """The table of trials (the best marked *), then the best score and where it went."""
    table = Table(title=f"Trials of study {result.study}", title_justify="left")
    for col in ("#", "state", "RMSE", "s", "settings (besides the defaults)"):
        table.add_column(
            col, justify="left" if col in ("state", "settings (besides the defaults)") else "right"
        )
    best_number = None
    for row in result.trials.to_dict("records"):
        best = row["state"] == "COMPLETE" and row["rmse"] == result.best_score and best_number is None
        best_number = row["number"] if best else best_number
        seconds = row.get("seconds")
        table.add_row(
            f"{row['number']}{' *' if best else ''}",
            row["state"].lower(),
            fmt(row["rmse"]),
            "" if seconds is None or seconds != seconds else f"{seconds:.0f}",
            trial_settings(row),
        )
    console.print(table)
    default = "" if result.default_score is None else f" (defaults, trial 0: {fmt(result.default_score)})"
    console.print(
        f"Best: trial {best_number}, mean free-running RMSE over {result.folds} specimen folds after "
        f"{describe_warmup(result.context)} {fmt(result.best_score)}{default}; "
        + (
            f"the defaults written to {output} (the held-back check below)"
            if (result.check or {}).get("kept_defaults")
            else f"settings written to {output}"
        ),
        highlight=False,
        soft_wrap=True,
    )
    render_warnings(console, result.notes())


def trial_settings(row: dict) -> str:
    """A trial's settings in a few words: the cell and size, then each option not at its default."""
    from dataclasses import fields

    from durability_cli.config import ModelConfig, TrainConfig

    if row.get("cell") is None or row.get("cell") != row.get("cell"):
        return ""
    words = [f"{row['cell']} {row['layers']:.0f}x{row['hidden']:.0f}"]
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            value = row.get(f.name)
            if f.name in ("cell", "layers", "hidden", "epochs", "patience", "seed") or value is None:
                continue
            if isinstance(value, float) and value != value:  # not set in this trial
                continue
            if value == f.default:
                continue
            name = f.name.replace("_", "-")
            if isinstance(value, bool):
                words.append(name if value else f"no-{name}")
            else:
                words.append(f"{name} {value:.2g}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(words)
