"""Tables -> padded tensors and masks, and the scaling fitted on training specimens.

Everything is vectorised over rows: a table sorted by (specimen, time) becomes [N, T] arrays by
scattering each row to (specimen index, position in specimen); there is no loop over specimens.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from durability_cli.schema import Dataset, id_codes, run_lengths


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
    # mean one-step change of the scaled target (the drift; a --monotonic model starts from it);
    # None in files from before it was kept
    step_mean: float | None = None
    static_numeric: dict[str, list[float]] = field(default_factory=dict)  # name -> [mean, std]
    static_vocab: dict[str, list[str]] = field(default_factory=dict)  # name -> categories
    # --transform: every condition column -> its transform ("" = none), in the columns' order;
    # empty when no column is transformed (and in files from before transforms)
    cond_transform: dict[str, str] = field(default_factory=dict)

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

    @cached_property
    def dt(self) -> np.ndarray:
        """[N, T] step length to the next row; 0 at the last row and in the padding (read-only)."""
        d = np.zeros_like(self.time)
        np.subtract(self.time[:, 1:], self.time[:, :-1], out=d[:, :-1])
        d[np.isnan(d)] = 0.0
        d.flags.writeable = False
        return d

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


def concat_series(pieces: list[Series]) -> Series:
    """Several Series (groups of one table) as one, padded to the longest. ``row`` keeps each
    piece's own row numbers: after this it only tells padding (-1) from rows."""
    if len(pieces) == 1:
        return pieces[0]
    N = sum(len(p.ids) for p in pieces)
    T = max(p.y.shape[1] for p in pieces)
    C = pieces[0].cond.shape[2]
    out = Series(
        ids=[i for p in pieces for i in p.ids],
        lengths=np.concatenate([p.lengths for p in pieces]),
        time=np.full((N, T), np.nan),
        cond=np.full((N, T, C), np.nan),
        y=np.full((N, T), np.nan),
        row=np.full((N, T), -1, dtype=np.int64),
        static_numeric=np.concatenate([p.static_numeric for p in pieces]),
        static_categorical=np.concatenate([p.static_categorical for p in pieces]),
    )
    lo = 0
    for p in pieces:
        hi, t = lo + len(p.ids), p.y.shape[1]
        out.time[lo:hi, :t] = p.time
        out.cond[lo:hi, :t] = p.cond
        out.y[lo:hi, :t] = p.y
        out.row[lo:hi, :t] = p.row
        lo = hi
    return out


def to_series(ds: Dataset) -> Series:
    """Scatter a validated, sorted dataset into padded [N, T] arrays.

    When every specimen has the same number of rows the arrays are reshaped views of the
    columns (no copy); otherwise each column is scattered once through a flat index.
    """
    s = ds.schema
    frame = ds.frame
    codes, id_text = id_codes(frame, s.id_col)
    n = len(frame)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, dtype=np.int64)
    lengths = run_lengths(starts, n)
    N, T = len(starts), int(lengths.max()) if n else 0
    equal = N > 0 and N * T == n
    if equal:
        flat = None
    else:
        spec = np.repeat(np.arange(N), lengths)  # [rows] specimen index
        flat = np.arange(n) - (starts - np.arange(N) * T)[spec]  # [rows] index into [N * T]
        del spec

    def scatter(values: np.ndarray) -> np.ndarray:
        """[rows] -> [N, T], NaN (or -1 for integers) in the padding."""
        if equal:
            return values.reshape(N, T)
        out = np.full(N * T, -1 if values.dtype.kind in "iu" else np.nan, dtype=values.dtype)
        out[flat] = values
        return out.reshape(N, T)

    def floats(col: str) -> np.ndarray:
        return frame[col].to_numpy(dtype=np.float64, na_value=np.nan)

    # Conditions [N, T, C] are stored condition-major, so that each condition is one contiguous
    # [N, T] block (scaling and statistics run a column at a time).
    cond = np.empty((len(s.covariates), N, T))
    for j, c in enumerate(s.covariates):
        cond[j] = scatter(floats(c))
    cond = cond.transpose(1, 2, 0)
    numeric_static = [c for c in s.static if pd.api.types.is_numeric_dtype(frame[c])]
    categorical_static = [c for c in s.static if c not in numeric_static]
    static_numeric = (
        frame[numeric_static].to_numpy(dtype=np.float64)[starts] if numeric_static else np.zeros((N, 0))
    )
    static_categorical = (
        frame[categorical_static].iloc[starts].astype(str).to_numpy(dtype=object)
        if categorical_static
        else np.zeros((N, 0), dtype=object)
    )
    return Series(
        ids=[str(i) for i in id_text[codes[starts]]],
        lengths=lengths,
        time=scatter(np.asarray(ds.t, dtype=np.float64)),
        cond=cond,
        y=scatter(floats(s.target)),
        row=scatter(np.arange(n, dtype=np.int64)),
        static_numeric=static_numeric,
        static_categorical=static_categorical,
    )


def _safe_std(std: float, mean: float) -> float:
    if not np.isfinite(std) or std <= 1e-9 * max(1.0, abs(mean)):
        return max(abs(mean), 1.0)  # a constant column: keep it near zero, do not blow it up
    return std


class _Moments:
    """Count, mean and sum of squared deviations of a stream of values, merged block by block
    (Chan et al.'s pairwise update: stable for large means with small spreads, e.g. kelvin)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        n_b = values.size
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0


BLOCK_CELLS = 1 << 16  # [specimens, rows] cells per block of the scaler's pass (fits in the caches)


def fit_scaler(series: Series, numeric_static: list[str], categorical_static: list[str]) -> Scaler:
    """Fit the scaling on ``series`` (the training specimens).

    One pass over blocks of specimens of about BLOCK_CELLS cells each: no full-size temporaries
    (ten million rows would otherwise allocate and page in several 80 MB arrays)."""
    fit = ScalerFit(series.cond.shape[2])
    fit.add(series)
    return fit.result(numeric_static, categorical_static)


class ScalerFit:
    """The statistics of :class:`Scaler`, gathered from any number of Series (the groups of a
    table read a piece at a time) and turned into a Scaler at the end. Gathering one Series is
    exactly ``fit_scaler``; several give the same statistics up to float rounding."""

    def __init__(self, n_conditions: int, transform: dict[str, str] | None = None):
        self.cond = [_Moments() for _ in range(n_conditions)]
        self.transform = transform if transform and any(transform.values()) else {}
        self.dt, self.y = _Moments(), _Moments()
        self.step_sq, self.step_sum, self.step_n = 0.0, 0.0, 0
        self.static_numeric: list[_Moments] | None = None
        self.vocab: list[set[str]] = []

    def add(self, series: Series) -> None:
        N, T = series.y.shape
        per_block = max(1, BLOCK_CELLS // max(T, 1))
        for lo in range(0, N, per_block):
            hi = min(N, lo + per_block)
            valid = series.row[lo:hi] >= 0  # [b, T]
            everywhere = bool(valid.all())  # equal lengths: no padding to mask out
            cond = _conditions(series, lo, hi, self.transform)
            for j, moments in enumerate(self.cond):
                col = cond[:, :, j]
                moments.add(col.reshape(-1) if everywhere else col[valid])
            d = np.diff(series.time[lo:hi], axis=1)  # [b, T-1]; NaN into the padding
            with np.errstate(invalid="ignore"):
                self.dt.add(np.log(d[d > 0]))  # the last row and the padding have no step
            block_y = series.y[lo:hi]
            finite = np.isfinite(block_y)
            self.y.add(block_y[finite] if not finite.all() else block_y.reshape(-1))
            diffs = np.diff(block_y, axis=1)
            diffs = diffs[np.isfinite(diffs)]
            self.step_sq += float(np.square(diffs).sum())
            self.step_sum += float(diffs.sum())
            self.step_n += diffs.size
        if self.static_numeric is None:  # the first Series tells how many static columns
            self.static_numeric = [_Moments() for _ in range(series.static_numeric.shape[1])]
            self.vocab = [set() for _ in range(series.static_categorical.shape[1])]
        for j, moments in enumerate(self.static_numeric):
            col = series.static_numeric[:, j]
            moments.add(col[np.isfinite(col)])
        for j, seen in enumerate(self.vocab):
            seen.update(str(v) for v in series.static_categorical[:, j])

    def result(self, numeric_static: list[str], categorical_static: list[str]) -> Scaler:
        y_std = _safe_std(self.y.std, self.y.mean)
        step_scale = float(np.sqrt(self.step_sq / self.step_n)) / y_std if self.step_n else 0.1
        step_scale = max(step_scale, 1e-3)
        step_mean = self.step_sum / self.step_n / y_std if self.step_n else 0.0
        moments = self.static_numeric or [_Moments() for _ in numeric_static]
        vocab = self.vocab or [set() for _ in categorical_static]
        return Scaler(
            cond_mean=[m.mean for m in self.cond],
            cond_std=[_safe_std(m.std, m.mean) for m in self.cond],
            dt_mean=self.dt.mean,
            dt_std=_safe_std(self.dt.std, self.dt.mean),
            y_mean=self.y.mean,
            y_std=y_std,
            step_scale=step_scale,
            step_mean=step_mean,
            static_numeric={
                name: [m.mean, _safe_std(m.std, m.mean)]
                for name, m in zip(numeric_static, moments, strict=True)
            },
            static_vocab={name: sorted(v) for name, v in zip(categorical_static, vocab, strict=True)},
            cond_transform=dict(self.transform),
        )


def _conditions(series: Series, lo: int, hi: int, transform: dict[str, str]) -> np.ndarray:
    """Specimens lo..hi's conditions [b, T, C], each column through its ``--transform``."""
    if not transform:
        return series.cond[lo:hi]
    from durability_cli.transforms import apply

    return apply(series.cond[lo:hi], list(transform.values()), list(transform), series.ids[lo:hi])


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
    index: torch.Tensor | None = None  # [B] long: each specimen's row in the training table (its z)


def move(t: Tensors, device) -> Tensors:
    """The same tensors on ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == "cpu":
        return t
    return Tensors(
        *(None if getattr(t, f) is None else getattr(t, f).to(device) for f in Tensors.__dataclass_fields__)
    )


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


def autocast(device, enabled: bool):
    """Mixed precision for the network when ``enabled`` (``--amp``): matrix products and the
    recurrent layer in bfloat16 through ``torch.autocast``, on a GPU or a CPU alike. What the
    model carries from step to step outside the network (the fed-back durability, the residual
    sum, the loss) stays float32 by type promotion. bfloat16 needs no loss scaling (its range is
    float32's), unlike float16, which is why it is the only choice.

    A CPU whose oneDNN cannot run the recurrent layer in bfloat16 (no AVX512-BF16 or AMX) is a
    usage error named once here, not a crash in the middle of the run."""
    kind = torch.device(device).type
    if enabled and kind == "cpu" and not bfloat16_rnn_works():
        from durability_cli.errors import InputError

        raise InputError(
            "`amp`: this CPU cannot run the recurrent layer in bfloat16 (torch/oneDNN refuses it); "
            "leave `amp` off here, or use it on a GPU with bfloat16"
        )
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=enabled)


@functools.cache
def bfloat16_rnn_works() -> bool:
    """Whether a tiny LSTM runs under bfloat16 autocast on this CPU (checked once per process)."""
    rnn = torch.nn.LSTM(2, 2, batch_first=True)
    try:
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            rnn(torch.zeros(1, 2, 2))
    except RuntimeError:
        return False
    return True


def to_tensors(series: Series, scaler: Scaler) -> Tensors:
    """Scale ``series`` into float32 model tensors, a block of specimens at a time: the float64
    arithmetic runs on cache-sized pieces and lands in the float32 outputs, so the only large
    allocations are the outputs themselves."""
    N, T = series.y.shape
    C = series.cond.shape[2]
    x = np.empty((N, T, C), dtype=np.float32)
    dt = np.zeros((N, T), dtype=np.float32)
    y = np.zeros((N, T), dtype=np.float32)
    observed = np.empty((N, T), dtype=bool)
    per_block = max(1, BLOCK_CELLS // max(T, 1))
    for lo in range(0, N, per_block):
        hi = min(N, lo + per_block)
        cond = _conditions(series, lo, hi, scaler.cond_transform)
        for j in range(C):
            col = (cond[:, :, j] - scaler.cond_mean[j]) / scaler.cond_std[j]
            col[np.isnan(col)] = 0.0  # the padding
            x[lo:hi, :, j] = col
        d = np.diff(series.time[lo:hi], axis=1)  # [b, T-1]; 0 stays at the last row and padding
        with np.errstate(invalid="ignore"):
            positive = d > 0
        dt[lo:hi, :-1][positive] = (np.log(d[positive]) - scaler.dt_mean) / scaler.dt_std
        y64 = scaler.y_to_model(series.y[lo:hi])
        seen = np.isfinite(y64)
        observed[lo:hi] = seen
        np.copyto(y[lo:hi], y64, where=seen, casting="same_kind")
        # The starting state must be known: a specimen whose first row is unmeasured starts from
        # its first measured value (documented in docs/ARCHITECTURE.md).
        late = np.flatnonzero(~seen[:, 0])
        if late.size:
            y[lo + late, 0] = np.nan_to_num(_first_observed(y64[late]), nan=0.0)
    observed[:, 0] = True
    static_num = np.zeros((N, 0))
    if scaler.static_numeric:
        means = np.array([v[0] for v in scaler.static_numeric.values()])
        stds = np.array([v[1] for v in scaler.static_numeric.values()])
        static_num = np.nan_to_num((series.static_numeric - means) / stds, nan=0.0)
    codes = np.zeros(series.static_categorical.shape, dtype=np.int64)
    for j, (_name, vocab) in enumerate(scaler.static_vocab.items()):
        lookup = {v: i + 1 for i, v in enumerate(vocab)}  # 0 is kept for "unseen"
        codes[:, j] = [lookup.get(str(v), 0) for v in series.static_categorical[:, j]]
    return Tensors(
        x=torch.from_numpy(x),
        dt=torch.from_numpy(dt),
        y=torch.from_numpy(y),
        observed=torch.from_numpy(observed),
        valid=torch.from_numpy(series.row >= 0),
        static_num=torch.as_tensor(static_num, dtype=torch.float32),
        static_cat=torch.from_numpy(codes),
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
        index=None if t.index is None else t.index[index],
    )
