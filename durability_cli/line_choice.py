"""``train --trend-line auto``: train the model without and with the warm-up's line, keep the one
the validation specimens prefer.

The line (``ModelConfig.trend_line``) helps a lot on specimens that wear at steady, specimen-
specific rates and hurts where usage changes mid-series (docs/TRAINING.md); which one a table is
cannot be told from its columns. Both candidates train with the same training options, so with
the same seeds they hold out the same validation specimens (an ensemble: member k of each holds
out the same ones), and they are compared on those, member by member, on each one's best
free-running validation RMSE: the line is kept when it is better for most members (a single
model: when it is better); a tie keeps the model without it. The cost is two trainings, at the
same time with ``jobs`` 2 (``train --jobs``): the line's candidate in a second process (aside.py).

Checkpoints, one after the other: the candidate without the line trains first with the run's
checkpoint; once done it is written beside it (``CKPT.without-line``) and the line's candidate
trains with the same checkpoint (the first one's ensemble members kept beside it are removed).
At the same time: the line's candidate keeps its own (``CKPT.line``) and is written, once done,
to ``CKPT.with-line``. ``--resume CKPT`` reads what it finds of either layout, with either
``jobs``: a finished candidate is loaded, the line's continues from ``CKPT.line`` or from
``CKPT`` when that holds it (or starts), and the first continues from ``CKPT`` when that holds it.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

from durability_cli.artifact import ModelBundle, save_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.modelfile import CHECKPOINT_FORMAT, read_header


def finished_path(checkpoint: str | Path) -> str:
    """Where the candidate without the line is kept once trained, beside ``checkpoint``."""
    return f"{checkpoint}.without-line"


def line_path(checkpoint: str | Path) -> str:
    """The line's candidate's own checkpoint, beside ``checkpoint``, while it trains in a second
    process (aside.py); one after the other it uses ``checkpoint`` once the first is done."""
    return f"{checkpoint}.line"


def finished_line_path(checkpoint: str | Path) -> str:
    """Where the line's candidate, trained in a second process, is kept once trained."""
    return f"{checkpoint}.with-line"


def applies(model_cfg: ModelConfig) -> str:
    """Why the line cannot be used with these options ('' when it can): it adds to the step
    change, which ``--monotonic`` signs and ``--no-residual`` does not predict."""
    if not model_cfg.residual:
        return "--no-residual predicts the level, not the step the line adds to"
    if model_cfg.monotonic != "none":
        return f"--monotonic {model_cfg.monotonic} signs the step the line would add to"
    return ""


def member_val_rmse(bundle: ModelBundle) -> list[float | None]:
    """Each member's best free-running validation RMSE (None: not validated, or not finite)."""
    scores = [m.summary.get("best_val_rmse") for m in bundle.members]
    return [s if s is not None and math.isfinite(s) else None for s in scores]


def mean_val_rmse(bundle: ModelBundle) -> float | None:
    """The mean over the members of each one's best validation RMSE (None: none validated)."""
    scores = [s for s in member_val_rmse(bundle) if s is not None]
    return sum(scores) / len(scores) if scores else None


def line_votes(without: list[float | None], with_line: list[float | None]) -> tuple[int, int]:
    """(members whose line candidate validates better, members scored by both), member k of each
    candidate holding out the same specimens."""
    pairs = [(a, b) for a, b in zip(without, with_line, strict=True) if a is not None and b is not None]
    return sum(b < a for a, b in pairs), len(pairs)


def line_wins(without: list[float | None], with_line: list[float | None]) -> bool:
    """Whether the line's candidate validates better on most members (a tie keeps the model
    without it). A vote, not the mean: on a few validation specimens one member's large swing
    would otherwise decide (measured on Device-B, benchmarks/RESULTS.md)."""
    votes, voters = line_votes(without, with_line)
    return 2 * votes > voters > 0


def train_choosing(
    table, model_cfg: ModelConfig, cfg: TrainConfig, train, n_val: int, **options
) -> ModelBundle:
    """Train with ``model_cfg.trend_line`` = "auto" made True or False, and say which and why in
    the summary (``trend_line_auto``). ``train`` trains one candidate (training.train, with the
    automatic settings already resolved); ``n_val``: how many specimens validate."""
    jobs = options.pop("jobs", 1)
    without = replace(model_cfg, trend_line=False)
    init_from = options.get("init_from")
    if init_from is not None:  # fine-tuning keeps the model's shape
        kept = bool(init_from.model_config.trend_line)
        return _said(
            train(table, replace(model_cfg, trend_line=kept), cfg, jobs=jobs, **options),
            f"auto: {'with' if kept else 'without'} the line, as the model it fine-tunes",
        )
    why_not = applies(model_cfg)
    if not why_not and n_val == 0:
        why_not = "no validation specimens to choose with"
    if why_not:
        return _said(train(table, without, cfg, jobs=jobs, **options), f"auto: without the line ({why_not})")
    checkpoint, resume = options.pop("checkpoint", None), options.pop("resume", None)
    first = _finished(resume, table, cfg) if resume is not None else None
    second = _finished_line(resume, table, cfg) if resume is not None else None
    # where each candidate continues from (None: it starts): the first from the run's checkpoint
    # while that is the first's, the line's from its own (two processes) or the run's (one)
    first_resume = resume if resume is not None and not _holds_line(resume) else None
    line_resume = _line_resume(resume)
    main = options.get("dist") is None or options["dist"].main
    from durability_cli.training import TrainingDiverged

    wall = None
    if first is None and second is None and _beside(jobs, table, options):
        started = time.perf_counter()
        first, second = _train_both(
            table, model_cfg, cfg, train, checkpoint, first_resume, line_resume, options
        )
        wall = round(time.perf_counter() - started, 3)
        if isinstance(second, TrainingDiverged):
            return _said(first, f"auto: without the line (training with it diverged: {second})")
    else:
        if first is None:
            first = train(
                table,
                without,
                cfg,
                checkpoint=checkpoint,
                resume=first_resume,
                jobs=jobs,
                **_phase(options, 1),
            )
            if checkpoint is not None and main:
                save_bundle(first, finished_path(checkpoint))
                # its finished ensemble members (kept when members train one after another) and
                # other processes' checkpoints: the line's candidate must not resume from them
                from durability_cli.ensemble import remove_members

                remove_members(checkpoint, cfg.ensemble)
        if second is None:
            try:
                second = train(
                    table,
                    replace(model_cfg, trend_line=True),
                    cfg,
                    checkpoint=checkpoint,
                    resume=line_resume,
                    jobs=jobs,
                    **_phase(options, 2),
                )
            except TrainingDiverged as exc:
                return _said(first, f"auto: without the line (training with it diverged: {exc})")
    plain, line = member_val_rmse(first), member_val_rmse(second)
    wins = line_wins(plain, line)
    chosen = second if wins else first
    seconds = sum(b.summary.get("train_seconds") or 0.0 for b in (first, second))
    chosen.summary["train_seconds"] = round(seconds, 3)
    if wall is not None:  # the two at the same time: how long the pair took
        chosen.summary["trend_line_wall_seconds"] = wall
    chosen.summary["trend_line_val_rmse"] = {"without": plain, "with": line}
    votes = line_votes(plain, line)[0]
    counted = f"better on {votes} of {len(plain)} members, " if len(plain) > 1 else ""
    return _said(
        chosen,
        f"auto: {'with' if wins else 'without'} the line ({counted}mean validation RMSE "
        f"{_fmt(mean_val_rmse(second))} with it, {_fmt(mean_val_rmse(first))} without; both trained)",
    )


def _said(bundle: ModelBundle, why: str) -> ModelBundle:
    bundle.summary["trend_line_auto"] = why
    return bundle


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _phase(options: dict, k: int, beside: bool = False) -> dict:
    """``options`` with the start line told which candidate trains (``line_candidate``: 1, 2;
    ``line_beside``: the other trains at the same time)."""
    told = options.get("on_start")
    if told is None:
        return options
    extra = {"line_candidate": k, **({"line_beside": True} if beside else {})}
    return {**options, "on_start": lambda info: told({**info, **extra})}


def _holds_line(checkpoint: str) -> bool:
    """Whether ``checkpoint`` was written by the line's candidate (else it is the first one's,
    left when the run stopped between the two)."""
    _, _, info = read_header(checkpoint, expect=CHECKPOINT_FORMAT)
    return bool((info.get("model_config") or {}).get("trend_line"))


def _line_resume(resume: str | None) -> str | None:
    """Where the line's candidate continues from: its own checkpoint (it trained in a second
    process), else ``resume`` when the line's candidate wrote it (one after the other), else
    nowhere (it starts)."""
    if resume is None:
        return None
    if Path(line_path(resume)).exists():
        return line_path(resume)
    return resume if Path(resume).exists() and _holds_line(resume) else None


def _beside(jobs: int, table, options: dict) -> bool:
    """Whether the line's candidate trains in a second process: two jobs allowed, where a second
    process may train at all (aside.allowed)."""
    from durability_cli.aside import allowed

    return jobs >= 2 and allowed(table, options)


def _train_both(
    table,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    train,
    checkpoint,
    first_resume,
    line_resume,
    options: dict,
):
    """The two candidates at the same time, the line's in a second process (aside.py), each
    continuing from its ``*_resume`` checkpoint (None: it starts): (the model without the line,
    the line's model or its TrainingDiverged)."""
    import tempfile

    from durability_cli.aside import Aside, polling
    from durability_cli.training import TrainingDiverged, TrainingInterrupted

    child = {k: v for k, v in options.items() if k not in ("on_start", "on_epoch")}
    with tempfile.TemporaryDirectory(prefix="durability-line-") as scratch:
        out = (
            finished_line_path(checkpoint)
            if checkpoint is not None
            else str(Path(scratch) / "line.safetensors")
        )
        child.update(checkpoint=None if checkpoint is None else line_path(checkpoint), resume=line_resume)
        with Aside(train, table, replace(model_cfg, trend_line=True), cfg, child, out) as aside:
            first_options = _phase(options, 1, beside=True)
            first = train(
                table,
                replace(model_cfg, trend_line=False),
                cfg,
                checkpoint=checkpoint,
                resume=first_resume,
                **{**first_options, "on_epoch": polling([aside], first_options.get("on_epoch"))},
            )
            if checkpoint is not None:
                save_bundle(first, finished_path(checkpoint))
            second_options = _phase(options, 2)
            try:
                second = aside.result(second_options.get("on_start"), second_options.get("on_epoch"))
            except TrainingDiverged as exc:
                second = exc
            except TrainingInterrupted:  # the child named its own checkpoint; resuming reads both
                where = f"; continue with `resume` {checkpoint}" if checkpoint is not None else ""
                raise TrainingInterrupted(
                    "training interrupted after the model without the line was done; the line's "
                    f"candidate's completed epochs are in its checkpoint{where}"
                ) from None
    return first, second


def _finished_line(resume: str, table, cfg: TrainConfig) -> ModelBundle | None:
    """The line's candidate, when the interrupted run had finished it in a second process."""
    from durability_cli.training import load_finished

    what = "the model trained with the line"
    return load_finished(
        resume,
        finished_line_path(resume),
        table,
        cfg,
        what,
        lambda b: "" if b.model_config.trend_line else "trend_line",
    )


def _finished(resume: str, table, cfg: TrainConfig) -> ModelBundle | None:
    """The candidate without the line, when the interrupted run had finished it (None: the
    checkpoint is still the first candidate's)."""
    from durability_cli.training import load_finished

    what = "the model trained without the line"
    return load_finished(
        resume,
        finished_path(resume),
        table,
        cfg,
        what,
        lambda b: "trend_line" if b.model_config.trend_line else "",
    )
