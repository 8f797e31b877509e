"""What-if forecasts: the conditions of the future rows overridden, once (``--set``) or per named
scenario (``--scenarios FILE``).

A scenario is a name and a few condition values. Its forecast is the plain forecast with those
conditions put on every row after each specimen's last measurement (and on the rows that
``--horizon --hold-conditions`` adds); the measured history the model warms up on is never
changed. Every scenario draws the same Monte Carlo numbers (the draws depend on the seed and the
specimen only): common random numbers, so the difference between two scenarios comes from their
conditions, not from sampling noise.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from durability_cli.errors import InputError

SCENARIO_COLUMN = "scenario"
MAX_SCENARIOS = 100  # one forecast each: more is a sweep, better run as separate jobs


@dataclass(frozen=True)
class Scenario:
    """A named set of condition values for the future rows."""

    name: str
    conditions: tuple[tuple[str, float], ...]  # (column, value) pairs, in the order given

    @property
    def values(self) -> dict[str, float]:
        return dict(self.conditions)


def parse_set(text: str | None) -> dict[str, str]:
    """``temperature=45,humidity=85`` as {name: value text} (the command line's --set); the names
    and numbers are checked by :func:`check_conditions`, the names first."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise InputError(
                f"`set` takes NAME=VALUE pairs separated by commas, e.g. temperature=45; got {part!r}"
            )
        if name.strip().lower() in {n.lower() for n in out}:
            raise InputError(f"`set` gives {name.strip()!r} twice; give each condition once")
        out[name.strip()] = value.strip()
    return out


def check_conditions(
    values: dict | None, covariates: tuple[str, ...], where: str = "`set`"
) -> dict[str, float]:
    """``values`` with each name matched to a condition column of the model (case-insensitively)
    and each value a finite number; an unknown name is one error that lists the known ones."""
    if not values:
        return {}
    if not isinstance(values, dict):
        raise InputError(f"{where} must map condition columns to numbers, got {type(values).__name__}")
    by_lower = {c.lower(): c for c in covariates}
    out: dict[str, float] = {}
    for name, value in values.items():
        column = by_lower.get(str(name).lower())
        if column is None:
            known = ", ".join(covariates) or "none (the model has no condition columns)"
            raise InputError(f"{where}: {name!r} is not a condition column of the model; known: {known}")
        if column in out:  # two spellings of one column
            raise InputError(f"{where}: gives the condition {column!r} twice; give each condition once")
        out[column] = _number(value, f"{where} {column}")
    return out


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: {value!r} is not a finite number")
    from durability_cli.schema import MAX_MAGNITUDE

    if abs(number) > MAX_MAGNITUDE:  # as a table's cell: float32 would make it inf, silently
        raise InputError(
            f"{where}: {value!r} is larger than the model can compute with (at most "
            f"{MAX_MAGNITUDE:g} in size); give the value in the units the model was trained on"
        )
    return number


def read_scenarios(
    data: Any, covariates: tuple[str, ...], base: dict[str, float] | None = None
) -> list[Scenario]:
    """The scenarios of ``data``: a table (DataFrame, path) with a ``scenario`` column and
    condition columns, one row per scenario, or a dict {name: {column: value}}. An empty cell
    leaves that condition as ``base`` (the --set values) or the data has it."""
    where = "`scenarios`"
    if isinstance(data, dict):
        for name, values in data.items():
            if values is not None and not hasattr(values, "keys"):  # a dict, any mapping, a Series
                raise InputError(
                    f"{where}: scenario {name!r} must map conditions to values, such as "
                    f"{{{name!r}: {{'temperature': 60}}}}, got {values!r}"
                )
        frame = pd.DataFrame([{SCENARIO_COLUMN: name, **(values or {})} for name, values in data.items()])
    elif isinstance(data, str | os.PathLike):
        from durability_cli.io import read_table

        where = str(data)
        frame = read_table(str(data), text=lambda names: [n for n in names if n.lower() == SCENARIO_COLUMN])
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise InputError(f"{where} must be a table (DataFrame or path) or a dict, got {type(data).__name__}")
    columns = {str(c).lower(): c for c in frame.columns}
    if SCENARIO_COLUMN not in columns:
        raise InputError(
            f"{where}: no '{SCENARIO_COLUMN}' column; give one row per scenario: a '{SCENARIO_COLUMN}' "
            f"column with its name, and condition columns ({', '.join(covariates)})"
        )
    if not len(frame):
        raise InputError(f"{where}: has no scenarios (no rows)")
    if len(frame) > MAX_SCENARIOS:
        raise InputError(f"{where}: {len(frame)} scenarios; at most {MAX_SCENARIOS} in one forecast")
    names = frame[columns[SCENARIO_COLUMN]]
    seen: set[str] = set()
    out = []
    for i, (name, (_, row)) in enumerate(zip(names, frame.iterrows(), strict=True)):
        text = "" if pd.isna(name) else str(name).strip()
        if not text:
            raise InputError(f"{where}: row {i + 1} has no scenario name; name every scenario")
        if text in seen:
            raise InputError(
                f"{where}: scenario {text!r} is given twice (row {i + 1}); give each a unique name"
            )
        seen.add(text)
        given = {str(c): v for c, v in row.items() if c != columns[SCENARIO_COLUMN] and not _empty(v)}
        values = {**(base or {}), **check_conditions(given, covariates, f"{where} scenario {text!r}")}
        out.append(Scenario(text, tuple(values.items())))
    return out


def _empty(value) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value)) or value == ""


def set_future_conditions(
    series, last_obs: np.ndarray, values: dict[str, float], covariates: tuple[str, ...]
):
    """A copy of ``series`` with ``values`` on every row after each specimen's last measurement."""
    from dataclasses import replace

    if not values:
        return series
    N, T = series.y.shape
    future = (np.arange(T)[None, :] > last_obs[:, None]) & (series.row >= 0)  # [N, T]
    cond = series.cond.copy()  # the arrays may be views of the table's columns
    for name, value in values.items():
        cond[..., covariates.index(name)][future] = value
    return replace(series, cond=cond)


def interleave(frames: list[pd.DataFrame], names: list[str], id_col: str | None) -> pd.DataFrame:
    """The scenarios' tables as one: a ``scenario`` column first, rows ordered by specimen (in
    the order of the first table), then scenario (in the order given), then time, so that a
    specimen's scenarios sit together and a table cut into groups of specimens gives the same rows."""
    tagged = []
    for name, frame in zip(names, frames, strict=True):
        part = frame.copy()
        part.insert(0, SCENARIO_COLUMN, name)
        tagged.append(part)
    out = pd.concat(tagged, ignore_index=True)
    if id_col is not None and id_col in out:
        codes, _ = pd.factorize(out[id_col], sort=False)
        out = out.iloc[np.argsort(codes, kind="stable")].reset_index(drop=True)
    return out
