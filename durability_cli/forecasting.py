"""Forecasts: warm-up on each specimen's measured history, free run over its future rows.

Monte Carlo paths (Gaussian models): a model trained with ``--feedback sample`` feeds each path's
own sampled values back, as DeepAR does; a model trained free-running on its mean (the default)
predicts the spread at each horizon step directly, and its paths are the mean path shifted by that
spread times one draw per path. All specimens and all samples of a chunk advance together. Each
specimen's random draws come from its own generator (seed, specimen id), so its forecast does not
depend on the other specimens in the table, their order or the chunk size.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd
import torch

from durability_cli import eol_warp, limits, mixed_effects, scale_refit
from durability_cli.artifact import ModelBundle
from durability_cli.calibration import (
    eol_shift,
    life_factor,
    scale_sides,
    shift_crossing,
    step_factors,
    step_sides,
)
from durability_cli.config import cut_line, past_at_cutoff_line, shortest_warmup, steps_differ_line
from durability_cli.data import Series, autocast, move, to_series, to_tensors
from durability_cli.errors import InputError, check_numbers
from durability_cli.latent import LATENT_DRAWS, draw_latent, fit_posterior, mean_paths, run_copies
from durability_cli.metrics import first_crossing_matrix
from durability_cli.model import Resume
from durability_cli.outputs import check_bounds, clip
from durability_cli.scenarios import Scenario, interleave, set_future_conditions
from durability_cli.schema import (
    Dataset,
    dates_from_days,
    days_as_spans,
    id_codes,
    show_time,
    specimen_starts,
    validate,
)

# An ensemble's paths: "centred" = member k's paths moved onto the ensemble's mean path (each
# member's own calibrated spread around the average), "mixture" = around the member's own mean
# (the spread also holds the members' disagreement). Centred measured narrower and nearer the
# nominal coverage, its pinball loss better on 6 of 8 quantile scores (benchmarks/ensemble_paths.py;
# docs/TRAINING.md, "--ensemble N").
ENSEMBLE_PATHS = "centred"
MEMORY_BUDGET = 4_000_000  # specimen x sample x step cells per chunk (~100 MB of activations)
MAX_SAMPLES = 100_000  # Monte Carlo paths: far past where quantiles stop changing
MAX_QUANTILES = 99  # one output column each: p1 .. p99 is as fine as a forecast table needs
OFF_WARMUP_IDS = 3  # ids a warm-up warning names (a forecast in groups keeps the first ones)


@dataclass(frozen=True)
class ForecastConfig:
    samples: int = 200  # Monte Carlo paths; 0 = the deterministic mean path only
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # reported as <target>_p10, _p50, _p90
    threshold: float | None = None  # end-of-life threshold in durability units
    direction: str = "below"  # end of life when durability goes below (or above) the threshold
    seed: int = 0  # makes the Monte Carlo paths repeatable
    rollout_batch: int = 0  # specimens per network batch; 0 = sized automatically to MEMORY_BUDGET
    strict: bool = False  # extrapolating beyond the training envelope is an error, not a warning
    device: str = "cpu"  # where the network runs: cpu or cuda[:N]
    amp: bool = False  # bfloat16 autocast for the network (see data.autocast)
    # physical bounds (low, high; None = open) the mean, quantiles and paths are clipped to;
    # None = the training range of the target for a monotonic model (see resolve_bounds), else none
    bounds: tuple[float | None, float | None] | None = None
    # the longest step the network takes: a longer future step is cut into equal pieces of at most
    # this length (its conditions held on each), forecast, and written at the plan's own rows only
    # (cut_steps). "auto": each step that is not typical of training's steps at its conditions is
    # cut into the fewest pieces that are (StepDomain); "off": the plan's steps as given; None (the
    # default): "auto" where the model file keeps its training steps (since session 49), else as
    # given. evaluate's backtests run the same cuts, so that they score what forecast writes
    max_step: float | str | None = None

    def validate(self) -> None:
        for name in ("samples", "seed"):  # None is no leave-it-out here: each has a default
            if getattr(self, name) is None:
                raise InputError(f"`{name}` must be a whole number, got None")
        check_numbers(whole={"samples": self.samples, "seed": self.seed, "rollout_batch": self.rollout_batch})
        if self.max_step is not None and self.max_step not in ("auto", "off"):
            check_numbers(real={"max_step": self.max_step})
            if not (self.max_step > 0 and math.isfinite(self.max_step)):
                raise InputError(f"`max_step` must be a positive step length, got {self.max_step}")
        check_numbers(real={"threshold": self.threshold})
        for q in self.quantiles:
            check_numbers(real={"quantiles": q})
        check_bounds(self.bounds)
        if not 0 <= self.samples <= MAX_SAMPLES:
            raise InputError(f"`samples` must be between 0 and {MAX_SAMPLES}, got {self.samples}")
        if self.samples == 1:  # every quantile would be that one path: a band of width 0
            raise InputError(
                "`samples` 1 draws one path, and every quantile of one path is that path (a band of "
                "width 0): give 0 for the mean path alone, or 20 or more for a band"
            )
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise InputError(f"`threshold` must be a finite number, got {self.threshold}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"`seed` must be between 0 and {2**63 - 1}, got {self.seed}")
        if len(self.quantiles) > MAX_QUANTILES:
            raise InputError(f"`quantiles`: at most {MAX_QUANTILES} levels, got {len(self.quantiles)}")
        named: dict[str, float] = {}
        for q in self.quantiles:
            if not 0.0 < q < 1.0:  # also refuses NaN
                raise InputError(f"`quantiles` must lie strictly between 0 and 1, got {q}")
            name = quantile_column("", q)  # the column's name: 6 significant digits of the percent
            if name in named and named[name] != q:
                raise InputError(
                    f"`quantiles` {named[name]!r} and {q!r} would both be column {name[1:]}; "
                    "give levels that differ within 6 significant digits of their percent"
                )
            named[name] = q
        if self.direction not in ("below", "above"):
            raise InputError(f"`direction` must be below or above, got {self.direction!r}")
        if self.rollout_batch < 0:
            raise InputError(f"`rollout_batch` must be >= 0 (0 = sized by memory), got {self.rollout_batch}")


@dataclass
class ForecastResult:
    """A forecast of some specimens, and what the user should be told about it."""

    forecast: pd.DataFrame  # long format: id, time, prediction columns, conditions, extrapolated
    eol: pd.DataFrame | None  # one row per specimen when a threshold is given
    paths: pd.DataFrame | None  # id, time, sample, value (when requested)
    specimens: int = 0  # specimens forecast
    rows: int = 0  # forecast rows
    samples: int = 0  # Monte Carlo paths drawn (0: the mean path of a point model, or samples=0)
    seed: int = 0
    quantiles: tuple[float, ...] = ()
    held: list[str] = field(default_factory=list)  # the note that conditions were held
    skipped: list[str] = field(default_factory=list)  # the first few ids with no future rows
    n_skipped: int = 0  # all specimens with no future rows
    extrapolation: list[str] = field(default_factory=list)  # a line per specimen outside training
    n_extrapolating: int = 0  # all specimens outside the training envelope (lines may be capped)
    # future steps --max-step cut (auto: longer than training's at their conditions; a length: longer
    # than it), and of how many specimens (with scenarios: the steps of every scenario, the
    # specimens cut in any); ``cut_auto``: auto cut them (a warning line), not a length given
    n_cut_steps: int = 0
    n_cut_specimens: int = 0
    cut_auto: bool = True
    cut: np.ndarray | None = field(default=None, repr=False)  # [specimens of the group] which were cut
    # a calibrated model run on other steps than its calibration's backtests (config.steps_differ_line)
    steps_differ: str | None = None
    bounds: tuple[float | None, float | None] | None = None  # what the values were clipped to
    scenarios: list[str] = field(default_factory=list)  # the names, when forecast per scenario
    # Specimens whose warm-up lies outside the lengths a --warmup-min model was trained on: the
    # count, the first few ids, and the shortest and longest such warm-up (rows)
    n_off_warmup: int = 0
    off_warmup: list[str] = field(default_factory=list)
    off_warmup_rows: tuple[int, int] | None = None
    trained_warmup: tuple[int, int] | None = None  # the shortest and longest training warm-up
    # end of life: specimens given one, how many were already past the threshold, and the rule
    n_eol: int = 0
    n_eol_past: int = 0
    eol_rule: tuple[str, float] | None = None  # (direction, threshold)

    @property
    def warnings(self) -> list[str]:
        """The lines to show the user: held conditions, skipped specimens, warm-ups training did
        not see, extrapolation."""
        lines = list(self.held)
        if self.n_skipped:
            lines.append(_skipped_line(self.skipped, self.n_skipped))
        if self.n_off_warmup:
            lines.append(_off_warmup_line(self))
        if self.n_eol and self.n_eol_past == self.n_eol and self.eol_rule is not None:
            lines.append(past_at_cutoff_line(*self.eol_rule))
        if self.n_cut_steps and self.cut_auto:  # a length given cuts as asked: recorded, not warned of
            lines.append(cut_line(self.n_cut_steps, self.n_cut_specimens, len(self.scenarios)))
        if self.steps_differ:
            lines.append(self.steps_differ)
        lines += self.extrapolation
        if self.n_extrapolating > len(self.extrapolation):
            lines.append(
                f"... and {self.n_extrapolating - len(self.extrapolation)} more specimen(s) extrapolate"
            )
        return lines

    @property
    def info(self) -> dict:
        """What an output table records about the run (Parquet metadata)."""
        return {
            "samples": self.samples,
            "seed": self.seed,
            "quantiles": list(self.quantiles),
            "specimens": self.specimens,
            "rows": self.rows,
            "bounds": None if self.bounds is None else list(self.bounds),
            "cut_steps": self.n_cut_steps,
        }


def quantile_column(target: str, q: float) -> str:
    return f"{target}_p{q * 100:g}".replace(".", "_")


def check_horizon(horizon: int | None) -> None:
    """None = up to each specimen's last row; otherwise at least one step."""
    check_numbers(whole={"horizon": horizon})
    if horizon is not None and horizon < 1:
        raise InputError(
            f"`horizon` must be at least 1 step, got {horizon}; leave it out to forecast every future row"
        )


# -- the batched rollout ---------------------------------------------------------------------------
def specimen_noise(ids: list[str], samples: int, steps: int, seed: int, stream: str = "") -> torch.Tensor:
    """[N, S, steps] standard-normal draws, each specimen from its own generator.

    Drawn step by step ([steps, S] in row order), so the draws of step t do not depend on how
    many steps the chunk is padded to: a specimen's paths are the same alone or in any batch.
    ``stream`` names an independent set of draws for the same seed (e.g. the latent draws).
    """
    out = np.empty((len(ids), samples, steps), dtype=np.float32)
    for i, sid in enumerate(ids):
        digest = hashlib.blake2b(f"{stream}{seed}:{sid}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        out[i] = rng.standard_normal((steps, samples), dtype=np.float32).T
    return torch.from_numpy(out)


# steps of the end-of-life run past the horizon between checks whether every mean has crossed
# (_mean_until_crossed): a check costs a few numpy operations on [chunk, STRETCH_SEGMENT]
STRETCH_SEGMENT = 32
MAX_RNN_ROWS = 2048  # rows per RNN call on the CPU: larger batches fall out of the caches
# The end-of-life run past the horizon holds every member's whole inputs at once (about 90 bytes
# per specimen, step and member with their copies: 491 specimens x 1,629 steps x 5 members took
# 360 MB), where MEMORY_BUDGET counts Monte Carlo path cells: a step of a specimen and member of
# that run counts as this many cells. 4 against 10, 2 and 1 on tests/test_memory.py's 4,800-specimen
# plan: 0.85 x the time at +8 % peak memory, where 1 gave +40 % (session 52)
RUN_CELL_COST = 4


def drawn_paths(bundle: ModelBundle, cfg: ForecastConfig) -> int:
    """How many Monte Carlo paths a forecast of ``cfg`` draws: ``cfg.samples`` for a Gaussian
    model, none for a point model (its mean is all it has)."""
    return cfg.samples if bundle.model_config.loss == "gaussian" else 0


def _chunk_of(steps: int, samples: int, chunk_specimens: int, rows_per_specimen: int) -> int:
    """Specimens per chunk of ``steps`` rows: specimens x samples x steps within MEMORY_BUDGET, and
    at most MAX_RNN_ROWS rows per RNN call (measured: an LSTM step costs ~4x more per row at
    33,000 rows than at 2,048); ``chunk_specimens``, when given."""
    if chunk_specimens:
        return chunk_specimens
    by_memory = MEMORY_BUDGET // max(1, steps * max(samples, 1))
    return max(1, min(by_memory, MAX_RNN_ROWS // max(1, rows_per_specimen)))


def chunk_plan(
    series: Series, samples: int, chunk_specimens: int = 0, rows_per_specimen: int = 1
) -> list[np.ndarray]:
    """The chunks a rollout runs, as specimen indices (each chunk's in the series' order).

    A batch runs as many steps as its longest specimen, so specimens of like lengths run
    together: the longest first, each chunk sized (:func:`_chunk_of`) by its own longest
    specimen rather than the table's. A plan with a few long specimens (steps cut by --max-step,
    a few long-lived ones) then pads a few chunks, not every chunk it has; a table of one length
    runs in the series' order, as before. A specimen's numbers do not depend on its chunk
    (model.run's ``invariant``), so the outputs are the same whatever the grouping.
    """
    return plan_lengths(np.asarray(series.lengths), samples, chunk_specimens, rows_per_specimen)


def plan_lengths(
    lengths: np.ndarray, samples: int, chunk_specimens: int = 0, rows_per_specimen: int = 1
) -> list[np.ndarray]:
    """:func:`chunk_plan` of specimens of these ``lengths`` [N]."""
    order = np.argsort(-lengths, kind="stable")
    chunks, i = [], 0
    while i < len(order):
        b = _chunk_of(int(lengths[order[i]]), samples, chunk_specimens, rows_per_specimen)
        chunks.append(np.sort(order[i : i + b]))
        i += b
    return chunks


def combination(bundle: ModelBundle) -> tuple[mixed_effects.PathFit, float] | None:
    """(the mixed-effects path, the model's weight) of a model trained with ``--combine
    mixed_effects`` whose validation gave a weight; else None (the model's forecast alone)."""
    block = bundle.summary.get(mixed_effects.NAME) or {}
    w = block.get("weight")
    return None if w is None else (mixed_effects.PathFit.from_json(block), float(w))


_PROGRESS: contextvars.ContextVar = contextvars.ContextVar("durability_forecast_progress", default=None)


@contextlib.contextmanager
def reporting(report) -> Iterator[None]:
    """While the block runs, ``report(n)`` is called after each chunk of ``n`` specimens the
    network has run (:func:`rollout_chunks`; a scenario, a backtest's cut-off or an ensemble's
    run counts its specimens again): the command line's progress on a terminal."""
    token = _PROGRESS.set(report)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@torch.no_grad()
def rollout_chunks(
    bundle: ModelBundle,
    series: Series,
    last_obs: np.ndarray,
    cfg: ForecastConfig,
    *,
    source: str = "",
    population: bool = False,
    ends: Ends | None = None,
    inserted: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Forecast every row after ``last_obs[b]`` (the last warm-up row of specimen b), a chunk of
    ``cfg.rollout_batch`` specimens at a time (0: sized to MEMORY_BUDGET), so that memory is
    bounded whatever the number of specimens; ``cfg.samples`` paths drawn from ``cfg.seed``.
    Specimens of like lengths share a chunk (:func:`chunk_plan`), so the chunks come in the
    order of their longest specimen, not the series'.
    An ensemble's mean path is its members' average, and path s is member s mod N's path s moved
    by the difference of the two means (ENSEMBLE_PATHS).

    Yields (the chunk's specimen indices [b], mean path [b, Tc], sample paths [b, S, Tc] or None,
    population path [b, Tc] or None), in durability units, NaN on the warm-up rows and the padding; Tc is the
    chunk's padded length. The population path (latent models, ``population=True``) is the mean
    path with z = 0 for every specimen (the prior's centre, which the fit returns when a warm-up
    tells nothing): the population's forecast under the specimen's conditions. ``ends``: each
    member's mean run is kept there as it stands at each specimen's last row (:class:`Ends`),
    before the chunk is yielded. ``inserted`` [N, T]: the rows --max-step inserted
    (:func:`planned_steps`), so that a calibration's factor goes by the plan's own steps ahead,
    as calibrate measured it.
    """
    S = drawn_paths(bundle, cfg)
    sampled = S > 0 and bundle.train_config.feedback == "sample"  # the RNN runs every path
    D = bundle.model_config.latent
    M = min(S, LATENT_DRAWS) if D and not sampled else S  # draws of z per specimen
    members = bundle.members
    combined = combination(bundle)
    for idx in chunk_plan(series, S, cfg.rollout_batch, rows_per_specimen=M if sampled or D else 1):
        sub = series.take(idx)
        B, Tc = sub.y.shape
        last = last_obs[idx]
        future = (np.arange(Tc)[None, :] > last[:, None]) & (sub.row >= 0)  # [B, Tc]
        mean_block = np.zeros((B, Tc))
        path_block = np.full((B, S, Tc), np.nan, dtype=np.float32) if S else None
        draws = _ChunkDraws.of(sub, cfg.seed, S, sampled, M if D else 0, D, cfg.device)
        # durability calibrate's factor at each step after the warm-up (rows 1..Tc-1)
        calibrated = bundle.summary.get("calibration")
        steps = np.arange(1, Tc)[None, :] - last[:, None]
        if inserted is not None and calibrated:
            steps = own_steps(inserted[idx, :Tc], last)[:, 1:]
        # one factor for both halves of the band goes into the member's spread; a factor per half
        # (calibrate --sides each) moves each path away from its member's mean by its side's
        sides = step_sides(calibrated, steps)
        widen = step_factors(calibrated, steps) if calibrated and sides is None else 1.0
        pop_block = np.zeros((B, Tc)) if population and D else None
        own_means, kept = [], []
        # the step after which each specimen's run stands at its last row (its prediction of it made)
        capture = None if ends is None else torch.as_tensor(eol_warp.last_rows(sub) - 1, device=cfg.device)
        for k, member in enumerate(members):
            pick = np.arange(k, S, len(members))  # this member's share of the paths
            mean, paths, pop, resume = _member_rollout(
                member, sub, last, cfg, draws, pick, source, widen, pop_block is not None, capture
            )
            kept.append(resume)
            mean_block[:, 1:] += mean / len(members)
            own_means.append(mean)
            if paths is not None:
                path_block[:, pick, 1:] = paths if sides is None else scale_sides(mean, paths, sides)
            if pop is not None:
                pop_block[:, 1:] += pop / len(members)
        if ENSEMBLE_PATHS == "centred" and S and len(members) > 1:
            # (an overflowed mean is refused just below, with one line; no numpy warning before it)
            with np.errstate(invalid="ignore", over="ignore"):
                for k, mean in enumerate(own_means):
                    pick = np.arange(k, S, len(members))
                    path_block[:, pick, 1:] += (mean_block[:, 1:] - mean)[:, None, :]
        if combined is not None:  # --combine mixed_effects: every path moved as the mean moves
            shift = (1.0 - combined[1]) * (mixed_effects.forecast_block(combined[0], sub, last) - mean_block)
            shift[~future] = 0.0
            mean_block += shift
            if path_block is not None:
                path_block += shift[:, None, :].astype(path_block.dtype)
        mean_block[:, 0] = np.nan
        mean_block[~future] = np.nan
        _check_finite(mean_block, future, sub, source)
        if ends is not None:
            ends.add(idx, kept)
        if (report := _PROGRESS.get()) is not None:
            report(len(idx))
        if pop_block is not None:
            pop_block[:, 0] = np.nan
            pop_block[~future] = np.nan
        if not S:
            yield idx, mean_block, None, pop_block
            continue
        path_block[~np.broadcast_to(future[:, None, :], path_block.shape)] = np.nan
        _check_finite(path_block, future[:, None, :], sub, source)
        yield idx, mean_block, path_block, pop_block


@dataclass
class _ChunkDraws:
    """A chunk's standard-normal draws, made once and shared by an ensemble's members (each
    specimen's from its own generator, see specimen_noise)."""

    paths: np.ndarray | torch.Tensor | None  # [B, S] one per path (mean feedback), [B, S, Tc-1] (sampled)
    latent: torch.Tensor | None  # [B, M, D] for the draws of z (latent models)

    @classmethod
    def of(cls, sub: Series, seed: int, S: int, sampled: bool, M: int, D: int, device) -> _ChunkDraws:
        paths = None
        if S and sampled:
            paths = specimen_noise(sub.ids, S, max(sub.y.shape[1] - 1, 0), seed)
        elif S:
            paths = specimen_noise(sub.ids, S, 1, seed)[..., 0].numpy()
        latent = specimen_noise(sub.ids, M, D, seed, stream="latent").to(device) if M and D else None
        return cls(paths, latent)


def _member_rollout(
    bundle: ModelBundle,
    sub: Series,
    last: np.ndarray,
    cfg: ForecastConfig,
    draws: _ChunkDraws,
    pick: np.ndarray,
    source: str,
    widen: np.ndarray | float = 1.0,
    population: bool = False,
    capture: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, Resume | None]:
    """One model's forecast of a chunk: the mean path [B, Tc-1], the paths ``pick`` of the
    chunk's ([B, len(pick), Tc-1], None without samples), for a latent model with
    ``population`` the mean path with z = 0 for every specimen (the population's forecast;
    else None), durability units, rows 1..Tc-1, and with ``capture`` [B] where the mean run
    stood after each specimen's step ``capture[b]`` (model.Resume; else None).
    ``widen``: the factor [B, Tc-1] of a calibration (durability calibrate) on the paths' spread."""
    device, amp = cfg.device, cfg.amp
    model, scaler = bundle.model, bundle.scaler
    D = bundle.model_config.latent
    B, Tc = sub.y.shape
    t, feed, latent, cov = _member_inputs(bundle, sub, last, cfg, source)
    # a latent model's paths also draw z from the uncertainty of its fit to the warm-up
    z_draws, pop = None, None
    if D and draws.latent is not None:
        z_draws = draw_latent(latent, cov, draws.latent)  # [B, M, D]
    with autocast(device, amp):
        # invariant: a specimen's numbers do not depend on its chunk, shard or neighbours
        r = model.run(t, feed, invariant=True, latent=latent, capture=capture)
    mean = scaler.y_from_model(r.mean.float().cpu().numpy().astype(np.float64))  # rows 1..Tc-1
    kept = r.kept
    if D and population:
        with autocast(device, amp):
            r0 = model.run(t, feed, invariant=True, latent=torch.zeros_like(latent))
        pop = scaler.y_from_model(r0.mean.float().cpu().numpy().astype(np.float64))
    if draws.paths is None or not len(pick):
        return mean, None, pop, kept
    if bundle.train_config.feedback == "mean":
        # Trained free-running on its mean, the model's scale is the spread of the forecast at
        # each horizon step given the warm-up, not a one-step noise. Each path is the mean plus
        # that spread times one draw per path: the marginal quantiles are exact and a path is a
        # consistently fast or slow specimen, which is what end-of-life quantiles need.
        z = draws.paths[:, pick]  # [B, P]
        # fitted on validation in training, then per step on held-out specimens (calibrate)
        k = float(bundle.summary.get("scale_calibration") or 1.0) * np.asarray(widen, dtype=np.float64)
        scale = r.scale.float().cpu().numpy().astype(np.float64) * scaler.y_std * k  # [B, Tc-1]
        paths = mean[:, None, :] + scale[:, None, :] * z[:, :, None]  # [B, P, Tc-1]
        if z_draws is not None:  # path s runs with the s-th draw of z (cycling through M)
            shift = _latent_spread(model, t, feed, z_draws, scaler, device, amp) - mean[:, None, :]
            shift *= scale_refit.latent_spread(bundle.summary)  # as the refit sized it
            paths += (k if np.ndim(k) == 0 else k[:, None, :]) * shift[:, pick % draws.latent.shape[1], :]
        return mean, paths, pop, kept
    # DeepAR-style: each path feeds back its own sampled value (models trained that way)
    P = len(pick)
    noise = draws.paths[:, pick].reshape(B * P, -1).to(device)
    if z_draws is not None:  # the refit's factor on z's spread, here on the draws themselves
        z_draws = latent.unsqueeze(1) + scale_refit.latent_spread(bundle.summary) * (
            z_draws - latent.unsqueeze(1)
        )
    with autocast(device, amp):
        latent_s = None if z_draws is None else z_draws[:, pick].reshape(B * P, D)
        r = run_copies(model, t, feed, P, sample=True, noise=noise, latent=latent_s)
    return mean, scaler.y_from_model(r.path.float().cpu().numpy()).reshape(B, P, Tc - 1), pop, kept


def _member_inputs(bundle: ModelBundle, sub: Series, last: np.ndarray, cfg: ForecastConfig, source: str):
    """One model's inputs for a chunk: its tensors (on ``cfg.device``, in evaluation mode), which
    rows feed back the measurement (up to ``last``, the last warm-up row), and, for a latent model,
    each specimen's z fitted to its warm-up and that fit's covariance (else None, None)."""
    t, feed = _member_tensors(bundle, sub, last, cfg, source)
    latent = cov = None
    if bundle.model_config.latent:
        lo_obs = torch.as_tensor(last, device=cfg.device)
        latent, cov = fit_posterior(bundle.model, t, lo_obs.clamp(min=0) + 1)
    return t, feed, latent, cov


def _member_tensors(bundle: ModelBundle, sub: Series, last: np.ndarray, cfg: ForecastConfig, source: str):
    """One model's tensors for a chunk (on ``cfg.device``, the model in evaluation mode) and which
    rows feed back the measurement (up to ``last``, the last warm-up row)."""
    device = cfg.device
    bundle.model.to(device).eval()
    try:
        t = move(to_tensors(sub, bundle.scaler), device)
    except InputError as exc:  # a condition outside the domain of the model's --transform
        raise InputError(f"{source}: {exc.template}" if source else exc.template) from None
    lo_obs = torch.as_tensor(last, device=device)
    feed = t.observed & (torch.arange(sub.y.shape[1], device=device).unsqueeze(0) <= lo_obs.unsqueeze(1))
    feed[:, 0] = True
    return t, feed


def _latent_spread(model, t, feed, draws: torch.Tensor, scaler, device, amp) -> np.ndarray:
    """[B, M, Tc-1] the mean path (durability units) of each specimen under each draw of its z."""
    with autocast(device, amp):
        means = mean_paths(model, t, feed, draws)
    return scaler.y_from_model(means.cpu().numpy().astype(np.float64))


def _check_finite(values: np.ndarray, future: np.ndarray, sub: Series, source: str) -> None:
    """A forecast row that is not a number is an error, never a row silently left out: it means
    the inputs (or the model's scaling) are far outside anything the model can compute with."""
    bad = future & ~np.isfinite(values)  # [B, Tc] or [B, S, Tc]
    if not bad.any():
        return
    b, *_, t = np.unravel_index(int(np.argmax(bad)), bad.shape)
    raise InputError(
        f"{source or 'forecast'}: the forecast of specimen {sub.ids[b]} at time {sub.time[b, t]:g} is not a finite number "
        "(the computation overflowed); its conditions, times or durability are far outside what the "
        "model was trained on: check those values or re-train on data that covers them"
    )


def rollout(
    bundle: ModelBundle,
    series: Series,
    last_obs: np.ndarray,
    cfg: ForecastConfig,
    *,
    source: str = "",
    ends: Ends | None = None,
    inserted: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """All chunks of :func:`rollout_chunks` assembled: mean [N, T] and paths [N, S, T] or None.
    Holds every path in memory; ``forecast`` consumes the chunks instead. ``ends``,
    ``inserted``: as for rollout_chunks."""
    N, T = series.y.shape
    mean_out = np.full((N, T), np.nan)
    path_out = None
    chunks = rollout_chunks(bundle, series, last_obs, cfg, source=source, ends=ends, inserted=inserted)
    for idx, mean, paths, _ in chunks:
        Tc = mean.shape[1]
        mean_out[idx, :Tc] = mean
        if paths is not None:
            if path_out is None:
                path_out = np.full((N, paths.shape[1], T), np.nan, dtype=np.float32)
            path_out[idx, :, :Tc] = paths
    return mean_out, path_out


# -- future rows -----------------------------------------------------------------------------------
def last_observed(series: Series) -> np.ndarray:
    """[N] index of each specimen's last measured row (-1 if none)."""
    finite = np.isfinite(series.y)
    T = series.y.shape[1]
    rev = finite[:, ::-1].argmax(axis=1)
    idx = T - 1 - rev
    idx[~finite.any(axis=1)] = -1
    return idx


def extend_with_held_conditions(ds: Dataset, horizon: int) -> Dataset:
    """Add ``horizon`` rows after each specimen's last row: the step length continues the last
    spacing and the conditions are held at their last values."""
    s = ds.schema
    frame = ds.frame
    ids = frame[s.id_col].to_numpy()
    last = np.flatnonzero(np.r_[ids[1:] != ids[:-1], True])  # last row of each specimen
    prev = np.maximum(last - 1, 0)
    step = ds.t[last] - ds.t[prev]
    step[step <= 0] = 1.0
    k = np.tile(np.arange(1, horizon + 1), len(last))  # [N*H]
    base = np.repeat(last, horizon)
    new = frame.iloc[base].copy()
    if s.time_is_datetime:  # in the dates' own arithmetic and unit: a step of 125 h stays 125 h
        dates = pd.to_datetime(frame[s.time_col]).to_numpy()
        gap = dates[last] - dates[prev]
        gap[gap <= np.timedelta64(0, "s")] = np.timedelta64(1, "D")
        # numpy's date arithmetic wraps past its unit's range without a word, and pandas reads
        # dates in microseconds at most (to the year 294,246): refuse first
        days = gap / np.timedelta64(1, "D")
        if (ds.t[last] + horizon * days > 0.99 * np.iinfo(np.int64).max / 86_400e6).any():
            raise InputError(
                f"{ds.source}: `horizon` {horizon} `hold_conditions` would date rows past the last "
                "date a table can hold (the year 290,000 or so); lower `horizon`"
            )
        new[s.time_col] = dates[base] + k * np.repeat(gap, horizon)
    else:
        new[s.time_col] = ds.t[base] + k * np.repeat(step, horizon)
    new[s.target] = np.nan
    combined = pd.concat([frame, new], ignore_index=True)
    return validate(combined, s, source=ds.source)


def append_future(ds: Dataset, future: Dataset) -> Dataset:
    """Append the rows of a --future table (same layout, conditions filled) to the history."""
    s = ds.schema
    if (ds.time_zone is None) != (future.time_zone is None):  # one would be read as UTC: hours apart
        history, plan = f"the history's dates ({ds.source})", f"the `future` rows' dates ({future.source})"
        zoned, plain = (history, plan) if future.time_zone is None else (plan, history)
        zone = ds.time_zone if future.time_zone is None else future.time_zone
        raise InputError(
            f"{zoned} carry a time zone ({zone}) and {plain} do not, so they cannot be put in one order; "
            "give both tables' dates with a zone or both without"
        )
    extra = future.frame.copy()
    if s.target not in extra:
        extra[s.target] = np.nan
    measured = np.flatnonzero(np.isfinite(extra[s.target].to_numpy(dtype=np.float64, na_value=np.nan)))
    if len(measured):  # it would be appended as a measurement, and the forecast start after it
        i = int(measured[0])
        raise InputError(
            f"{future.source}: column '{s.target}' holds a value for specimen {extra[s.id_col].iloc[i]} at "
            f"{s.time_col} {show_time(extra[s.time_col], i, future.time_zone)}; `future` rows plan conditions: put "
            f"measurements in the history table, or leave '{s.target}' empty (or out)"
        )
    missing = [c for c in (s.id_col, s.time_col, *s.covariates, *s.static) if c not in extra]
    if missing:
        raise InputError(f"{future.source}: the future table lacks column(s) {', '.join(missing)}")
    _check_future_rows(ds, future)
    combined = pd.concat([ds.frame, extra[list(ds.frame.columns)]], ignore_index=True)
    return validate(combined, s, source=f"{ds.source} + {future.source}")


def no_history(future_source: str, ids, source: str, known=()) -> InputError:
    """The error for --future rows of specimens ``ids`` that ``source`` has no rows of; ``known``:
    the history's ids, for the one the first was probably meant to be (other case or spaces)."""
    unknown = sorted(set(map(str, ids)))
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    like = {str(k).strip().lower(): str(k) for k in known}.get(unknown[0].strip().lower())
    meant = f" (did you mean {like!r}?)" if like is not None else ""
    return InputError(
        f"{future_source}: specimen {unknown[0]!r}{meant}{more} is not in {source}; a `future` row needs "
        "the specimen's measured history to warm up on: put its measured rows in the history table, or "
        "leave it out of the plan"
    )


def _check_future_rows(ds: Dataset, future: Dataset) -> None:
    """Each --future row goes after its specimen's last row in the history, with the static labels
    its history has: refused here, naming both files, rather than as a clash of rows in the merged
    table (whose row numbers are in neither file)."""
    if not len(ds.frame) or not len(future.frame):
        return
    codes, text = id_codes(ds.frame, ds.schema.id_col)
    last = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])  # each specimen's last row
    present = pd.Index(np.asarray(text, dtype=object)[codes[last]])  # the ids of those rows
    fcodes, ftext = id_codes(future.frame, future.schema.id_col)
    where = present.get_indexer(np.asarray(ftext, dtype=object)[fcodes])
    known = np.flatnonzero(where >= 0)
    time_col = ds.schema.time_col
    unknown = np.flatnonzero(where < 0)
    if unknown.size:
        raise no_history(future.source, np.asarray(ftext, dtype=object)[fcodes[unknown]], ds.source, present)
    history_row = last[where[known]]
    early = future.t[known] <= ds.t[history_row]
    if early.any():
        k = int(np.flatnonzero(early)[0])
        i, h = int(known[k]), int(history_row[k])
        more = int(early.sum()) - 1
        raise InputError(
            f"{future.source}: specimen {ftext[fcodes[i]]}'s row at {time_col} "
            f"{show_time(future.frame[time_col], i, future.time_zone)} is not after its last row in {ds.source} "
            f"({time_col} {show_time(ds.frame[time_col], h, ds.time_zone)})"
            + (f", and {more} more row(s) like it" if more else "")
            + "; `future` rows continue each specimen's history: give them later times"
        )
    for c in ds.schema.static:
        planned = future.frame[c].astype(str).to_numpy()[known]
        measured = ds.frame[c].astype(str).to_numpy()[history_row]
        differ = planned != measured
        # a number is the same label however it is written (2 in the history, 2.0 in a plan)
        a, b = (pd.to_numeric(pd.Series(v), errors="coerce").to_numpy() for v in (planned, measured))
        both = np.isfinite(a) & np.isfinite(b)
        differ[both] = a[both] != b[both]
        if differ.any():
            k = int(np.flatnonzero(differ)[0])
            i = int(known[k])
            raise InputError(
                f"{future.source}: specimen {ftext[fcodes[i]]}'s {c} is {planned[k]!r} at {time_col} "
                f"{show_time(future.frame[time_col], i, future.time_zone)}, but {measured[k]!r} in {ds.source}; a static "
                "column keeps its specimen's value: give the history's"
            )


def limit_horizon(series: Series, last_obs: np.ndarray, horizon: int) -> Series:
    """Forget the rows more than ``horizon`` steps after each specimen's last measurement."""
    keep = np.arange(series.y.shape[1])[None, :] <= (last_obs + horizon)[:, None]
    row = np.where(keep, series.row, -1)
    lengths = (row >= 0).sum(axis=1)
    T = int(lengths.max())
    mask = keep[:, :T]
    return Series(
        ids=series.ids,
        lengths=lengths,
        time=np.where(mask, series.time[:, :T], np.nan),
        cond=np.where(mask[..., None], series.cond[:, :T], np.nan),
        y=np.where(mask, series.y[:, :T], np.nan),
        row=row[:, :T],
        static_numeric=series.static_numeric,
        static_categorical=series.static_categorical,
    )


# --max-step auto: a step is typical when its 25th nearest sampled training step lies no farther
# than that of 99 % of the sampled steps themselves. Measured on make demo's model (session 49,
# benchmarks/whatif.py and the test specimens' own schedules): 10 / 0.999 passed 7-day steps at
# 60 C (their RMSE 0.177 kept); 10 / 0.99 cut them (0.125) but the own schedules' RMSE rose
# 1 %; 25 / 0.99 cut them (0.125) and moved the own schedules' -0.2 %
AUTO_NEIGHBOURS = 25
AUTO_QUANTILE = 0.99
# The flag (extrapolated, the warning, --strict) takes a step as typical up to the farthest of the
# sampled training steps' own: then no training step is flagged. At 0.99, 3 of make demo's 48 test
# specimens were flagged on their own schedules, at 0.999 none there but a small table's most
# isolated training step (whose --strict then refused a plan of the table's own spacing); at 1
# neither, while every 14-day step at 60 C still is (session 49)
FLAG_QUANTILE = 1.0
AUTO_PIECES = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)  # the cuts auto tries, fewest first


class StepDomain:
    """Where the training steps lie in (conditions, log step length), from the sample a model file
    keeps (``step_sample``, since session 49): each coordinate scaled by the sample's sd. A step
    is typical when its AUTO_NEIGHBOURS-th nearest sampled training step is no farther than that
    of AUTO_QUANTILE of the sampled steps themselves (a k-nearest-neighbour applicability domain)."""

    def __init__(self, rows: np.ndarray, quantile: float = AUTO_QUANTILE):
        x = np.column_stack([rows[:, :-1], np.log(rows[:, -1])])
        self.sd = x.std(axis=0)
        self.sd[~(self.sd > 0)] = 1.0
        self.ref = x / self.sd
        self.log_length = x[:, -1]
        self.k = min(AUTO_NEIGHBOURS, len(rows) - 1)
        own = self.distance(self.ref, self_included=True)
        self.limit = float(np.quantile(own, quantile))
        self.shortest = float(rows[:, -1].min())

    @classmethod
    def of(cls, bundle: ModelBundle, quantile: float = AUTO_QUANTILE) -> StepDomain | None:
        """The domain of ``bundle``'s sampled steps (None without them), made once per bundle and
        quantile: a forecast in groups asks for it in every group."""
        cache = bundle.__dict__.setdefault("_step_domains", {})
        if quantile not in cache:
            cache[quantile] = cls._made(bundle, quantile)
        return cache[quantile]

    @classmethod
    def _made(cls, bundle: ModelBundle, quantile: float) -> StepDomain | None:
        kept = bundle.summary.get("step_sample") or {}
        rows = np.asarray(kept.get("rows") or [], dtype=np.float64)
        names = list(bundle.schema.covariates)
        if rows.ndim != 2 or list(kept.get("columns") or [])[:-1] != names:
            return None
        rows = rows[(rows[:, -1] > 0) & np.isfinite(rows).all(axis=1)]
        return cls(rows, quantile) if len(rows) > AUTO_NEIGHBOURS else None

    def distance(self, q: np.ndarray, self_included: bool = False) -> np.ndarray:
        """[M] the distance of each scaled point ``q`` [M, C+1] to its k-th nearest sampled step."""
        k = self.k + (1 if self_included else 0)
        ref = torch.from_numpy(self.ref).float()
        out = np.empty(len(q))
        for lo in range(0, len(q), 4096):  # 4,096 x 2,000 distances at a time, in float32
            d = torch.cdist(torch.from_numpy(q[lo : lo + 4096]).float(), ref)
            out[lo : lo + 4096] = torch.topk(d, k, dim=1, largest=False).values[:, -1].double().numpy()
        return out

    def longer(self, cond: np.ndarray, length: np.ndarray) -> np.ndarray:
        """[M] whether each step is longer than the shortest of the k sampled steps nearest its
        conditions. A step finer than every training step at such conditions is atypical too,
        and its pieces can look typical beside the short steps of other conditions; it is
        neither flagged nor cut (a 1-day step at 14.5 °C, where training's were 5-70 days)."""
        log_length = np.log(length)
        if self.ref.shape[1] == 1:  # no conditions: training's steps as a whole
            return log_length > self.log_length.min()
        ref = torch.from_numpy(self.ref[:, :-1]).float()
        out = np.empty(len(length), dtype=bool)
        for lo in range(0, len(length), 4096):
            q = torch.from_numpy(cond[lo : lo + 4096] / self.sd[:-1]).float()
            near = torch.topk(torch.cdist(q, ref), self.k, dim=1, largest=False).indices.numpy()
            out[lo : lo + 4096] = log_length[lo : lo + 4096] > self.log_length[near].min(axis=1)
        return out

    def typical(self, cond: np.ndarray, length: np.ndarray) -> np.ndarray:
        """[M] whether steps of ``length`` [M] at ``cond`` [M, C] are typical of training."""
        q = np.column_stack([cond, np.log(length)]) / self.sd
        return self.distance(q) <= self.limit

    def pieces(self, cond: np.ndarray, length: np.ndarray) -> np.ndarray:
        """[M] how many equal pieces each step is cut into: 1 where it is typical or no longer
        than training's steps at its conditions (:meth:`longer`), else the fewest of AUTO_PIECES
        that make its pieces typical, no shorter than the shortest training step (1 where none
        does: its conditions lie outside training's, which the range check says)."""
        out = np.ones(len(length), dtype=np.int64)
        todo = np.flatnonzero(~self.typical(cond, length))
        todo = todo[self.longer(cond[todo], length[todo])]
        for m in AUTO_PIECES:
            todo = todo[length[todo] / m >= self.shortest]
            if len(todo) == 0:
                break
            ok = self.typical(cond[todo], length[todo] / m)
            out[todo[ok]] = m
            todo = todo[~ok]
        return out


def step_pieces(series: Series, last_obs: np.ndarray, max_step) -> np.ndarray:
    """[N, T] into how many equal pieces ``--max-step`` cuts each step: every step from a
    specimen's last measured row on that is longer than ``max_step`` (one length, or [N, T] one
    per step) into the fewest of at most that length, 1 elsewhere (float, so that a tiny length's
    count is checked against memory before anything is made of it)."""
    limit = np.broadcast_to(np.asarray(max_step, dtype=np.float64), series.y.shape)
    cut = _future_steps(series, last_obs) & (series.dt > limit)
    pieces = np.ones(series.y.shape)
    with np.errstate(over="ignore"):  # a tiny length's count overflows to inf: refused by memory
        pieces[cut] = np.ceil(series.dt[cut] / limit[cut] - 1e-9)
    return pieces


def cut_steps(series: Series, pieces: np.ndarray) -> tuple[Series, np.ndarray]:
    """``--max-step``: ``series`` with each step cut into its ``pieces`` [N, T] (step_pieces)
    equal pieces, and [N, T] which rows were inserted. An inserted row holds the conditions of the
    row it follows (they act until the next row), no measurement, and that row's frame index, so
    that it is run through and never written (the outputs take the plan's rows only)."""
    N, T = series.y.shape
    pos = np.arange(T)[None, :]
    step = series.dt
    if not (pieces > 1).any():  # auto on a plan of typical steps: nothing to cut
        return series, np.zeros((N, T), dtype=bool)
    pieces = pieces.astype(np.int64)
    pieces[pos >= series.lengths[:, None]] = 0  # padding: dropped, added again below
    lengths = pieces.sum(axis=1)
    width = int(lengths.max())
    src = np.zeros((N, width), dtype=np.int64)  # the plan's row each run row comes from
    part = np.zeros((N, width), dtype=np.int64)  # which piece of that row's step it is (0: the row)
    inside = np.arange(width)[None, :] < lengths[:, None]
    flat = pieces.ravel()
    every = np.arange(int(flat.sum()))
    b = np.repeat(np.repeat(np.arange(N), T), flat)
    at = every - np.repeat(np.cumsum(lengths) - lengths, lengths)  # position within its specimen
    src[b, at] = np.repeat(np.tile(np.arange(T), N), flat)
    part[b, at] = every - np.repeat(np.cumsum(flat) - flat, flat)
    take = np.take_along_axis
    k = take(pieces, src, axis=1).clip(min=1)
    time = take(series.time, src, axis=1) + part * take(step, src, axis=1) / k
    inserted = (part > 0) & inside
    cond = take(series.cond, src[..., None], axis=1)
    return (
        Series(
            ids=series.ids,
            lengths=lengths,
            time=np.where(inside, time, np.nan),
            cond=np.where(inside[..., None], cond, np.nan),
            y=np.where(inside & ~inserted, take(series.y, src, axis=1), np.nan),
            row=np.where(inside, take(series.row, src, axis=1), -1),
            static_numeric=series.static_numeric,
            static_categorical=series.static_categorical,
        ),
        inserted,
    )


# -- extrapolation ---------------------------------------------------------------------------------
def extrapolation(bundle: ModelBundle, series: Series, last_obs: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Flag [N, T] forecast rows whose inputs lie outside the training envelope, and say where."""
    env = bundle.summary.get("envelope", {})
    N, T = series.y.shape
    # step t feeds row t+1: inputs of forecast rows are rows last_obs .. length-2
    used = _future_steps(series, last_obs)
    flag = np.zeros((N, T), dtype=bool)
    lines = []
    columns = [(name, series.cond[..., j]) for j, name in enumerate(bundle.schema.covariates)]
    columns.append(("dt", series.dt))
    for name, values in columns:
        if name not in env:
            continue
        lo, hi = env[name]
        below, above = _out_of_range(values, used, lo, hi)
        out = below | above
        if not out.any():
            continue
        flag[:, 1:] |= out[:, :-1]
        label = "step length" if name == "dt" else name
        for b in np.flatnonzero(out.any(axis=1)):
            worst, side = _farthest(values[b][out[b]], above[b].any(), lo, hi)
            lines.append(
                f"specimen {series.ids[b]}: {label} reaches {worst:.4g} in the forecast, {side} "
                f"the training range [{lo:.4g}, {hi:.4g}]"
            )
    flag, long = long_steps(bundle, series, used, flag, env)
    lines += long
    flag, older = _older_than_training(bundle, series, last_obs, flag)
    lines += older
    # A static category the model never saw falls back to its "unseen" embedding (code 0), which
    # training never updated: every forecast row of such a specimen is an extrapolation.
    for j, (name, vocab) in enumerate(bundle.scaler.static_vocab.items()):
        labels = series.static_categorical[:, j].astype(str)
        unseen = ~np.isin(labels, np.asarray(vocab, dtype=str))
        if not unseen.any():
            continue
        flag[unseen, 1:] |= used[unseen, :-1]
        for value in sorted({str(v) for v in labels[unseen]}):
            who = [series.ids[b] for b in np.flatnonzero(labels == value)]
            lines.append(
                f"static '{name}' = {value!r} (specimen {', '.join(who[:3])}"
                + (f" and {len(who) - 3} more" if len(who) > 3 else "")
                + f") was not seen in training (known: {', '.join(map(str, vocab[:8]))}"
                + (" ..." if len(vocab) > 8 else "")
                + "); the model treats it as an unknown category"
            )
    return flag, lines


def _out_of_range(values: np.ndarray, where: np.ndarray, lo: float, hi: float):
    """([..] below, [..] above) the training range [lo, hi] at ``where``. Rounding apart is not
    outside: relative to the range, or to the values' size where the range has none (every
    training step 0.01 long; a forecast's step made by a sum or a median lands 1e-17 beside it)."""
    tol = 1e-9 * max(hi - lo, abs(lo), abs(hi), 1e-12)
    return where & (values < lo - tol), where & (values > hi + tol)


def _farthest(v: np.ndarray, above: bool, lo: float, hi: float) -> tuple[float, str]:
    """A specimen's values outside [lo, hi], ``v``: the farthest out, and how far and on which side."""
    worst = v.max() if above and v.max() > hi else v.min()
    return worst, f"{worst - hi:.4g} above" if worst > hi else f"{lo - worst:.4g} below"


def _older_than_training(bundle: ModelBundle, series: Series, last_obs: np.ndarray, flag: np.ndarray):
    """The forecast rows farther from their specimen's first row than any training specimen was
    measured (``longest_span``; model files before it are not checked): the network's state runs
    on where no training specimen took it. Returns ``flag`` with them set, and a line per
    specimen."""
    span = bundle.summary.get("longest_span")
    if span is None:
        return flag, []
    pos = np.arange(series.y.shape[1])[None, :]
    rows = (pos > last_obs[:, None]) & (series.row >= 0)  # the forecast rows (not inserted pieces)
    with np.errstate(invalid="ignore"):
        age = series.time - series.time[:, :1]
        older = rows & (age > span + 1e-9 * max(abs(span), 1e-12))
    if not older.any():
        return flag, []
    unit = " days" if bundle.schema.time_is_datetime else ""
    lines = []
    for b in np.flatnonzero(older.any(axis=1)):
        far = float(np.nanmax(np.where(older[b], age[b], np.nan)))
        lines.append(
            f"specimen {series.ids[b]}: the forecast runs to {far:.4g}{unit} after its first row, "
            f"{far - span:.4g}{unit} past the longest training specimen's {span:.4g}{unit}"
        )
    return flag | older, lines


def outside_target_range(bundle: ModelBundle, ids, mean: np.ndarray, rows: np.ndarray):
    """[B, T] the forecast ``rows`` whose mean durability lies outside the range measured in
    training (``target_range``: the model never saw such a value fed back), and a line per
    specimen (``ids``) that reaches there."""
    seen = bundle.summary.get("target_range")
    out = np.zeros(mean.shape, dtype=bool)
    if not seen:
        return out, []
    lo, hi = seen
    with np.errstate(invalid="ignore"):
        below, above = _out_of_range(mean, rows, lo, hi)
    out = below | above
    lines = []
    target = bundle.schema.target
    for b in np.flatnonzero(out.any(axis=1)):
        worst, side = _farthest(mean[b][out[b]], above[b].any(), lo, hi)
        lines.append(
            f"specimen {ids[b]}: the forecast {target} reaches {worst:.4g}, {side} every {target} "
            f"measured in training [{lo:.4g}, {hi:.4g}]"
        )
    return out, lines


def long_steps(bundle: ModelBundle, series: Series, used: np.ndarray, flag: np.ndarray, env: dict):
    """The forecast steps, each input within its training range, that are longer than training's
    steps at their conditions: not typical of the training steps (StepDomain), while some cut of
    them into equal pieces is. A model learns its steps from the schedule it was measured on,
    often short steps where the conditions are harsh: against the coating physics, 70 days at
    60 °C forecast with RMSE 0.233 in 14-day steps and 0.091 in 1-day steps, where training's
    steps at 60 °C were 0.25-5 days long (docs/GUIDE.md, "What if"). Model files without the
    sample of training steps are not checked. Returns ``flag`` with the rows such steps reach
    set, and a line per specimen."""
    domain = StepDomain.of(bundle, FLAG_QUANTILE)
    if domain is None:
        return flag, []
    inside = used & (series.dt > 0)
    for j, name in enumerate(bundle.schema.covariates):
        if name in env:
            lo, hi = env[name]
            inside &= (series.cond[..., j] >= lo) & (series.cond[..., j] <= hi)
    if "dt" in env:
        inside &= series.dt <= env["dt"][1] * (1 + 1e-9)
    if not inside.any():
        return flag, []
    at = np.argwhere(inside)
    length = series.dt[inside]
    pieces = domain.pieces(series.cond[inside], length)
    long = pieces > 1
    if not long.any():
        return flag, []
    out = np.zeros_like(flag)
    out[at[long, 0], at[long, 1]] = True
    flag = flag.copy()
    flag[:, 1:] |= out[:, :-1]
    lines = []
    first = [np.flatnonzero(long & (at[:, 0] == b))[0] for b in np.unique(at[long, 0])]
    auto = StepDomain.of(bundle).pieces(series.cond[inside][first], length[first])  # what auto would cut
    for i, m in zip(first, auto, strict=True):
        b, t = at[i]
        at_cond = ", ".join(f"{n} {series.cond[b, t, j]:.4g}" for j, n in enumerate(bundle.schema.covariates))
        cut = f" (`max_step` auto: pieces of {length[i] / m:.4g})" if m > 1 else ""
        lines.append(
            f"specimen {series.ids[b]}: a step of {length[i]:.4g} at {at_cond}, longer than training's steps "
            f"at such conditions{cut}; the forecast depends on how such a plan is cut: give future rows the "
            "spacing the measurements had there, or cut them with `max_step` (docs/GUIDE.md, What if)"
        )
    return flag, lines


# -- the whole forecast ----------------------------------------------------------------------------
def forecast(
    bundle: ModelBundle,
    ds: Dataset,
    cfg: ForecastConfig,
    *,
    horizon: int | None = None,
    hold_conditions: bool = False,
    future: Dataset | None = None,
    want_paths: bool = False,
    conditions: dict[str, float] | None = None,
    scenarios: list[Scenario] | None = None,
) -> ForecastResult:
    """Forecast every specimen of ``ds`` from its measured history over its future rows: the
    table as one group of :class:`ForecastStream`. ``conditions`` are put on every future row;
    ``scenarios``: one forecast each (see scenarios.py), told apart by a ``scenario`` column."""
    cfg.validate()
    check_horizon(horizon)
    if future is not None:
        ds = append_future(ds, future)
    stream = ForecastStream(
        bundle,
        [ds],
        cfg,
        horizon=horizon,
        hold_conditions=hold_conditions,
        want_paths=want_paths,
        source=ds.source,
        conditions=conditions,
        scenarios=scenarios,
    )
    parts = list(stream)
    if len(parts) == 1:  # the one group's frames as they are
        return replace(parts[0], **_counts(stream.result))
    return replace(
        stream.result,
        forecast=pd.concat([p.forecast for p in parts], ignore_index=True),
        eol=None if parts[0].eol is None else pd.concat([p.eol for p in parts], ignore_index=True),
        paths=None if parts[0].paths is None else pd.concat([p.paths for p in parts], ignore_index=True),
    )


def _counts(result: ForecastResult) -> dict:
    """The fields of ``result`` that describe the run, not its tables."""
    return {
        f.name: getattr(result, f.name) for f in fields(result) if f.name not in ("forecast", "eol", "paths")
    }


class ForecastStream:
    """Forecast a sequence of Datasets (groups of whole specimens) one at a time.

    Iterating yields one :class:`ForecastResult` per group that has rows to forecast; afterwards
    ``result`` describes the whole run (counts, warnings; no tables). Raises the same error as
    :func:`forecast` when no group had anything to forecast.
    """

    MAX_WARNINGS = 1000  # extrapolation lines kept (one per specimen); the rest are counted

    def __init__(
        self,
        bundle: ModelBundle,
        groups,
        cfg: ForecastConfig,
        *,
        horizon: int | None = None,
        hold_conditions: bool = False,
        want_paths: bool = False,
        source: str = "",
        conditions: dict[str, float] | None = None,
        scenarios: list[Scenario] | None = None,
    ):
        cfg.validate()
        check_horizon(horizon)
        self.bundle, self.groups = bundle, groups
        self.cfg = replace(cfg, bounds=resolve_bounds(bundle, cfg.bounds))
        self.options = {"horizon": horizon, "hold_conditions": hold_conditions, "want_paths": want_paths}
        self.source = source
        self.conditions, self.scenarios = dict(conditions or {}), scenarios
        self.result = ForecastResult(None, None, None)

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings

    def __iter__(self) -> Iterator[ForecastResult]:
        total = ForecastResult(None, None, None)
        for ds in self.groups:
            part = self._group(ds)
            if part is None:
                ids = _group_ids(ds)
                total.n_skipped += len(ids)
                total.skipped.extend(ids[: max(0, 6 - len(total.skipped))])
                continue
            total.n_skipped += part.n_skipped
            total.skipped.extend(part.skipped[: max(0, 6 - len(total.skipped))])
            total.extrapolation.extend(part.extrapolation[: self.MAX_WARNINGS - len(total.extrapolation)])
            total.n_extrapolating += part.n_extrapolating
            total.n_cut_steps += part.n_cut_steps
            total.n_cut_specimens += part.n_cut_specimens
            total.held = part.held
            if part.n_off_warmup:
                total.n_off_warmup += part.n_off_warmup
                total.off_warmup.extend(part.off_warmup[: max(0, OFF_WARMUP_IDS - len(total.off_warmup))])
                lo, hi = total.off_warmup_rows or part.off_warmup_rows
                total.off_warmup_rows = (min(lo, part.off_warmup_rows[0]), max(hi, part.off_warmup_rows[1]))
                total.trained_warmup = part.trained_warmup
            total.n_eol += part.n_eol
            total.n_eol_past += part.n_eol_past
            total.eol_rule = part.eol_rule
            total.specimens += part.specimens
            total.rows += part.rows
            total.samples, total.seed, total.quantiles = part.samples, part.seed, part.quantiles
            total.bounds, total.scenarios, total.cut_auto = part.bounds, part.scenarios, part.cut_auto
            yield part
        if not total.specimens:
            raise _nothing_to_forecast(self.source, self.bundle.schema.target)
        total.steps_differ = calibrated_steps_line(self.bundle, self.cfg, total.n_cut_steps)
        self.result = total

    def _group(self, ds: Dataset) -> ForecastResult | None:
        """The forecast of one group: one run, or one per scenario put together."""
        if self.scenarios is None:
            return _forecast_group(self.bundle, ds, self.cfg, conditions=self.conditions, **self.options)
        parts = [
            _forecast_group(self.bundle, ds, self.cfg, conditions=s.values, **self.options)
            for s in self.scenarios
        ]
        if parts[0] is None:  # the future rows do not depend on the scenario
            return None
        names = [s.name for s in self.scenarios]
        id_col = None if ds.schema.id_synthetic else ds.schema.id_col
        lines = [
            f"scenario {n}: {line}" for n, p in zip(names, parts, strict=True) for line in p.extrapolation
        ]

        def joined(tables: list[pd.DataFrame | None]) -> pd.DataFrame | None:
            return None if tables[0] is None else interleave(tables, names, id_col)

        return replace(
            parts[0],
            forecast=joined([p.forecast for p in parts]),
            eol=joined([p.eol for p in parts]),
            paths=joined([p.paths for p in parts]),
            rows=sum(p.rows for p in parts),
            extrapolation=lines,
            n_extrapolating=sum(p.n_extrapolating for p in parts),
            n_cut_steps=sum(p.n_cut_steps for p in parts),
            n_cut_specimens=_cut_in_any(parts),
            scenarios=names,
        )


def calibrated_steps_line(bundle: ModelBundle, cfg: ForecastConfig, cut_steps: int) -> str | None:
    """The warning that a forecast of ``cfg`` (which cut ``cut_steps``) ran other steps
    (--max-step) than the backtests the model's band was calibrated on (the calibration block's
    ``max_step`` and ``cut_steps``, recorded since session 51); None when they ran alike, or the
    model is not calibrated or its block predates the record, or the forecast draws no paths (the
    calibration scales the paths' spread and moves their crossings, not the mean)."""
    block = bundle.summary.get("calibration") or {}
    if "max_step" not in block or not drawn_paths(bundle, cfg):
        return None
    now = effective_max_step(bundle, cfg.max_step) or "off"
    return steps_differ_line(block["max_step"], block.get("cut_steps"), now, cut_steps)


def _cut_in_any(parts: list[ForecastResult]) -> int:
    """How many of a group's specimens any of its scenarios cut (the same specimens in each)."""
    masks = [p.cut for p in parts if p.cut is not None]
    return int(np.logical_or.reduce(masks).sum()) if masks else 0


def resolve_bounds(bundle: ModelBundle, bounds):
    """The bounds to clip to: ``bounds`` when given; else, for a monotonic model, the range of
    the target in its training data (recorded since this option; older files: none)."""
    if bounds is not None:
        return None if tuple(bounds) == (None, None) else tuple(bounds)
    seen = bundle.summary.get("target_range")
    if bundle.model_config.monotonic != "none" and seen:
        return float(seen[0]), float(seen[1])
    return None


def _check_memory(series: Series, cfg: ForecastConfig, want_paths: bool, source: str) -> None:
    """Refuse a forecast whose arrays would not fit the memory budget, before it starts: one
    chunk's sample paths (at least one specimen's) with their float64 copies, the output rows, and
    with --paths-out every path of every row."""
    N, T = series.y.shape
    S = max(cfg.samples, 1)
    rows = int(np.count_nonzero(series.row >= 0))  # at most this many forecast rows
    cells = min(N * T * S, max(MEMORY_BUDGET, T * S))  # one chunk's paths
    need = cells * 48 + rows * 8 * (8 + len(cfg.quantiles))
    if want_paths:
        need += rows * S * 40
    fix = (
        "lower `samples`"
        + (" or leave out --paths-out" if want_paths else "")
        + " or `horizon`, or forecast a few specimens at a time (--chunk-specimens N)"
    )
    limits.check_memory(
        need, f"{source}: a forecast of {N:,} specimen(s) x {S:,} sample path(s) over up to {T:,} steps", fix
    )


def _group_ids(ds: Dataset) -> list[str]:
    codes, text = id_codes(ds.frame, ds.schema.id_col)
    return [str(text[c]) for c in codes[specimen_starts(ds.frame, ds.schema.id_col)]]


def _nothing_to_forecast(source: str, target: str) -> InputError:
    return InputError(
        f"{source}: no rows to forecast: every specimen's last row is measured; add future rows "
        f"with conditions and an empty {target}, pass their conditions with `future` FILE, or extend with `horizon` N `hold_conditions`"
    )


def _future_steps(series: Series, last_obs: np.ndarray) -> np.ndarray:
    """[N, T] the steps from each specimen's last measured row to its last row."""
    pos = np.arange(series.y.shape[1])[None, :]
    return (pos >= last_obs[:, None]) & (pos < (series.lengths - 1)[:, None])


def step_limits(bundle: ModelBundle, series: Series, last_obs: np.ndarray, max_step, source: str):
    """The longest step the network is to take: ``max_step`` itself, or for "auto" [N, T] each
    future step's length over the pieces StepDomain.pieces cuts it into (inf elsewhere)."""
    if max_step != "auto":
        return float(max_step)
    domain = StepDomain.of(bundle)
    if domain is None:
        raise InputError(
            f"{source}: `max_step` auto reads the training steps a model file keeps since session 49; "
            "this one has none: give a length (`max_step` 1), or retrain the model"
        )
    future = _future_steps(series, last_obs) & (series.dt > 0)
    limit = np.full(series.y.shape, np.inf)
    at = np.argwhere(future)
    length = series.dt[future]
    limit[at[:, 0], at[:, 1]] = length / domain.pieces(series.cond[future], length) * (1 + 1e-9)
    return limit


def effective_max_step(bundle: ModelBundle, max_step) -> float | str | None:
    """What ``ForecastConfig.max_step`` does with ``bundle``: a length, "auto", or None (the plan's
    steps as given: "off", or the default on a model file without a sample of its steps)."""
    if max_step is None:
        return "auto" if StepDomain.of(bundle) is not None else None
    return None if max_step == "off" else max_step


def planned_steps(
    bundle: ModelBundle, series: Series, last_obs: np.ndarray, max_step, source: str
) -> tuple[Series, np.ndarray, np.ndarray]:
    """The steps the network runs (``ForecastConfig.max_step``, :func:`effective_max_step`):
    ``series`` cut (:func:`cut_steps`), [N, T] which rows were inserted, and [N] how many of each
    specimen's future steps were cut ("auto", or a length given).

    Every step auto finds too long is cut, however many pieces its specimen's run grows to: the
    rollout batches specimens of like lengths (:func:`chunk_plan`), so a long run costs its own
    rows, not its neighbours'. (Until session 51 the default left a specimen as given where its
    run would grow past 3 x its rows, because a long run padded every batch it shared; a year at
    60 C in 73-day steps after 20 warm-up rows then scored RMSE 0.533 against 0.067 cut,
    benchmarks/whatif.py.)"""
    max_step = effective_max_step(bundle, max_step)
    none = np.zeros(len(series.ids), dtype=np.int64)
    if max_step is None:
        return series, np.zeros(series.y.shape, dtype=bool), none
    limit = step_limits(bundle, series, last_obs, max_step, source)
    pieces = step_pieces(series, last_obs, limit)
    what = f"`max_step` {limit:g}" if np.ndim(limit) == 0 else "`max_step` auto"
    _check_cut_memory(series, last_obs, pieces, what, source)
    cut, inserted = cut_steps(series, pieces)
    return cut, inserted, (pieces > 1).sum(axis=1)


def own_steps(inserted: np.ndarray, last_obs: np.ndarray) -> np.ndarray:
    """[N, T] how many of the plan's own steps after the cut-off ``last_obs`` each row of a cut
    series is: a plan row counts its step, an inserted row the step of the plan row it leads to
    (rows at or before the cut-off: 0 or less)."""
    own = np.cumsum(~inserted, axis=1)
    return own - own[np.arange(len(last_obs)), last_obs][:, None] + inserted


def _check_cut_memory(
    series: Series, last_obs: np.ndarray, pieces: np.ndarray, what: str, source: str
) -> None:
    """Refuse a --max-step (``what``) that would make more rows than memory holds, before making
    them: the future steps' ``pieces`` (step_pieces)."""
    added = float(pieces[_future_steps(series, last_obs)].sum())  # inf for a length of 5e-324
    count = f"{int(added):,}" if added < 1e15 else f"more than {1e15:,.0f}"
    limits.check_memory(
        min(added, 1e300) * 8 * (series.cond.shape[2] + 4) * 4,
        f"{source}: {what} cuts the future steps into {count} pieces, which",
        "give a longer `max_step`, or `max_step` off to forecast the plan's steps as given",
    )


def _skipped_line(skipped: list[str], count: int | None = None) -> str:
    count = len(skipped) if count is None else count
    return (
        f"{count} specimen(s) have no future rows and are not forecast: "
        + ", ".join(skipped[:5])
        + (" ..." if count > 5 else "")
    )


def _held(ds: Dataset, ids: list, has_future: np.ndarray, horizon: int):
    """``--hold-conditions``: ``ds`` with ``horizon`` rows added to each of its specimens (``ids``),
    and its series, last measured rows and which specimens have future rows."""
    if has_future.any():
        who = [ids[i] for i in np.flatnonzero(has_future)]
        more = f" (and {len(who) - 1} more)" if len(who) > 1 else ""
        raise InputError(
            f"{ds.source}: specimen {who[0]}{more} ends in rows without a measured {ds.schema.target} (future "
            "rows); `hold_conditions` only extends specimens without them: drop those rows, or forecast "
            "them as planned without `hold_conditions`"
        )
    added = len(ids) * horizon
    limits.check_memory(
        added * 8 * (len(ds.frame.columns) + 4) * 4,  # the new rows, as the frame and its copies
        f"{ds.source}: `horizon` {horizon} `hold_conditions` adds {added:,} rows, which",
        "lower `horizon`",
    )
    ds = extend_with_held_conditions(ds, horizon)
    series = to_series(ds)
    last_obs = last_observed(series)
    return ds, series, last_obs, last_obs < series.lengths - 1


def _forecast_group(
    bundle: ModelBundle,
    ds: Dataset,
    cfg: ForecastConfig,
    *,
    horizon: int | None,
    hold_conditions: bool,
    want_paths: bool,
    conditions: dict[str, float] | None = None,
) -> ForecastResult | None:
    """Forecast the specimens of ``ds`` (``conditions`` on every future row); None when none
    has a row to forecast."""
    held: list[str] = []
    series = to_series(ds)
    last_obs = last_observed(series)
    has_future = (last_obs >= 0) & (last_obs < series.lengths - 1)
    no_history = [series.ids[i] for i in np.flatnonzero(last_obs < 0)]
    if no_history:
        raise InputError(
            f"{ds.source}: specimen {no_history[0]} has no measured {ds.schema.target} to warm up on"
            + (f" (and {len(no_history) - 1} more)" if len(no_history) > 1 else "")
            + f"; give each specimen at least its first measured {ds.schema.target}, or leave it out"
        )
    # a model without conditions has none to hold: `horizon` alone extends a table of history
    implied = not ds.schema.covariates and not has_future.any()
    if horizon and (hold_conditions or implied):
        ds, series, last_obs, has_future = _held(ds, series.ids, has_future, horizon)
    if horizon and hold_conditions and ds.schema.covariates:
        kept = [c for c in ds.schema.covariates if c not in (conditions or {})]
        what = "conditions" if not conditions else f"{', '.join(kept)} (the others from `set`)"
        held.append(
            f"{what} held at each specimen's last values for {horizon} steps (`hold_conditions`)"
            if kept or not conditions
            else f"{horizon} steps added at each specimen's last spacing, the conditions from `set`"
        )
    if not has_future.any():
        return None
    series = set_future_conditions(series, last_obs, conditions or {}, ds.schema.covariates)
    if horizon:
        series = limit_horizon(series, last_obs, horizon)
    series, inserted, cut_by = planned_steps(bundle, series, last_obs, cfg.max_step, ds.source)
    n_cut, cut = int(cut_by.sum()), cut_by > 0
    _check_memory(series, cfg, want_paths, ds.source)
    skipped = [series.ids[i] for i in np.flatnonzero(~has_future)]
    warm = last_obs + 1  # a warm-up is the rows up to the last measured one, as training counts it
    trained, off = trained_warmups(bundle), np.zeros(len(series.ids), dtype=bool)
    if trained is not None:
        off = has_future & ((warm < trained[0]) | (warm > trained[1]))
    flag, extrap_lines = extrapolation(bundle, series, last_obs)
    if extrap_lines:
        if cfg.strict:
            raise InputError(f"{ds.source}: {extrap_lines[0]} (`strict` forbids extrapolation)")

    # One chunk of specimens at a time: only the chunk's sample paths are ever in memory.
    schema, target = ds.schema, ds.schema.target
    times = ds.frame[schema.time_col].to_numpy()
    parts, eol_parts, path_parts = [], [], []
    done: list[tuple[np.ndarray, pd.DataFrame]] = []  # each chunk's specimens and end-of-life table
    keys, eol_keys = [], []  # each part's rows' specimens (chunks of like lengths, not in order)
    # with an end-of-life interval that runs past the horizon, each member's run is kept where the
    # rollout leaves it at each specimen's last row, and goes on from there
    ends = Ends() if keeps_ends(bundle, cfg) else None
    # ... and the end-of-life tables of several chunks wait for one run past the horizon together
    # (_PastHorizon): a run steps as many specimens at once as MAX_RNN_ROWS allows, not a chunk's
    waiting = _PastHorizon(bundle, series, last_obs, cfg, ds, ends) if ends is not None else None
    chunks = rollout_chunks(
        bundle, series, last_obs, cfg, source=ds.source, population=True, ends=ends, inserted=inserted
    )
    for idx, mean, paths, pop in chunks:
        Tc = mean.shape[1]
        if cfg.bounds is not None:  # in float64, so that a bound is reported as the number given
            mean = clip(mean, cfg.bounds)
            paths = None if paths is None else clip(paths.astype(np.float64), cfg.bounds)
            pop = None if pop is None else clip(pop, cfg.bounds)
        sub = series.take(idx)
        sel = np.isfinite(mean) & (sub.row >= 0) & ~inserted[idx, :Tc]  # [B, Tc] the forecast rows
        rows = sub.row[sel]
        keys.append(np.broadcast_to(idx[:, None], sel.shape)[sel])
        part = ds.frame.iloc[rows][[schema.id_col, *schema.static, schema.time_col]].reset_index(drop=True)
        # the mean path, as --samples 0 gives it and training scores it, not the paths' average:
        # the same number whatever --seed, the one eol_time crosses, unmoved by a calibration;
        # on the saved benchmark models' runs it scored better on 27 of 42 (benchmarks/results/notes.md,
        # session 48)
        part[f"{target}_mean"] = mean[sel]
        if paths is not None:
            vals = np.moveaxis(paths, 1, 2)[sel].astype(np.float64)  # [R, S]
            for q, col in zip(cfg.quantiles, np.quantile(vals, cfg.quantiles, axis=1), strict=True):
                part[quantile_column(target, q)] = col
            if want_paths:
                path_parts.append((part[schema.id_col].to_numpy(), times[rows], vals))
        if pop is not None:  # a latent model: the population's forecast (z = 0) under the same conditions
            part[f"{target}_population"] = pop[sel]
        for j, c in enumerate(schema.covariates):  # as forecast: with the --set / scenario values
            part[c] = sub.cond[..., j][sel]
        beyond, lines = outside_target_range(bundle, sub.ids, mean, sel)
        if lines and cfg.strict:
            raise InputError(f"{ds.source}: {lines[0]} (`strict` forbids extrapolation)")
        extrap_lines += lines
        part["extrapolated"] = (flag[idx, :Tc] | beyond)[sel]
        parts.append(part)
        if waiting is not None:
            done += waiting.add(idx, sub, mean, paths, pop)
        elif cfg.threshold is not None:
            done.append((idx, end_of_life(sub, last_obs[idx], mean, paths, cfg, ds, bundle, pop, ds.source)))
    if waiting is not None:
        done += waiting.flush()
    for at, eol in done:
        # the specimens forecast: one with no future row was skipped (and said so), not survived
        eol_parts.append(eol[has_future[at]].reset_index(drop=True))
        eol_keys.append(at[has_future[at]])
    # back in the table's order: the rows of each specimen as the input gives them
    order = _input_order(keys)
    out = pd.concat(parts, ignore_index=True)
    out = out if order is None else out.iloc[order].reset_index(drop=True)
    path_frame = _path_frame(schema, *_joined_paths(path_parts, order)) if path_parts else None
    if schema.id_synthetic:
        out = out.drop(columns=[schema.id_col])
        if path_frame is not None:
            path_frame = path_frame.drop(columns=[schema.id_col])
    eol = pd.concat(eol_parts, ignore_index=True) if eol_parts else None
    eol_order = _input_order(eol_keys)
    eol = eol if eol is None or eol_order is None else eol.iloc[eol_order].reset_index(drop=True)
    return ForecastResult(
        out,
        eol,
        path_frame,
        specimens=int(has_future.sum()),
        rows=len(out),
        samples=drawn_paths(bundle, cfg),
        seed=cfg.seed,
        quantiles=tuple(cfg.quantiles),
        held=held,
        skipped=skipped,
        n_skipped=len(skipped),
        extrapolation=extrap_lines,
        n_extrapolating=len(extrap_lines),
        n_cut_steps=n_cut,
        n_cut_specimens=int(cut.sum()),
        cut_auto=effective_max_step(bundle, cfg.max_step) == "auto",
        cut=cut,
        bounds=cfg.bounds,
        n_off_warmup=int(off.sum()),
        off_warmup=[series.ids[i] for i in np.flatnonzero(off)[:OFF_WARMUP_IDS]],
        off_warmup_rows=(int(warm[off].min()), int(warm[off].max())) if off.any() else None,
        trained_warmup=trained,
        n_eol=0 if eol is None else len(eol),
        n_eol_past=0 if eol is None else int((eol["status"] == "already past").sum()),
        eol_rule=None if cfg.threshold is None else (cfg.direction, cfg.threshold),
    )


def trained_warmups(bundle: ModelBundle) -> tuple[int, int] | None:
    """The shortest and longest measured warm-up a ``--warmup-min`` model's training rollouts
    were fed (training.batch_feed draws them), or None when training drew every length from 1
    (the default, or a file from before the option)."""
    share = float(getattr(bundle.train_config, "warmup_min", 0.0) or 0.0)
    if share <= 0:
        return None
    fed = bundle.summary.get("trained_warmup_rows")
    if fed:  # a share of each specimen's rows (--val-context-frac), or rows for all
        return int(fed[0]), int(fed[1])
    context = int(bundle.summary.get("val_context") or 0)  # a file from before the range was kept
    if context < 1:
        return None
    return shortest_warmup(share, context), context


def _off_warmup_line(result: ForecastResult) -> str:
    """One warning line for the specimens whose warm-up training never fed (``--warmup-min``)."""
    a, b = result.trained_warmup
    lo, hi = result.off_warmup_rows
    rows = f"{lo}" if lo == hi else f"{lo}-{hi}"
    trained = f"{a}" if a == b else f"{a}-{b}"
    more = (
        f" and {result.n_off_warmup - len(result.off_warmup)} more"
        if result.n_off_warmup > len(result.off_warmup)
        else ""
    )
    return (
        f"specimen {', '.join(result.off_warmup)}{more}: forecast from a warm-up of {rows} rows, but this "
        f"model was trained only on warm-ups of {trained} rows (`warmup_min`): on the ageing benchmark such "
        "a model's error from other warm-up lengths was up to 2.3 x the default's; retrain with `warmup_min` 0 "
        '(docs/TRAINING.md, "How long a warm-up training sees")'
    )


def _input_order(keys: list[np.ndarray]) -> np.ndarray | None:
    """The permutation that puts the rows of chunks (``keys``: each row's specimen index, chunk by
    chunk) back in specimen order, each specimen's rows as they came; None when they already are."""
    if not keys:
        return None
    key = np.concatenate(keys)
    if not len(key) or (np.diff(key) >= 0).all():
        return None
    return np.argsort(key, kind="stable")


def _joined_paths(parts: list[tuple], order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chunks' (ids, times, paths [R, S]) as one, rows in ``order`` (None: as they came)."""
    ids, times, vals = (np.concatenate([p[j] for p in parts]) for j in range(3))
    if order is None:
        return ids, times, vals
    return ids[order], times[order], vals[order]


def _path_frame(schema, ids: np.ndarray, times: np.ndarray, vals: np.ndarray) -> pd.DataFrame:
    """The Monte Carlo paths of the forecast rows (``vals`` [R, S]) in long form: id, time,
    sample, value."""
    S = vals.shape[1]
    return pd.DataFrame(
        {
            schema.id_col: np.repeat(ids, S),
            schema.time_col: np.repeat(times, S),
            "sample": np.tile(np.arange(S), len(ids)),
            "value": vals.reshape(-1),
        }
    )


class Ends:
    """Where each member's mean run stood at each specimen's last forecast row, kept by
    :func:`rollout_chunks` (``ends=``) so that the end-of-life run past the horizon
    (:func:`_stretched_crossings`) goes on from there instead of running the horizon again. By
    specimen index (that of the series the rollout ran on), chunk by chunk."""

    def __init__(self) -> None:
        # a chunk's first specimen index -> (its specimen indices, one record per member)
        self._chunks: dict[int, tuple[np.ndarray, list[Resume]]] = {}

    def add(self, idx: np.ndarray, members: list[Resume | None]) -> None:
        """A chunk's records of its specimens ``idx`` (None: a member kept nothing, as a chunk of
        one-row specimens)."""
        if len(idx) and all(m is not None for m in members):
            self._chunks[int(idx[0])] = (np.asarray(idx, dtype=np.int64), [m.to("cpu") for m in members])

    def forget(self, idx: np.ndarray) -> None:
        if len(idx):
            self._chunks.pop(int(idx[0]), None)

    def take(self, index: np.ndarray) -> list[Resume] | None:
        """Each member's records of the specimens ``index`` in that order; None unless every one
        of them was kept."""
        index = np.asarray(index, dtype=np.int64)
        if not self._chunks or not len(index):
            return None
        chunks = list(self._chunks.values())
        held = np.concatenate([c[0] for c in chunks])  # every kept specimen, chunk by chunk
        owner = np.repeat(np.arange(len(chunks)), [len(c[0]) for c in chunks])
        at = np.concatenate([np.arange(len(c[0])) for c in chunks])  # its row in its chunk
        sort = np.argsort(held, kind="stable")
        pos = np.searchsorted(held[sort], index)
        if (pos >= len(held)).any() or (held[sort][np.minimum(pos, len(held) - 1)] != index).any():
            return None
        where, rows = owner[sort][pos], at[sort][pos]
        out = []
        for k in range(len(chunks[0][1])):
            parts = []
            for c in np.unique(where):
                record = chunks[int(c)][1][k]
                mine = rows[where == c]
                if (mine >= len(record.step)).any():
                    return None
                parts.append((np.flatnonzero(where == c), record.take(torch.as_tensor(mine))))
            order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")
            out.append(Resume.cat([p[1] for p in parts]).take(torch.as_tensor(order)))
        return out


class _PastHorizon:
    """End-of-life tables of a forecast's chunks, made a few chunks at a time so that their run
    past the horizon (:func:`_stretched_crossings`) steps their specimens together: each chunk
    holds MEMORY_BUDGET cells of Monte Carlo paths, a few hundred specimens of 200 paths, while
    the run holds one row per specimen and member and steps MAX_RNN_ROWS of them at once. A
    chunk's paths are reduced to their crossings when it comes; its table is made when the run
    has been (:meth:`add`, and :meth:`flush` at the end of the group). A specimen's numbers do not
    depend on its batch (model.run's ``invariant``), so the tables are those of a run per chunk.
    Only a forecast whose rollout keeps each member's run (:func:`keeps_ends`) runs past the
    horizon."""

    def __init__(self, bundle, series: Series, last_obs: np.ndarray, cfg: ForecastConfig, ds, ends: Ends):
        self.bundle, self.series, self.last_obs = bundle, series, last_obs
        self.cfg, self.ds, self.ends = cfg, ds, ends
        self.stretch = past_horizon_stretch(bundle, cfg.quantiles)
        self._held: list[tuple] = []  # (idx, mean, sample crossings, population, mean crossings)
        self._cells = self._runs = 0

    def add(self, idx, sub: Series, mean, paths, pop) -> list[tuple[np.ndarray, pd.DataFrame]]:
        """Hold a chunk (``sub``: the specimens ``idx``; its paths' crossings); the tables of the
        chunks held once the run they wait for fills MAX_RNN_ROWS specimens or the chunks hold
        MEMORY_BUDGET cells (else [])."""
        cfg, last = self.cfg, self.last_obs[idx]
        sample_eol = path_crossings(sub, last, paths, cfg.threshold, cfg.direction)
        mean_eol = path_crossings(sub, last, mean[:, None, :], cfg.threshold, cfg.direction)[:, 0]
        self._held.append((idx, mean, sample_eol, pop, mean_eol))
        self._runs += int((~np.isfinite(mean_eol)).sum())
        self._cells += mean.size * (1 + (pop is not None)) + sample_eol.size
        if self._runs >= MAX_RNN_ROWS or self._cells >= MEMORY_BUDGET:
            return self.flush()
        return []

    def flush(self) -> list[tuple[np.ndarray, pd.DataFrame]]:
        """The tables of the chunks held, after one run past the horizon of their specimens."""
        if not self._held:
            return []
        held, self._held, self._cells, self._runs = self._held, [], 0, 0
        union = np.concatenate([h[0] for h in held])
        known = np.concatenate([h[4] for h in held])
        whole, source = self.series.take(union), self.ds.source
        run = _stretched_crossings(
            self.bundle,
            whole,
            self.last_obs[union],
            self.cfg,
            self.stretch,
            source,
            known,
            self.ends.take(union),
        )
        out, at = [], 0
        for idx, mean, sample_eol, pop, _ in held:
            mine, at = run[at : at + len(idx)], at + len(idx)
            eol = end_of_life(
                self.series.take(idx),
                self.last_obs[idx],
                mean,
                None,
                self.cfg,
                self.ds,
                self.bundle,
                pop,
                source,
                sample_eol=sample_eol,
                stretched=mine,
            )
            out.append((idx, eol))
            self.ends.forget(idx)
        return out


def keeps_ends(bundle: ModelBundle, cfg: ForecastConfig) -> bool:
    """Whether an end-of-life interval of this forecast runs the mean past the horizon (a
    threshold, Monte Carlo paths and a model that measured its validation specimens' pace), so
    that its rollout should keep where each member's run stands (:class:`Ends`)."""
    S = drawn_paths(bundle, cfg)
    return cfg.threshold is not None and S > 0 and eol_warp.spread(bundle) is not None


PROB_GRID = 1000  # prob_cross is read off the end-of-life levels at steps of 1 / PROB_GRID


def interval_levels(
    bundle: ModelBundle | None,
    series: Series,
    last_obs: np.ndarray,
    sample_eol: np.ndarray,
    cfg: ForecastConfig,
    quantiles,
    source: str = "",
    *,
    past_horizon: bool = False,
    mean_eol: np.ndarray | None = None,
    ends: list[Resume] | None = None,
    want_prob: bool = True,
    stretched: np.ndarray | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The end-of-life quantiles [N] at each of ``quantiles`` (+inf: later than the horizon) and
    the chance of crossing within the horizon, from the paths' crossings ``sample_eol`` [N, S];
    where the model measured its validation specimens' pace (eol_warp.py), completed by the
    crossings of the mean path run faster or slower (eol_warp.envelope); then moved by a
    calibration's shift (calibration.shift_crossing). The stretched mean runs on past the horizon
    with the conditions held, so the shift moves an end that lies past the horizon too (a p10 just
    past it can come within): as far as the lowest quantile, moved by the shift, can reach, or
    with ``past_horizon`` (calibrate's backtest, which measures the shift on those ends) as far as
    a shift of eol_warp.CALIBRATE_SHIFT would; what lies past the horizon after the shift is +inf,
    unless ``past_horizon``. ``mean_eol`` [N]: where the forecast's own mean path (clipped to
    ``cfg.bounds``) crosses within the horizon (NaN: it does not); the run past the horizon makes
    those rows again, so it runs only the others. ``ends``: where the forecast's rollout left each
    member's run (:meth:`Ends.take` of these specimens), so that the run goes on from the horizon.
    forecast and evaluate both call this; without a ``bundle``, the paths' quantiles alone. The
    chance is read off the levels on a grid (``want_prob``; evaluate, which does not use it,
    skips that); below the lowest of ``quantiles`` it counts the paths' crossings alone, since the
    mean's run past the horizon reaches only as far as that level needs. ``stretched``: that run's
    crossings [N] when the caller made it already (:func:`_stretched_crossings` at
    :func:`past_horizon_stretch`; the forecast runs it for many chunks' specimens at once)."""
    levels = crossing_quantiles(sample_eol, quantiles)
    prob = np.isfinite(sample_eol).mean(axis=1)
    if bundle is None:
        return levels, prob
    start = series.time[np.arange(len(last_obs)), last_obs]
    end = horizon_ends(series, last_obs)
    warp = eol_warp.spread(bundle)
    shift = eol_shift(bundle.summary.get("calibration"))
    if warp is None:
        stretched = None
    else:
        centre, sd, _ = warp
        if stretched is None:
            stretch = past_horizon_stretch(bundle, quantiles, past_horizon)
            stretched = _stretched_crossings(bundle, series, last_obs, cfg, stretch, source, mean_eol, ends)
    filled = np.where(np.isfinite(sample_eol), sample_eol, np.inf)
    median = np.quantile(filled, 0.5, axis=1, method="inverted_cdf") if shift else None

    def at(qs, paths_q: list[np.ndarray]) -> list[np.ndarray]:
        """The interval's levels ``qs`` from the paths' own (``paths_q``)."""
        out = paths_q
        if stretched is not None:
            uncensored = np.full_like(end, np.inf)  # the stretched mean's crossings past the horizon too
            warped = eol_warp.crossing_quantiles(stretched, start, uncensored, centre, sd, qs)
            out = eol_warp.envelope(out, warped, qs)
        if shift:
            out = [shift_crossing(v, q, median, start, shift) for q, v in zip(qs, out, strict=True)]
        return out

    levels = at(quantiles, levels)
    if past_horizon:  # calibrate's backtest keeps its ends past the horizon, and uses no chance
        return levels, prob
    with np.errstate(invalid="ignore"):
        levels = [np.where(v <= end, v, np.inf) for v in levels]
    if not want_prob or (stretched is None and not shift):  # evaluate uses none; the paths' share is it
        return levels, prob
    with np.errstate(invalid="ignore"):
        # the chance of crossing within the horizon that these levels give: the highest level of a
        # fine grid (and the levels asked for) whose crossing lies within it, so that prob_cross
        # is at least q exactly where eol_pq is within the horizon (the paths' share alone, or the
        # pace's chance beside it, said 1.0 beside an empty eol_p90)
        grid = np.union1d(np.arange(1, PROB_GRID) / PROB_GRID, np.asarray(quantiles, dtype=np.float64))
        paths_q = list(np.quantile(filled, grid, axis=1, method="inverted_cdf"))
        within = np.stack(at(grid, paths_q)) <= end[None, :]  # [G, N]
    prob = np.max(np.where(within, grid[:, None], 0.0), axis=0)
    return levels, prob


def past_horizon_stretch(bundle: ModelBundle, quantiles, past_horizon: bool = False) -> float | None:
    """How far :func:`interval_levels` runs the mean past the horizon, as a multiple of each
    specimen's span from its cut-off (:func:`_stretched_crossings`); None where the model measured
    no pace (no run). A forecast looks as far as its lowest quantile, moved by a calibration's
    shift, reaches; calibrate's backtest (``past_horizon``), which measures the shift, as far as a
    shift of eol_warp.CALIBRATE_SHIFT would."""
    warp = eol_warp.spread(bundle)
    if warp is None:
        return None
    centre, sd, _ = warp
    shift = eol_shift(bundle.summary.get("calibration"))
    low, reach = min(quantiles), eol_warp.CALIBRATE_SHIFT if past_horizon else shift
    sooner = 1.0 / life_factor(low, reach) if reach and low < 0.5 else 1.0
    return eol_warp.factor(centre, sd, quantiles, sooner)


def horizon_ends(series: Series, last_obs: np.ndarray, position: bool = False) -> np.ndarray:
    """[N] each specimen's last forecast row's time (its rows from ``last_obs`` on), or with
    ``position`` that row's position in ``series``."""
    pos = np.arange(series.time.shape[1])[None, :]
    rows = (pos >= last_obs[:, None]) & (series.row >= 0)
    if position:  # times rise along a specimen: its last such row
        return np.where(rows, pos, -1).max(axis=1)
    return np.nanmax(np.where(rows, series.time, np.nan), axis=1)


def _stretched_crossings(
    bundle: ModelBundle,
    series: Series,
    last_obs: np.ndarray,
    cfg: ForecastConfig,
    stretch: float,
    source: str,
    known: np.ndarray | None = None,
    ends: list[Resume] | None = None,
) -> np.ndarray:
    """[N] when each specimen's mean path crosses the threshold, run on past the horizon with the
    conditions held to ``stretch`` x its span from the cut-off (eol_warp.extend: each specimen as
    far as its own span asks, whatever its neighbours'); NaN where it does not cross within that
    run. The run stops once every specimen's mean has crossed or reached its end
    (:func:`_mean_until_crossed`). ``known`` [N]: crossings already found within the horizon (the
    forecast's own mean path; NaN: none), which the run would find again: only the others run.
    ``ends``: each member's run as the forecast's rollout left it at each specimen's last row
    (:meth:`Ends.take` of the N specimens: one model.Resume per member): with ``known``, a
    specimen kept by every member runs on from there (its mean does not cross within the
    horizon), the others from their first row."""
    found = np.full(len(series.ids), np.nan) if known is None else np.array(known, dtype=np.float64)
    todo = np.flatnonzero(~np.isfinite(found))
    if not len(todo):
        return found
    resumable = np.zeros(len(todo), dtype=bool)
    if ends is not None and known is not None:
        last_rows = eol_warp.last_rows(series)[todo]
        resumable = np.logical_and.reduce([e.step.numpy()[todo] == last_rows for e in ends])
    for group, resume in ((todo[resumable], ends), (todo[~resumable], None)):
        if len(group):
            found[group] = _run_past_horizon(bundle, series, last_obs, cfg, stretch, source, group, resume)
    return found


def _run_past_horizon(bundle, series, last_obs, cfg, stretch, source, todo, ends) -> np.ndarray:
    """[len(todo)] :func:`_stretched_crossings`' crossings of the specimens ``todo``, each member's
    run resumed from ``ends`` (None: run from the first row)."""
    mine = series.take(todo)
    lengths = eol_warp.extended_lengths(mine, last_obs[todo], stretch)
    # every member's inputs are held at once (they step together): a chunk of 1 / members; each
    # chunk is extended apart, as long as its own longest run (a cut plan's few long runs would
    # pad every chunk's copy of the rows otherwise)
    out = np.full(len(todo), np.nan)
    for part in plan_lengths(lengths, len(bundle.members) * RUN_CELL_COST, cfg.rollout_batch):
        last = last_obs[todo[part]]
        sub = eol_warp.extend(mine.take(part), last, stretch)
        resume = None if ends is None else [e.take(torch.as_tensor(todo[part])) for e in ends]
        mean = _mean_until_crossed(bundle, sub, last, cfg, source, resume)
        out[part] = path_crossings(sub, last, mean[:, None, :], cfg.threshold, cfg.direction)[:, 0]
    return out


@torch.no_grad()
def _mean_until_crossed(
    bundle: ModelBundle,
    sub: Series,
    last: np.ndarray,
    cfg: ForecastConfig,
    source: str,
    resume: list[Resume] | None = None,
) -> np.ndarray:
    """[B, Tc] a chunk's mean path as :func:`rollout_chunks` makes it (the members' average,
    ``--combine``'s move), clipped to ``cfg.bounds``, NaN on the warm-up and the padding, run
    STRETCH_SEGMENT steps at a time and NaN after the segment in which every specimen's mean has
    crossed ``cfg.threshold`` (or its last measurement already had) or reached its last row: no
    later row can move a first crossing. The rows it makes equal rollout_chunks' bit for bit
    (model.stream_mean). ``resume``: each member's run kept at each specimen's step (model.Resume,
    the same step for every member): the rows from that step's row (its kept value) on are made
    from there (model.resume_mean), the rows before it are left NaN."""
    B, Tc = sub.y.shape
    members = bundle.members
    future = (np.arange(Tc)[None, :] > last[:, None]) & (sub.row >= 0)  # [B, Tc]
    last_row = eol_warp.last_rows(sub)
    first = np.ones(B, dtype=np.int64)  # the row each specimen's first piece begins with
    streams = []
    for k, member in enumerate(members):
        if resume is None:
            t, feed, latent, _ = _member_inputs(member, sub, last, cfg, source)
            stream = member.model.stream_mean(t, feed, latent=latent, every=STRETCH_SEGMENT)
        else:  # z comes with the kept run: no fit again
            t, feed = _member_tensors(member, sub, last, cfg, source)
            kept = resume[k].to(cfg.device)
            stream = member.model.resume_mean(t, feed, kept, every=STRETCH_SEGMENT)
            if not np.array_equal(resume[k].step.numpy(), resume[0].step.numpy()):
                raise ValueError("the members' runs were kept at different steps")
            first = resume[k].step.numpy()  # the first piece is the kept row itself
        streams.append((member.scaler, stream))
    combined = combination(bundle)
    target = None if combined is None else mixed_effects.forecast_block(combined[0], sub, last)
    out = np.full((B, Tc), np.nan)
    made = np.zeros((B, Tc), dtype=bool)
    done = _crossed(sub.y[np.arange(B), last][:, None], cfg.threshold, cfg.direction) | (last_row <= last)
    done |= first > last_row
    offset = 0  # pieces made so far, in columns after each specimen's first
    while not done.all():
        block, pieces = None, []
        for _, stream in streams:
            with autocast(cfg.device, cfg.amp):
                pieces.append(next(stream, None))
        if any(p is None for p in pieces):  # every member's run has reached its end
            break
        for (scaler, _), piece in zip(streams, pieces, strict=True):
            mean = scaler.y_from_model(piece.float().cpu().numpy().astype(np.float64))
            block = np.zeros_like(mean) if block is None else block
            block += mean / len(members)
        n = block.shape[1]
        cols = first[:, None] + offset + np.arange(n)[None, :]  # [B, n] each specimen's own rows
        inside = cols < Tc
        cols = np.minimum(cols, Tc - 1)
        rows = np.arange(B)[:, None]
        ahead = future[rows, cols] & inside
        if target is not None:
            shift = (1.0 - combined[1]) * (target[rows, cols] - block)
            shift[~ahead] = 0.0
            block += shift
        block[~ahead] = np.nan
        at = (np.broadcast_to(rows, cols.shape)[ahead], cols[ahead])
        out[at] = block[ahead]
        made[at] = True
        if not np.isfinite(block[ahead]).all():  # refused as rollout_chunks refuses it
            _check_finite(out, future & made, sub, source)
        if cfg.bounds is not None:
            block = clip(block, cfg.bounds)
            out[at] = block[ahead]
        done |= _crossed(block, cfg.threshold, cfg.direction) | (last_row < first + offset + n)
        offset += n
    return out


def end_of_life(
    series: Series,
    last_obs: np.ndarray,
    mean: np.ndarray,
    paths: np.ndarray | None,
    cfg: ForecastConfig,
    ds: Dataset,
    bundle: ModelBundle | None = None,
    population: np.ndarray | None = None,
    source: str = "",
    ends: list[Resume] | None = None,
    *,
    sample_eol: np.ndarray | None = None,
    stretched: np.ndarray | None = None,
) -> pd.DataFrame:
    """First crossing of the threshold per specimen: from the mean path and over the sample paths
    (their quantiles as :func:`interval_levels` makes them, the run past the horizon going on
    from ``ends``), and, for a latent model, from its ``population`` path
    (``eol_time_population``: when the population's forecast, z = 0, crosses under the same
    conditions). Instead of ``paths``, their crossings ``sample_eol`` [N, S]
    (:func:`path_crossings`); ``stretched``: the run past the horizon made already
    (:func:`interval_levels`)."""
    idx = np.arange(len(series.ids))
    # Each path starts from the last measured value, so a crossing between it and the first
    # forecast row is interpolated like any other.
    start = series.y[idx, last_obs]
    mean_eol = path_crossings(series, last_obs, mean[:, None, :], cfg.threshold, cfg.direction)[:, 0]  # [N]
    past = _crossed(start[:, None], cfg.threshold, cfg.direction)  # the last measurement is past it
    frame = pd.DataFrame({ds.schema.id_col: series.ids})
    for c in ds.schema.static:  # constant per specimen: its first row's value
        frame[c] = ds.frame[c].to_numpy()[series.row[:, 0]]
    frame["last_measured_time"] = series.time[idx, last_obs]
    frame["horizon_end"] = horizon_ends(series, last_obs)
    frame["eol_time"] = mean_eol
    if paths is not None:
        sample_eol = path_crossings(series, last_obs, paths, cfg.threshold, cfg.direction)  # [N, S]
    if sample_eol is not None:
        levels, prob = interval_levels(
            bundle,
            series,
            last_obs,
            sample_eol,
            cfg,
            cfg.quantiles,
            source,
            mean_eol=mean_eol,
            ends=ends,
            stretched=stretched,
        )
        frame["prob_cross"] = prob
        for q, v in zip(cfg.quantiles, levels, strict=True):
            frame[f"eol_p{q * 100:g}".replace(".", "_")] = np.where(np.isfinite(v), v, np.nan)
    else:
        frame["prob_cross"] = np.isfinite(mean_eol).astype(float)
    if population is not None:
        frame["eol_time_population"] = path_crossings(
            series, last_obs, population[:, None, :], cfg.threshold, cfg.direction
        )[:, 0]
    frame["rul"] = frame["eol_time"] - frame["last_measured_time"]
    if past.any():  # crossed in the measurements: where they crossed, no forecast interval, rul 0
        frame.loc[past, "eol_time"] = measured_crossings(series, last_obs, cfg)[past]
        frame.loc[past, "rul"] = 0.0
        frame.loc[past, [c for c in frame.columns if c.startswith("eol_p")]] = np.nan
        frame.loc[past, "prob_cross"] = 1.0
        if "eol_time_population" in frame:  # a population's crossing ahead of a crossed specimen: none
            frame.loc[past, "eol_time_population"] = np.nan
    status = np.where(np.isfinite(mean_eol), "crosses", "not within horizon")
    status = np.where(past, "already past", status)
    frame["status"] = status
    if ds.schema.time_is_datetime:
        # the rows' own dates for the rows' times; the crossings (interpolated) to the microsecond
        dates = pd.to_datetime(ds.frame[ds.schema.time_col]).to_numpy()  # in the frame's unit, as ds.t
        frame["last_measured_time"] = dates[series.row[idx, last_obs]]
        frame["horizon_end"] = dates[series.row[idx, horizon_ends(series, last_obs, position=True)]]
        for c in [c for c in frame.columns if c.startswith("eol_")]:
            frame[c] = dates_from_days(frame[c])
        frame["rul"] = days_as_spans(frame["rul"])
    if ds.schema.id_synthetic:
        frame = frame.drop(columns=[ds.schema.id_col])
    return frame


def measured_crossings(series: Series, last_obs: np.ndarray, cfg: ForecastConfig) -> np.ndarray:
    """[N] each specimen's first crossing of the threshold in its measured rows up to the last
    one, interpolated between measurements (its first measured time where that one is already
    past it; NaN where none is)."""
    T = series.time.shape[1]
    measured = (np.arange(T)[None, :] <= last_obs[:, None]) & (series.row >= 0) & np.isfinite(series.y)
    times = np.where(measured, series.time, np.nan)
    return first_crossing_matrix(times, np.where(measured, series.y, np.nan), cfg.threshold, cfg.direction)


def path_crossings(
    series: Series, last_obs: np.ndarray, paths: np.ndarray, threshold: float, direction: str
) -> np.ndarray:
    """[N, S] each Monte Carlo path's first crossing time (NaN: not within the horizon). Each path
    starts from the specimen's last measured value, as the mean path does in ``end_of_life``."""
    N, T = paths.shape[0], paths.shape[2]
    idx = np.arange(N)
    in_path = np.arange(T)[None, :] >= last_obs[:, None]
    times = np.where(in_path & (series.row[:, :T] >= 0), series.time[:, :T], np.nan)
    p = paths.astype(np.float64)
    p[idx, :, last_obs] = series.y[idx, last_obs][:, None]
    p = np.where(in_path[:, None, :], p, np.nan)
    return first_crossing_matrix(times, p, threshold, direction)


def crossing_quantiles(sample_eol: np.ndarray, quantiles) -> list[np.ndarray]:
    """The quantiles over paths of [N, S] crossing times, one [N] array per level; a path that
    does not cross counts as crossing after the horizon, so a level above the share of paths that
    cross is +inf ("later than the horizon")."""
    filled = np.where(np.isfinite(sample_eol), sample_eol, np.inf)
    # inverted_cdf picks an order statistic: no inf - inf interpolation
    return [np.quantile(filled, q, axis=1, method="inverted_cdf") for q in quantiles]


def _crossed(values: np.ndarray, threshold: float, direction: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        hit = values <= threshold if direction == "below" else values >= threshold
    return hit.any(axis=1)
