"""Real measured datasets of the accuracy suite, beside the synthetic ones of
``durability_cli.synthetic`` (provenance, units and licence: benchmarks/data/README.md).

A real set has no clean truth and no known noise: ``test_clean`` is the measured test table
itself, so the "vs clean" scores equal the measured ones and there is no noise floor. Its series
may differ in length, so each test specimen's warm-up is a fraction of its own rows
(BENCHMARK_PROTOCOL.md, "Real data and fairness"), or the same number of rows for every specimen
where they were all measured at the same times (``warmup``; then Darts runs on it too).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"


@dataclasses.dataclass(frozen=True)
class RealDatasetInfo:
    """What the accuracy suite needs to know about a bundled measured dataset."""

    name: str
    file: str  # CSV under benchmarks/data
    target: str  # the durability column
    covariates: tuple[str, ...]  # numeric conditions known at every step
    static: tuple[str, ...]  # constant per specimen (pass with --static)
    eol_threshold: float | None  # end of life when the target reaches it (see eol_direction)
    warmup_fraction: float | None  # each test specimen's warm-up: ceil(fraction x its rows) rows
    context: int  # warm-up rows of the free-running validation during training (--val-context)
    strata: str | None  # the column the train/test split is stratified by (None: one stratum)
    test_fraction: float  # share of each stratum's specimens held out for the test
    time_unit: str
    source: str  # one line; the full story is in benchmarks/data/README.md
    noise: float | None = None  # unknown on measured data
    real: bool = True
    eol_direction: str = "below"  # end of life when the target falls to ("below") or rises to it
    warmup: int | None = None  # instead of warmup_fraction: this many rows for every test specimen


REAL_INFO: dict[str, RealDatasetInfo] = {
    "device_b": RealDatasetInfo(
        name="device_b",
        file="device_b.csv",
        target="power_drop",
        covariates=("temperature",),
        static=(),
        eol_threshold=-0.5,  # the failure definition of the source: a power drop of 0.5 dB
        warmup_fraction=1 / 3,  # 11 of 33 rows at 150 °C, 6 of 17 at 195 °C, 3 of 9 at 237 °C
        context=6,  # a third of the median series length (17 rows)
        strata="temperature",
        test_fraction=1 / 3,  # 2 of 7 devices at 150 °C, 4 of 12 at 195 °C, 5 of 15 at 237 °C
        time_unit="hours",
        source=(
            "Device-B accelerated degradation test (Meeker & Escobar 1998, Statistical Methods for "
            "Reliability Data): 34 devices, power drop in dB every 125 h at 150, 195 or 237 °C"
        ),
    ),
    "alloy_a": RealDatasetInfo(
        name="alloy_a",
        file="alloy_a.csv",
        target="crack_length",
        covariates=(),
        static=(),
        eol_threshold=1.6,  # the failure definition used with this dataset: a 1.6 in crack
        eol_direction="above",
        warmup_fraction=None,
        warmup=4,  # 0 to 0.03 megacycles: every specimen was measured at the same times
        context=4,
        strata=None,
        test_fraction=1 / 3,  # 7 of the 21 specimens
        time_unit="megacycles",
        source=(
            "Alloy-A fatigue crack growth (Meeker & Escobar 1998, Statistical Methods for Reliability "
            "Data; Lu & Meeker 1993): 21 specimens, crack length in inches every 0.01 megacycles from 0.9 in"
        ),
    ),
    "laser": RealDatasetInfo(
        name="laser",
        file="laser.csv",
        target="current_increase",
        covariates=(),
        static=(),
        eol_threshold=10.0,  # the failure definition used with this dataset: a 10 % current increase
        eol_direction="above",
        warmup_fraction=None,
        warmup=6,  # 0 to 1250 h, a third of the 17 rows: every unit was measured at the same times
        context=6,
        strata=None,
        test_fraction=1 / 3,  # 5 of the 15 units
        time_unit="hours",
        source=(
            "GaAs laser degradation (Meeker & Escobar 1998, Statistical Methods for Reliability Data): "
            "15 lasers, percent increase of the operating current every 250 h to 4000 h"
        ),
    ),
    "luminosity": RealDatasetInfo(
        name="luminosity",
        file="luminosity.csv",
        target="luminosity",
        covariates=("temperature",),
        static=(),
        eol_threshold=0.5,  # half the luminosity: our choice, the source states no failure definition
        warmup_fraction=None,
        warmup=10,  # 336 to 3360 h, a third of the 29 rows: every unit was measured at the same times
        context=10,
        strata="temperature",
        test_fraction=1 / 3,  # 8 of the 25 units at each of 25, 65 and 105 °C
        time_unit="hours",
        source=(
            "Luminosity degradation (Meeker & Escobar 1998, Statistical Methods for Reliability Data, via "
            "the R package SMRD): 75 units, relative luminosity every 336 h to 9744 h at 25, 65 or 105 °C"
        ),
    ),
}


def load(name: str) -> pd.DataFrame:
    """The bundled table of a real dataset, rows ordered by specimen and time; ids as text and
    times as floats, as the forecast table returns them (the scores join on both)."""
    info = REAL_INFO[name]
    table = pd.read_csv(DATA / info.file).sort_values(["specimen_id", "time"], kind="stable")
    return table.astype({"specimen_id": str, "time": float}).reset_index(drop=True)


def split(name: str, seed: int = 0) -> dict:
    """Train and test tables with disjoint specimens: in every stratum (e.g. each test
    temperature) round(test_fraction x its specimens) drawn at random with ``seed`` are "test".
    Returns {"train", "test", "test_clean", "info"} like ``synthetic.make_split``."""
    info = REAL_INFO[name]
    table = load(name)
    rng = np.random.default_rng(seed)
    test_ids: list = []
    if info.strata is None:
        per_stratum = [table["specimen_id"].unique()]
    else:
        per_stratum = table.groupby(info.strata, sort=True)["specimen_id"].unique()
    for ids in per_stratum:
        n_test = round(info.test_fraction * len(ids))
        test_ids += list(rng.choice(np.sort(ids), size=n_test, replace=False))
    is_test = table["specimen_id"].isin(test_ids).to_numpy()
    test = table[is_test].reset_index(drop=True)
    return {
        "train": table[~is_test].reset_index(drop=True),
        "test": test,
        "test_clean": test.copy(),  # no clean truth: the measured values
        "info": info,
    }


def warmup_rows(lengths: pd.Series, fraction: float | None, fixed: int | None = None) -> pd.Series:
    """Warm-up rows per specimen: ``fixed`` or ceil(fraction x its rows), at least 2, leaving 1 row
    to forecast."""
    want = [fixed if fixed is not None else math.ceil(fraction * n - 1e-9) for n in lengths.to_numpy()]
    rows = [min(max(2, w), n - 1) for w, n in zip(want, lengths.to_numpy(), strict=True)]
    return pd.Series(rows, index=lengths.index, dtype=int)
