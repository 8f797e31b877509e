"""Physics-aware transforms of the condition columns (``train --transform temperature=arrhenius``).

Degradation rates follow a few laws that are straight lines in the right coordinates: Arrhenius
(log rate against 1/T), Peck (log rate against log RH), inverse-power (log rate against log
stress). A network can learn the curve from °C or %RH, but on a small table a transformed input
that makes the law linear is a feature it does not have to discover. A transform is applied to a
condition before the scaling, stored in the model file with the scaling, and applied again to
every table the model forecasts; the raw units stay everywhere else (the table, the
extrapolation checks, the plots).
"""

from __future__ import annotations

import numpy as np

from durability_cli.errors import InputError

ZERO_CELSIUS = 273.15

# name -> (what it computes, the values it accepts, the test of a raw value)
TRANSFORMS = {
    "arrhenius": (
        "1000 / (x + 273.15): x in °C, gives 1000/K",
        "above -273.15 °C",
        lambda x: x > -ZERO_CELSIUS,
    ),
    "arrhenius-kelvin": ("1000 / x: x in kelvin", "above 0 K", lambda x: x > 0),
    "log": ("natural log of x (Peck's humidity law, inverse-power stress laws)", "above 0", lambda x: x > 0),
    "log1p": ("log(1 + x)", "above -1", lambda x: x > -1),
    "reciprocal": ("1 / x", "other than 0", lambda x: x != 0),
    "sqrt": ("square root of x (diffusion-controlled processes)", "0 or above", lambda x: x >= 0),
}


def _apply(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "arrhenius":
            return 1000.0 / (x + ZERO_CELSIUS)
        if name == "arrhenius-kelvin":
            return 1000.0 / x
        if name == "log":
            return np.log(x)
        if name == "log1p":
            return np.log1p(x)
        if name == "reciprocal":
            return 1.0 / x
        return np.sqrt(x)


def parse(text: str, covariates: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
    """ "temperature=arrhenius,humidity=log" -> {"temperature": "arrhenius", "humidity": "log"};
    with ``covariates``, every name must be one of them."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        column, eq, name = (s.strip() for s in item.partition("="))
        if not eq or not column or not name:
            raise InputError(f"`transform` takes COLUMN=NAME pairs separated by commas, got {item!r}")
        if name not in TRANSFORMS:
            raise InputError(
                f"`transform` {column}={name}: unknown transform; choose from {', '.join(TRANSFORMS)}"
            )
        if column in out:
            raise InputError(f"`transform` names the column {column!r} twice")
        out[column] = name
    if covariates is not None:
        unknown = [c for c in out if c not in covariates]
        if unknown:
            known = ", ".join(covariates) or "none"
            raise InputError(
                f"`transform` names {', '.join(map(repr, unknown))}, which is not a condition column "
                f"(the conditions are: {known})"
            )
    return out


def per_condition(text: str, covariates) -> list[str]:
    """The transform of each condition column in order ("" = none), as the scaling stores it."""
    chosen = parse(text, covariates)
    return [chosen.get(c, "") for c in covariates]


def apply(
    cond: np.ndarray, names: list[str], columns=None, ids=None, source: str | None = None
) -> np.ndarray:
    """``cond`` [..., C] with column j transformed by ``names[j]`` ("" = as it is); NaN (padding,
    unknown) stays NaN. A value outside a transform's domain is an error naming ``source``, the
    column and the specimen (when ``ids`` gives one per row of ``cond``)."""
    if not any(names):
        return cond
    out = np.array(cond, dtype=np.float64, copy=True)
    for j, name in enumerate(names):
        if not name:
            continue
        col = out[..., j]
        finite = np.isfinite(col)
        with np.errstate(invalid="ignore"):
            bad = finite & ~TRANSFORMS[name][2](col)
        if bad.any():
            where = np.argwhere(bad)[0]
            column = columns[j] if columns is not None else f"condition {j}"
            who = f" (specimen {ids[where[0]]})" if ids is not None else ""
            raise InputError(
                f"{source + ': ' if source else ''}column '{column}' has {col[tuple(where)]:g}{who}; the model's "
                f"{name} transform needs values {TRANSFORMS[name][1]}: fix the value or train without that transform"
            )
        out[..., j] = _apply(name, col)
    return out
