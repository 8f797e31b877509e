"""``train --trend-line auto``: train the model without and with the warm-up's line, keep the one
the validation specimens prefer.

The line (``ModelConfig.trend_line``) helps a lot on specimens that wear at steady, specimen-
specific rates and hurts where usage changes mid-series (docs/TRAINING.md); which one a table is
cannot be told from its columns. Both candidates train with the same training options, so with
the same seeds they hold out the same validation specimens (an ensemble: member k of each holds
out the same ones), and they are compared on those, member by member, on each one's best
free-running validation RMSE: the line is kept when it is better for most members (a single
model: when it is better); a tie keeps the model without it. The cost is two trainings.

Checkpoints: the candidate without the line trains first with the run's checkpoint; once done it
is written beside it (``CKPT.without-line``) and the line's candidate trains with the same
checkpoint (the first one's ensemble members kept beside it are removed). ``--resume CKPT`` reads
that file when it is there and continues the line's candidate (or starts it, when the checkpoint is
still the first one's), else continues the first one.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from durability_cli.artifact import ModelBundle, save_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.modelfile import CHECKPOINT_FORMAT, read_header


def finished_path(checkpoint: str | Path) -> str:
    """Where the candidate without the line is kept once trained, beside ``checkpoint``."""
    return f"{checkpoint}.without-line"


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
    without = replace(model_cfg, trend_line=False)
    init_from = options.get("init_from")
    if init_from is not None:  # fine-tuning keeps the model's shape
        kept = bool(init_from.model_config.trend_line)
        return _said(
            train(table, replace(model_cfg, trend_line=kept), cfg, **options),
            f"auto: {'with' if kept else 'without'} the line, as the model it fine-tunes",
        )
    why_not = applies(model_cfg)
    if not why_not and n_val == 0:
        why_not = "no validation specimens to choose with"
    if why_not:
        return _said(train(table, without, cfg, **options), f"auto: without the line ({why_not})")
    checkpoint, resume = options.pop("checkpoint", None), options.pop("resume", None)
    first = _finished(resume, table, cfg) if resume is not None else None
    main = options.get("dist") is None or options["dist"].main
    if first is None:
        first = train(table, without, cfg, checkpoint=checkpoint, resume=resume, **_phase(options, 1))
        if checkpoint is not None and main:
            save_bundle(first, finished_path(checkpoint))
            # its finished ensemble members (kept when members train one after another): the
            # line's candidate must not resume from them
            from durability_cli.ensemble import remove_members

            remove_members(checkpoint, cfg.ensemble)
        resume = None  # the checkpoint was the first candidate's
    elif not _holds_line(resume):  # stopped before the line's candidate wrote its first epoch
        resume = None
    from durability_cli.training import TrainingDiverged

    try:
        second = train(
            table,
            replace(model_cfg, trend_line=True),
            cfg,
            checkpoint=checkpoint,
            resume=resume,
            **_phase(options, 2),
        )
    except TrainingDiverged as exc:
        return _said(first, f"auto: without the line (training with it diverged: {exc})")
    plain, line = member_val_rmse(first), member_val_rmse(second)
    wins = line_wins(plain, line)
    chosen = second if wins else first
    seconds = sum(b.summary.get("train_seconds") or 0.0 for b in (first, second))
    chosen.summary["train_seconds"] = round(seconds, 3)
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


def _phase(options: dict, k: int) -> dict:
    """``options`` with the start line told which candidate trains (``line_candidate``: 1, 2)."""
    told = options.get("on_start")
    if told is None:
        return options
    return {**options, "on_start": lambda info: told({**info, "line_candidate": k})}


def _holds_line(checkpoint: str) -> bool:
    """Whether ``checkpoint`` was written by the line's candidate (else it is the first one's,
    left when the run stopped between the two)."""
    _, _, info = read_header(checkpoint, expect=CHECKPOINT_FORMAT)
    return bool((info.get("model_config") or {}).get("trend_line"))


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
