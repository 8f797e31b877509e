"""How the forecast tables are written: significant digits, physical bounds, one table per
stream, and the record of the run (a JSON sidecar, the Parquet metadata).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from durability_cli.errors import InputError

DEFAULT_PRECISION = 6  # significant digits of predicted values in CSV / JSON Lines
INPUT_DIGITS = 15  # columns copied from the input (time, conditions): every digit a number was typed with


# -- significant digits ----------------------------------------------------------------------------
def check_precision(precision: int | None) -> None:
    if precision is not None and not 0 <= precision <= 17:
        raise InputError(
            f"`precision` must be between 1 and 17 significant digits (0 = every digit), got {precision}"
        )


def round_significant(values: np.ndarray, digits: int, scale: np.ndarray | None = None) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits, each the float nearest its decimal
    text (39.105000000000004 -> 39.105), so that it prints as that short text; NaN and inf stay.
    ``scale``: round each value at the decimal of ``digits`` significant digits of its ``scale``
    instead (a difference of two times, 0.27999999999999936, to the digits the later time holds:
    0.28)."""
    x = np.asarray(values, dtype=np.float64)
    out = x.copy()
    ref = x if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), x.shape)
    ok = np.isfinite(x) & (x != 0) & np.isfinite(ref) & (ref != 0)
    if not ok.any():
        return out
    v = x[ok]
    shift = digits - 1 - np.floor(np.log10(np.abs(ref[ok]))).astype(np.int64)  # decimals to keep
    up = shift >= 0
    # an integer divided (or multiplied) by an exact power of ten: the nearest float to the decimal
    scale = np.power(10.0, np.abs(shift))
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.where(up, np.round(v * scale) / scale, np.round(v / scale) * scale)
    # past 10^22 powers of ten are not exact, past float range they overflow: keep those as they are
    keep = ~np.isfinite(rounded) | (np.abs(shift) > 22)
    out[ok] = np.where(keep, v, rounded)
    return out


def tidy(df: pd.DataFrame | None, digits: int | None, inputs: tuple[str, ...]) -> pd.DataFrame | None:
    """``df`` with its float columns rounded: the predicted ones to ``digits`` significant digits,
    the ``inputs`` columns (time, conditions, static) to INPUT_DIGITS (they print as typed).
    ``digits`` None: unchanged (full precision)."""
    if df is None or digits is None:
        return df
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c].dtype):
            out[c] = round_significant(out[c].to_numpy(), INPUT_DIGITS if c in inputs else digits)
    return out


# -- physical bounds -------------------------------------------------------------------------------
def parse_bounds(text: str | None) -> tuple[float | None, float | None] | None:
    """``LO,HI`` with either side empty (``0,``), as (lo, hi); None when not given."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise InputError(f"`bounds` takes LO,HI (either may be empty, e.g. 0, or ,1); got {text!r}")
    out = []
    for part in parts:
        part = part.strip()
        if not part:
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError:
            raise InputError(f"`bounds`: {part!r} is not a number (give LO,HI, e.g. 0,1)") from None
    return out[0], out[1]


def check_bounds(bounds) -> None:
    if bounds is None:
        return
    if len(bounds) != 2:
        raise InputError(f"`bounds` must be a (low, high) pair, None for an open side; got {bounds!r}")
    lo, hi = bounds
    for v in (lo, hi):
        if v is not None and not math.isfinite(v):
            raise InputError(f"`bounds` must be finite numbers or None, got {bounds!r}")
    if lo is not None and hi is not None and lo >= hi:
        raise InputError(f"`bounds`: the low bound {lo:g} must be below the high bound {hi:g}")


def clip(values: np.ndarray | None, bounds) -> np.ndarray | None:
    """``values`` clipped to ``bounds`` (lo, hi; None = open); NaN stays NaN."""
    if values is None or bounds is None or bounds == (None, None):
        return values
    lo, hi = bounds
    return np.clip(values, -np.inf if lo is None else lo, np.inf if hi is None else hi)


# -- where the tables go ---------------------------------------------------------------------------
def check_one_stdout(
    named: dict[str, str | None], default: str = "the forecast goes to stdout unless -o FILE"
) -> None:
    """At most one table on stdout: two would run together into something no reader can parse.
    ``default`` says what goes there when nothing is named."""
    on_stdout = [flag for flag, path in named.items() if path == "-"]
    if len(on_stdout) > 1:
        raise InputError(
            f"{' and '.join(on_stdout)} both write to stdout (-); only one table can go there: "
            f"give the others a file name ({default})"
        )


def file_digest(path: str | None) -> dict | None:
    """The name and SHA-256 of a file (the model a forecast came from)."""
    if not path:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"file": Path(path).name, "sha256": h.hexdigest()}
