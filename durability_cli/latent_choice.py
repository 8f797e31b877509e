"""``train --latent auto`` (the default): a per-specimen latent where forecasts warm up on long
stretches of each specimen, none where they warm up on a few rows.

A latent (``ModelConfig.latent``, latent.py) lets a forecast infer what no column records (a
batch, an initial flaw) from the specimen's own warm-up. That needs rows to fit z to. Measured on
96 new specimens of each synthetic set, 2-3 seeds, the latent with the warm-up's line against the
model without it (docs/TRAINING.md, "Left to the warm-ups: --latent auto"):

- warm-ups of 52 rows: ageing -27 %, coating -8 %, crack -12 %;
- 40-48 rows: ageing -49 % (40), battery +3 % (40) and +6 % (48): there it depends on how large
  the hidden factor is, which the columns do not say;
- 20 rows or fewer: coating +9 %, crack -7 %, ball +12 %, and on the measured sets' 3-11 rows
  Device-B +15 %, Alloy-A +2 %, luminosity -1 %, laser -12 %.

So the model gets a latent of AUTO_SIZE, with the line, where the validation warm-ups are at least
MIN_WARMUP_ROWS rows (their median over the table's specimens; ``val_context``, ``val_context_frac``
or the automatic one), and none otherwise. A vote of the ensemble members on their validation
specimens, which picks the line well (line_choice.py), was measured as the judge too: it kept the
latent on every ageing seed but on one of four coating and crack runs at 52 rows, where 96 new
specimens gained on three of the four (4-6 validation specimens per member cannot resolve a gain
of 8-12 %), and it costs a third training. The rule reads only the table and the options, so a
resumed run, and every seed, decide alike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.line_choice import applies

AUTO_SIZE = 2  # the latent's size where auto gives one (the size measured; 1-4 were alike on ageing)
# The median validation warm-up (rows) from which auto gives the model a latent: measured gains at
# 52 rows on three sets, battery's losses at 40 and 48, mixed results at 20 and fewer (docstring)
MIN_WARMUP_ROWS = 50


def specimen_lengths(table) -> np.ndarray:
    """Rows per specimen of a table to train on: a Dataset's in memory, or those groups read a few
    specimens at a time counted in their first pass (``lengths``; the mean, where a reader has no
    count: it gave a table of 8 short and 6 long specimens a median length it does not have, and
    so a latent the whole table would not)."""
    from durability_cli.schema import Dataset, run_lengths, specimen_starts

    if isinstance(table, Dataset):
        return run_lengths(specimen_starts(table.frame, table.schema.id_col), len(table.frame))
    if getattr(table, "lengths", None) is not None:
        return np.asarray(table.lengths, dtype=np.float64)
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
    """``model_cfg`` with a latent of AUTO_SIZE, and the line unless it is left out
    (``--no-trend-line``) or cannot be used (--monotonic, --no-residual): the combination measured."""
    line = model_cfg.trend_line is not False and not applies(model_cfg)
    return replace(model_cfg, latent=AUTO_SIZE, trend_line=line)


def short_warmup(table, cfg: TrainConfig) -> float | None:
    """The median validation warm-up (rows) where it is shorter than MIN_WARMUP_ROWS, for the
    warning on a latent given by number (``summary["latent_short_warmup"]``); None where it is not."""
    rows = typical_warmup(table, cfg)
    return rows if rows < MIN_WARMUP_ROWS else None


def resolve(table, model_cfg: ModelConfig, cfg: TrainConfig, init_from=None) -> tuple[ModelConfig, str]:
    """``model_cfg`` with ``latent`` = "auto" made a number, and why, in words (``latent_auto``).
    Fine-tuning keeps the latent of the model it starts from."""
    if init_from is not None:
        kept = init_from.model_config.latent
        return (
            replace(model_cfg, latent=kept),
            f"auto: {'with' if kept else 'without'} a latent, as the model it fine-tunes",
        )
    rows = typical_warmup(table, cfg)
    if rows < MIN_WARMUP_ROWS:
        return replace(model_cfg, latent=0), (
            f"auto: without a latent (validation warms up on {rows:g} rows; from {MIN_WARMUP_ROWS} "
            "rows a warm-up tells a specimen's hidden factors, and the model gets one)"
        )
    chosen = candidate_config(model_cfg)
    line = " and the warm-up's line" if chosen.trend_line and model_cfg.trend_line == "auto" else ""
    return chosen, (
        f"auto: a latent of {AUTO_SIZE}{line} (validation warms up on {rows:g} rows, at least "
        f"{MIN_WARMUP_ROWS}: enough to tell a specimen's hidden factors)"
    )
