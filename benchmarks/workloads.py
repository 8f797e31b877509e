"""Synthetic tables and small trained models for the speed and cost benchmarks.

Speed does not depend on what the weights learned, so the tables are a cheap random walk with the
coating layout (specimen_id, time, temperature, humidity, durability), every specimen the same
length, and the models are trained for one epoch only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from durability_cli.artifact import ModelBundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.schema import Schema, validate
from durability_cli.training import train

TEMPERATURE = (25.0, 55.0)  # every table stays inside these, and every training table spans them,
HUMIDITY = (40.0, 80.0)  # so forecasts never extrapolate (no warning lines to build)
SCHEMA = Schema("specimen_id", "time", "durability", ("temperature", "humidity"))


def random_walk_table(
    n_specimens: int, n_rows: int, *, warmup: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """[n_specimens * n_rows] rows; with ``warmup``, durability is NaN after the first ``warmup``
    rows of each specimen (a forecast plan)."""
    rng = np.random.default_rng(seed)
    width = len(str(n_specimens))
    ids = np.char.add("S", np.char.zfill(np.arange(n_specimens).astype(str), width))
    temperature = rng.uniform(*TEMPERATURE, (n_specimens, 1)) + rng.standard_normal((n_specimens, n_rows))
    humidity = rng.uniform(*HUMIDITY, (n_specimens, 1)) + 2 * rng.standard_normal((n_specimens, n_rows))
    temperature, humidity = np.clip(temperature, *TEMPERATURE), np.clip(humidity, *HUMIDITY)
    rate = 0.002 * np.exp((temperature - 40) / 20)
    durability = 1.0 - np.cumsum(rate, axis=1) + 0.005 * rng.standard_normal((n_specimens, n_rows))
    if warmup is not None:
        durability[:, warmup:] = np.nan
    return pd.DataFrame(
        {
            "specimen_id": np.repeat(ids, n_rows).astype(object),
            "time": np.tile(np.arange(n_rows, dtype=np.float64), n_specimens),
            "temperature": np.round(temperature.ravel(), 2),
            "humidity": np.round(humidity.ravel(), 2),
            "durability": durability.ravel(),
        }
    )


def dataset(frame: pd.DataFrame, source: str = "bench"):
    return validate(frame, SCHEMA, source=source, require_target=False)


def tiny_bundle(feedback: str = "mean", model_cfg: ModelConfig | None = None) -> ModelBundle:
    """A default-sized model (LSTM 2 x 64) trained for one epoch on 16 short specimens."""
    frame = random_walk_table(16, 60, seed=1)
    frame.loc[:1, "temperature"], frame.loc[:1, "humidity"] = TEMPERATURE, HUMIDITY
    ds = dataset(frame, "speed-train")
    cfg = TrainConfig(epochs=1, feedback=feedback, val_context=10, ensemble=1)
    return train(ds, model_cfg or ModelConfig(), cfg)
