"""Tables -> padded tensors and masks, and the scaling fitted on training specimens.

Everything is vectorised over rows: a table sorted by (specimen, time) becomes [N, T] arrays by
scattering each row to (specimen index, position in specimen); there is no loop over specimens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from durability_cli.schema import Dataset


@dataclass
class Scaler:
    """Per-column statistics, fitted on the training specimens only and stored in the model file."""

    cond_mean: list[float]
    cond_std: list[float]
    dt_mean: float  # of log(step length): spacing spans orders of magnitude in lab data
    dt_std: float
    y_mean: float
    y_std: float
    step_scale: float  # typical one-step change of the scaled target (residual output unit)
    static_numeric: dict[str, list[float]] = field(default_factory=dict)  # name -> [mean, std]
    static_vocab: dict[str, list[str]] = field(default_factory=dict)  # name -> categories

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(**d)

    def y_to_model(self, y):
        return (y - self.y_mean) / self.y_std

    def y_from_model(self, y):
        return y * self.y_std + self.y_mean


@dataclass
class Series:
    """A set of specimens as padded arrays; position t of row b is row t of specimen b."""

    ids: list[str]  # [N]
    lengths: np.ndarray  # [N] rows per specimen
    time: np.ndarray  # [N, T] raw time in model units (NaN padded)
    cond: np.ndarray  # [N, T, C] raw conditions (NaN padded)
    y: np.ndarray  # [N, T] raw durability (NaN = unobserved or padded)
    row: np.ndarray  # [N, T] row index into the dataset frame (-1 padded)
    static_numeric: np.ndarray  # [N, Sn] raw numeric static values
    static_categorical: np.ndarray  # [N, Sc] object: category labels

    @property
    def dt(self) -> np.ndarray:
        """[N, T] step length to the next row; 0 at the last row and in the padding."""
        d = np.zeros_like(self.time)
        d[:, :-1] = self.time[:, 1:] - self.time[:, :-1]
        return np.nan_to_num(d, nan=0.0)

    def take(self, index) -> Series:
        index = np.asarray(index)
        T = int(self.lengths[index].max()) if len(index) else 0
        return Series(
            ids=[self.ids[i] for i in index],
            lengths=self.lengths[index],
            time=self.time[index, :T],
            cond=self.cond[index, :T],
            y=self.y[index, :T],
            row=self.row[index, :T],
            static_numeric=self.static_numeric[index],
            static_categorical=self.static_categorical[index],
        )


def to_series(ds: Dataset) -> Series:
    """Scatter a validated, sorted dataset into padded [N, T] arrays."""
    s = ds.schema
    frame = ds.frame
    ids = frame[s.id_col].to_numpy()
    n = len(frame)
    boundaries = np.flatnonzero(ids[1:] != ids[:-1]) + 1  # first row of each new specimen
    starts = np.concatenate([[0], boundaries]).astype(np.int64)
    lengths = np.diff(np.concatenate([starts, [n]]))
    spec = np.repeat(np.arange(len(starts)), lengths)  # [rows] specimen index
    pos = np.arange(n) - starts[spec]  # [rows] position within specimen
    N, T = len(starts), int(lengths.max()) if n else 0

    def scatter(values: np.ndarray, fill=np.nan) -> np.ndarray:
        out = np.full((N, T) + values.shape[1:], fill, dtype=values.dtype if fill is None else np.float64)
        out[spec, pos] = values
        return out

    cond_cols = list(s.covariates)
    cond = frame[cond_cols].to_numpy(dtype=np.float64) if cond_cols else np.zeros((n, 0))
    row = np.full((N, T), -1, dtype=np.int64)
    row[spec, pos] = np.arange(n)
    numeric_static = [c for c in s.static if pd.api.types.is_numeric_dtype(frame[c])]
    categorical_static = [c for c in s.static if c not in numeric_static]
    static_numeric = (
        frame[numeric_static].to_numpy(dtype=np.float64)[starts] if numeric_static else np.zeros((N, 0))
    )
    static_categorical = (
        frame[categorical_static].astype(str).to_numpy(dtype=object)[starts]
        if categorical_static
        else np.zeros((N, 0), dtype=object)
    )
    return Series(
        ids=[str(i) for i in ids[starts]],
        lengths=lengths,
        time=scatter(np.asarray(ds.t, dtype=np.float64)),
        cond=scatter(cond),
        y=scatter(frame[s.target].to_numpy(dtype=np.float64)),
        row=row,
        static_numeric=static_numeric,
        static_categorical=static_categorical,
    )


def _safe_std(values: np.ndarray, mean: float) -> float:
    std = float(np.nanstd(values)) if values.size else 0.0
    if not np.isfinite(std) or std <= 1e-9 * max(1.0, abs(mean)):
        return max(abs(mean), 1.0)  # a constant column: keep it near zero, do not blow it up
    return std


def fit_scaler(series: Series, numeric_static: list[str], categorical_static: list[str]) -> Scaler:
    """Fit the scaling on ``series`` (the training specimens)."""
    valid = series.row >= 0  # [N, T]
    cond = series.cond[valid]  # [rows, C]
    cond_mean = cond.mean(axis=0) if len(cond) else np.zeros(series.cond.shape[2])
    cond_std = [_safe_std(cond[:, j], float(cond_mean[j])) for j in range(cond.shape[1])]
    steps = valid.copy()
    steps[np.arange(len(series.lengths)), series.lengths - 1] = False  # the last row has no step
    dt = series.dt[steps]
    dt = np.log(dt[dt > 0]) if dt.size else np.zeros(1)
    dt_mean = float(dt.mean()) if dt.size else 0.0
    y = series.y[np.isfinite(series.y)]
    y_mean = float(y.mean())
    y_std = _safe_std(y, y_mean)
    diffs = np.diff(series.y, axis=1)
    diffs = diffs[np.isfinite(diffs)] / y_std
    step_scale = float(np.sqrt(np.mean(diffs**2))) if diffs.size else 0.1
    step_scale = max(step_scale, 1e-3)
    static_numeric = {}
    for j, name in enumerate(numeric_static):
        col = series.static_numeric[:, j]
        m = float(np.nanmean(col))
        static_numeric[name] = [m, _safe_std(col, m)]
    static_vocab = {
        name: sorted({str(v) for v in series.static_categorical[:, j]})
        for j, name in enumerate(categorical_static)
    }
    return Scaler(
        cond_mean=[float(v) for v in cond_mean],
        cond_std=cond_std,
        dt_mean=dt_mean,
        dt_std=_safe_std(dt, dt_mean),
        y_mean=y_mean,
        y_std=y_std,
        step_scale=step_scale,
        static_numeric=static_numeric,
        static_vocab=static_vocab,
    )


@dataclass
class Tensors:
    """Model-ready tensors for a batch of specimens (scaled, NaN-free where the model reads)."""

    x: torch.Tensor  # [B, T, C] scaled conditions
    dt: torch.Tensor  # [B, T] scaled log step length (0 where there is no next row)
    y: torch.Tensor  # [B, T] scaled durability, 0 where unobserved (read only where observed)
    observed: torch.Tensor  # [B, T] bool: a measured value exists
    valid: torch.Tensor  # [B, T] bool: inside the series (not padding)
    static_num: torch.Tensor  # [B, Sn]
    static_cat: torch.Tensor  # [B, Sc] long category codes (0 = unseen in training)


def move(t: Tensors, device) -> Tensors:
    """The same tensors on ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == "cpu":
        return t
    return Tensors(*(getattr(t, f).to(device) for f in Tensors.__dataclass_fields__))


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> cuda when a GPU is visible, else cpu; cuda without a GPU is a usage error."""
    from durability_cli.errors import InputError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA GPU is visible to torch here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)


def to_tensors(series: Series, scaler: Scaler) -> Tensors:
    cond = (series.cond - np.asarray(scaler.cond_mean)) / np.asarray(scaler.cond_std)
    cond = np.nan_to_num(cond, nan=0.0)
    raw_dt = series.dt
    positive = raw_dt > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = np.where(
            positive, (np.log(np.where(positive, raw_dt, 1.0)) - scaler.dt_mean) / scaler.dt_std, 0.0
        )
    y = scaler.y_to_model(series.y)
    observed = np.isfinite(y)
    # The starting state must be known: a specimen whose first row is unmeasured starts from
    # its first measured value (documented in docs/ARCHITECTURE.md).
    first = _first_observed(y)
    y0 = y[:, 0].copy()
    y0[~observed[:, 0]] = first[~observed[:, 0]]
    y = np.where(observed, y, 0.0)
    y[:, 0] = np.nan_to_num(y0, nan=0.0)
    observed[:, 0] = True
    static_num = np.zeros((len(series.ids), 0))
    if scaler.static_numeric:
        means = np.array([v[0] for v in scaler.static_numeric.values()])
        stds = np.array([v[1] for v in scaler.static_numeric.values()])
        static_num = np.nan_to_num((series.static_numeric - means) / stds, nan=0.0)
    codes = np.zeros(series.static_categorical.shape, dtype=np.int64)
    for j, (_name, vocab) in enumerate(scaler.static_vocab.items()):
        lookup = {v: i + 1 for i, v in enumerate(vocab)}  # 0 is kept for "unseen"
        codes[:, j] = [lookup.get(str(v), 0) for v in series.static_categorical[:, j]]
    return Tensors(
        x=torch.as_tensor(cond, dtype=torch.float32),
        dt=torch.as_tensor(dt, dtype=torch.float32),
        y=torch.as_tensor(y, dtype=torch.float32),
        observed=torch.as_tensor(observed),
        valid=torch.as_tensor(series.row >= 0),
        static_num=torch.as_tensor(static_num, dtype=torch.float32),
        static_cat=torch.as_tensor(codes),
    )


def _first_observed(y: np.ndarray) -> np.ndarray:
    """[N] the first finite value of each row of y (NaN if none)."""
    finite = np.isfinite(y)
    idx = finite.argmax(axis=1)
    out = y[np.arange(len(y)), idx]
    out[~finite.any(axis=1)] = np.nan
    return out


def slice_tensors(t: Tensors, index, start: int = 0, stop: int | None = None) -> Tensors:
    """Rows ``index`` and positions [start, stop) of every tensor."""
    sl = slice(start, stop)
    return Tensors(
        x=t.x[index, sl],
        dt=t.dt[index, sl],
        y=t.y[index, sl],
        observed=t.observed[index, sl],
        valid=t.valid[index, sl],
        static_num=t.static_num[index],
        static_cat=t.static_cat[index],
    )
