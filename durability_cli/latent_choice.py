"""``train --latent auto``: where forecasts warm up on long stretches of each specimen, also train
the model with a per-specimen latent z, and keep it when most ensemble members validate better.

A latent (``ModelConfig.latent``, latent.py) lets a forecast infer what no column records (a
batch, an initial flaw) from the specimen's own warm-up. That needs rows to fit z to: on the
benchmark sets it gained where the warm-ups were long (ageing, 52 rows: -27 % RMSE on every seed)
and lost where they were a few rows (ball, Alloy-A, laser), and a vote of the ensemble members on
their validation specimens, which picks the line well (line_choice.py), kept it on short warm-ups
where it forecast worse (Device-B, 3-11 rows). So the candidate is trained only when the
validation warm-ups are at least MIN_WARMUP_ROWS rows (their median over the table's specimens),
and then kept by the same member vote as the line. Where it trains, it costs one more training,
and a latent ensemble's members train one after another (about 2-3 x the model without it).

The candidate is the model as asked for, with a latent of AUTO_SIZE and the warm-up's line where
the line may be used (``--trend-line`` auto or true; line_choice.applies): the combination
measured (docs/TRAINING.md, "With the line"). Both candidates train with the same options and
seeds, so member k of each holds out the same validation specimens.

Checkpoints: the model without the latent trains first with the run's checkpoint (with
``--trend-line auto``, its two candidates as line_choice.py keeps them); once done it is written
beside it (``CKPT.without-latent``) and the latent candidate trains with the same checkpoint.
``--resume CKPT`` reads that file when it is there and continues the latent candidate (or starts
it, when the checkpoint is still the first model's), else continues the first model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from durability_cli.artifact import ModelBundle, save_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.line_choice import (
    applies,
    finished_path,
    fmt_rmse,
    keep_by_vote,
    mean_val_rmse,
    read_finished,
)
from durability_cli.modelfile import CHECKPOINT_FORMAT, read_header

AUTO_SIZE = 2  # the latent's size where auto trains one (the size measured; 1-4 were alike on ageing)
# The median validation warm-up (rows) from which auto trains the latent candidate: the benchmark
# sets' warm-ups of 20 rows or fewer did not gain from it, ageing's 52 did (docs/TRAINING.md)
MIN_WARMUP_ROWS = 40


def without_latent_path(checkpoint: str | Path) -> str:
    """Where the model without the latent is kept once trained, beside ``checkpoint``."""
    return f"{checkpoint}.without-latent"


def specimen_lengths(table) -> np.ndarray:
    """Rows per specimen of a table to train on: exact for a Dataset in memory, the mean for groups
    read a few specimens at a time (which know only the table's rows and ids)."""
    from durability_cli.schema import Dataset, specimen_starts

    if isinstance(table, Dataset):
        starts = specimen_starts(table.frame, table.schema.id_col)
        return np.diff(np.r_[starts, len(table.frame)]).astype(np.int64)
    n = len(table.ids)
    return np.full(n, table.rows / max(n, 1))


def typical_warmup(table, cfg: TrainConfig) -> float:
    """The median over the table's specimens of the rows validation warms up on (``val_context``,
    ``val_context_frac`` or the automatic one, training.validation_warmup)."""
    from durability_cli.training import RowShare, validation_warmup

    lengths = specimen_lengths(table)
    if not len(lengths):
        return 0.0
    context = validation_warmup(cfg, lengths)
    rows = context.rows(lengths) if isinstance(context, RowShare) else np.minimum(context, lengths)
    return float(np.median(rows))


def candidate_config(model_cfg: ModelConfig) -> ModelConfig:
    """The latent candidate of ``model_cfg`` (latent "auto"): a latent of AUTO_SIZE, with the line
    unless it is left out (``--no-trend-line``) or cannot be used (--monotonic, --no-residual)."""
    line = model_cfg.trend_line is not False and not applies(model_cfg)
    return replace(model_cfg, latent=AUTO_SIZE, trend_line=line)


def train_choosing(
    table, model_cfg: ModelConfig, cfg: TrainConfig, train, n_val: int, **options
) -> ModelBundle:
    """Train with ``model_cfg.latent`` = "auto" made AUTO_SIZE or 0, and say which and why in the
    summary (``latent_auto``). ``train(table, model_cfg, cfg, **options)`` trains one model as
    asked (``trend_line`` "auto" included, with the automatic settings already resolved);
    ``n_val``: how many specimens validate."""
    without = replace(model_cfg, latent=0)
    init_from = options.get("init_from")
    if init_from is not None:  # fine-tuning keeps the model's shape
        kept = init_from.model_config.latent
        bundle = train(table, replace(model_cfg, latent=kept), cfg, **options)
        return _said(bundle, f"auto: {'with' if kept else 'without'} a latent, as the model it fine-tunes")
    rows = typical_warmup(table, cfg)
    why_not = ""
    if n_val == 0:
        why_not = "no validation specimens to choose with"
    elif rows < MIN_WARMUP_ROWS:
        why_not = (
            f"validation warms up on {rows:g} rows; a latent is tried from {MIN_WARMUP_ROWS} rows, "
            "where a warm-up can tell a specimen's hidden factors"
        )
    if why_not:
        return _said(train(table, without, cfg, **options), f"auto: without a latent ({why_not})")
    checkpoint, resume = options.pop("checkpoint", None), options.pop("resume", None)
    first = None
    if resume is not None and Path(without_latent_path(resume)).exists():
        first = read_finished(without_latent_path(resume), table, cfg, "the model without the latent")
        if first.model_config.latent:
            raise _not_first(resume)
    main = options.get("dist") is None or options["dist"].main
    if first is None:
        first = train(table, without, cfg, checkpoint=checkpoint, resume=resume, **options)
        if checkpoint is not None and main:
            save_bundle(first, without_latent_path(checkpoint))
            # the first model's leftovers (its line candidate, its members' files): the latent
            # candidate must not resume from them
            from durability_cli.ensemble import remove_members

            Path(finished_path(checkpoint)).unlink(missing_ok=True)
            remove_members(checkpoint, cfg.ensemble)
        resume = None  # the checkpoint was the first model's
    elif not _holds_latent(resume):  # stopped before the latent candidate wrote its first epoch
        resume = None
    from durability_cli.training import TrainingDiverged

    told = options.get("on_start")
    if told is not None:
        options = {**options, "on_start": lambda info: told({**info, "latent_candidate": True})}
    try:
        second = train(
            table, candidate_config(model_cfg), cfg, checkpoint=checkpoint, resume=resume, **options
        )
    except TrainingDiverged as exc:
        return _said(first, f"auto: without a latent (training with it diverged: {exc})")
    chosen, wins, counted = keep_by_vote(first, second, "latent_val_rmse")
    if wins and first.summary.get("trend_line_auto"):  # how the model without it chose its line
        chosen.summary["trend_line_auto"] = first.summary["trend_line_auto"]
    line = " and the warm-up's line" if second.model_config.trend_line else ""
    return _said(
        chosen,
        f"auto: {'with' if wins else 'without'} a latent of {AUTO_SIZE}{line if wins else ''} "
        f"({counted}mean validation RMSE {fmt_rmse(mean_val_rmse(second))} with it{line}, "
        f"{fmt_rmse(mean_val_rmse(first))} without; warm-ups of {rows:g} rows; both trained)",
    )


def _said(bundle: ModelBundle, why: str) -> ModelBundle:
    bundle.summary["latent_auto"] = why
    return bundle


def _holds_latent(checkpoint: str) -> bool:
    """Whether ``checkpoint`` was written by the latent candidate (else it is the first model's,
    left when the run stopped between the two)."""
    _, _, info = read_header(checkpoint, expect=CHECKPOINT_FORMAT)
    return bool((info.get("model_config") or {}).get("latent"))


def _not_first(resume: str):
    from durability_cli.errors import InputError

    return InputError(
        f"{without_latent_path(resume)}: holds a model with a latent, not the one trained without it "
        "before the interruption; start anew without --resume"
    )
