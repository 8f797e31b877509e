"""Typed, frozen configuration objects. CLI options and TOML files map onto these; both are saved
into the model file, so a model always knows how it was made."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import tomllib

from durability_cli.errors import DurabilityError, InputError

# Switches (true / false) that also take "auto": decided by the training run.
AUTO_SWITCHES = ("trend_line",)
AUTO_NUMBERS = ("latent",)  # whole numbers that may also be "auto" (the training run decides)

# The values each text option accepts; the CLI lists them in --help.
CHOICES = {
    "cell": ("lstm", "gru"),
    "loss": ("gaussian", "mse", "huber"),
    "monotonic": ("none", "decreasing", "increasing"),
    "tf_schedule": ("constant", "linear", "exponential", "inverse-sigmoid"),
    "tf_unit": ("epoch", "step"),
    "feedback": ("mean", "sample"),
    "val_split": ("random", "stratified"),
    "val_select": ("each", "joint"),
    "combine": ("none", "mixed_effects"),
    "direction": ("below", "above"),  # end of life: durability goes below or above the threshold
}


def past_at_cutoff_line(direction: str, threshold: float) -> str:
    """The line shown when every end-of-life forecast was already past the threshold at its last
    measured row: usually a durability that rises with wear read with --direction below, or the
    other way round."""
    other, moves = ("above", "rises") if direction == "below" else ("below", "falls")
    return (
        f"every specimen was already {direction} the threshold {threshold:g} at its last measured row, "
        f"so none has an end of life ahead: if durability {moves} with wear (a crack, a current, a "
        f"resistance), use --direction {other}"
    )


def cut_line(
    steps: int, count: int, scenarios: int = 0, *, backtests: bool = False, max_step: float | str = "auto"
) -> str:
    """The note that --max-step auto cut a plan's steps: of ``count`` specimens (of ``scenarios``
    scenarios, if more than one), or with ``backtests`` of ``count`` of evaluate's backtests;
    ``max_step`` a length: that it cut them as asked."""
    over = f" over {scenarios} scenarios" if scenarios > 1 else ""
    if not isinstance(max_step, str):
        return (
            f"{steps} future step(s) of {count} {'backtest' if backtests else 'specimen'}(s){over} were "
            f"longer than {step_text(max_step)} and were cut into pieces of at most that "
            f"(`max_step` {step_text(max_step)})"
        )
    head = (
        f"{steps} future step(s) of {count} {'backtest' if backtests else 'specimen'}(s){over} were longer "
        "than training's steps at their conditions and were cut into pieces typical of training"
    )
    if backtests:
        return (
            head
            + ", as forecast cuts them (`max_step` auto, the default; `max_step` off scores them as given)"
        )
    return (
        head
        + " (`max_step` auto, the default; `max_step` off forecasts them as given; docs/GUIDE.md, What if)"
    )


def steps_differ_line(
    calibrated: float | str,
    calibrated_cut: int | None,
    now: float | str,
    now_cut: int,
    *,
    backtests: bool = False,
) -> str | None:
    """The note that a calibrated model forecasts other steps than its calibration's backtests ran:
    ``calibrated`` is the block's ``max_step`` (a length, "auto" or "off") and ``calibrated_cut``
    its ``cut_steps``, ``now`` and ``now_cut`` the forecast's (with ``backtests``, evaluate's);
    None for the same setting, or where they ran the same steps (auto that cut nothing ran them
    as "off" does). The band's factors go by steps ahead, so they were measured on a plan cut as
    ``calibrated`` says."""
    if _same_step(calibrated, now) or _same_step(_ran(calibrated, calibrated_cut), _ran(now, now_cut)):
        return None
    run = "these backtests run" if backtests else "this forecast runs"
    return (
        f"the band was calibrated on backtests run with `max_step` {step_text(calibrated)}, and {run} "
        f"`max_step` {step_text(now)}: its factors were measured on other steps; give "
        f"`max_step` {step_text(calibrated)}, or calibrate again with `max_step` {step_text(now)}"
    )


def _ran(max_step: float | str, cut: int | None) -> float | str:
    """What a run's steps were: "off" for auto that cut none of them."""
    return "off" if max_step == "auto" and cut == 0 else max_step


def _same_step(a: float | str, b: float | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return abs(float(a) - float(b)) <= 1e-9 * max(abs(float(a)), abs(float(b)))


def step_text(value: float | str) -> str:
    return value if isinstance(value, str) else f"{float(value):g}"


LOPSIDED = (0.15, 2.0)  # misses on one side: at least this share, and this many times the other side's


def lopsided(early: float, late: float) -> bool:
    """Whether misses fall mostly on one side: one side's share at least LOPSIDED[0] and
    LOPSIDED[1] times the other's (a calibrated 80 % interval misses about 10 % on each). evaluate's
    notes and calibrate's hint use it."""
    high, low = max(early, late), min(early, late)
    return high >= LOPSIDED[0] and high >= LOPSIDED[1] * low


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # lstm or gru; LSTM was a little more accurate on the samples
    hidden: int = 64  # units per layer; 64 is enough for smooth degradation curves
    layers: int = 2  # stacked layers; 2 lets the lower layer filter noise, the upper one drift
    dropout: float = 0.0  # between stacked layers; small data rarely needs it
    lags: int = 1  # how many past durability values are fed back (1 = plain feedback)
    loss: str = "gaussian"  # gaussian (mean + scale, gives intervals), mse or huber (point only)
    residual: bool = True  # predict the step change, not the level: degradation is a drift
    monotonic: str = "none"  # decreasing / increasing make the step change one-signed by construction
    rate: bool = True  # residual step = predicted rate x (dt / typical dt): irregular spacing by construction
    static_embedding: int = 4  # embedding size for each categorical static column
    # A per-specimen latent vector z of this size (0 = off): a random effect for what no column
    # records (batch, initial flaw). Learned per training specimen, fitted to each new specimen's
    # warm-up at forecast time, and fed to every step like a static column. "auto": a latent of 2
    # (with the warm-up's line) where the validation warm-ups are at least 50 rows, none on
    # shorter ones (latent_choice.py); a trained model holds the number
    latent: int | str = "auto"
    latent_prior: float = 0.1  # weight of the Gaussian prior on z (larger: trust the warm-up less)
    # Physics-aware inputs: "temperature=arrhenius,humidity=log" (durability_cli.transforms)
    transform: str = ""
    # Feed every step the least-squares trend of the measured values fed so far (its slope in
    # typical steps, and how many rows it rests on): a specimen's own rate, read the same way from
    # a warm-up of any length (docs/TRAINING.md, "The measured trend as an input: --trend")
    trend: bool = False
    # Start every predicted step from the warm-up's straight line: the least-squares slope of the
    # measured values fed so far (as --trend computes it), times a learned gain, is added to each
    # step, so the network learns corrections to extrapolating the specimen's own measured rate
    # instead of the rate itself; it also feeds the trend input of ``trend`` (docs/TRAINING.md,
    # "Starting from the warm-up's line: --trend-line"). "auto": train without and with the line,
    # keep the one most ensemble members validate better (line_choice.py); a trained model, and
    # its file, hold the answer (true or false; a file without the key predates the line: false)
    trend_line: bool | str = "auto"

    def validate(self) -> None:
        _choice("cell", self.cell, CHOICES["cell"])
        _choice("loss", self.loss, CHOICES["loss"])
        _choice("monotonic", self.monotonic, CHOICES["monotonic"])
        if self.trend_line not in (True, False, "auto"):
            raise InputError(f"`trend_line` must be true, false or auto, got {self.trend_line!r}")
        if self.monotonic != "none" and not self.residual:
            raise InputError("`monotonic` needs `residual`: the sign is put on the step change")
        _numbers(self, MODEL_LIMITS)
        if self.latent != "auto" and (
            isinstance(self.latent, bool) or not isinstance(self.latent, int) or not 0 <= self.latent <= 64
        ):
            raise InputError(f"`latent` must be auto or between 0 (off) and 64, got {self.latent!r}")
        if not self.latent_prior > 0:  # _numbers has refused NaN and infinity
            raise InputError(f"`latent_prior` must be a positive number, got {self.latent_prior}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"`dropout` must be in [0, 1), got {self.dropout}")
        from durability_cli.transforms import parse

        parse(self.transform)


@dataclass(frozen=True)
class TrainConfig:
    # Upper bound (and the length of the cosine learning-rate decay); 0 = auto: enough epochs for
    # AUTO_STEPS optimiser steps, at least MIN_AUTO_EPOCHS (training.resolve_length)
    epochs: int = 0
    # Specimens per optimiser step; 0 = auto: BASE_BATCH, or on a small table of short series at
    # the automatic length about ROWS_PER_STEP rows a step, up to MAX_AUTO_BATCH specimens
    # (training.resolve_length)
    batch_size: int = 0
    lr: float = 2e-3  # Adam learning rate, decayed by a cosine to 5% over the epochs
    weight_decay: float = 0.0
    clip: float = 1.0  # gradient-norm clipping: BPTT through feedback can spike
    window: int = 0  # truncated-BPTT window in steps; 0 = whole series
    val_fraction: float = 0.2  # share of specimens held out for early stopping
    # How the validation specimens are drawn: at random, or one from each of as many groups of
    # similar specimens (by their mean conditions, static values and length; training.stratified_split)
    val_split: str = "random"
    val_context: int = (
        0  # warm-up rows for the free-running validation; 0 = auto (20% of median length, >= 3)
    )
    # Instead of val_context rows for every specimen: this share of each specimen's rows,
    # round(share x rows), at least 1 (as `evaluate --context-frac` cuts); 0 = off. Training's
    # warm-ups are then drawn up to each specimen's own share (RowShare).
    val_context_frac: float = 0.0
    # Each training rollout's measured warm-up is drawn from ceil(warmup_min x val_context) to
    # val_context rows (at least 1): 0 = any length from 1 (every warm-up a forecast may start
    # from), 1 = always the validation's (docs/TRAINING.md, "How long a warm-up training sees")
    warmup_min: float = 0.0
    # Epochs without a better validation RMSE before stopping; 0 = auto: PATIENCE_SHARE of the
    # epochs, at least MIN_AUTO_PATIENCE
    patience: int = 0
    # Free running after a measured warm-up won on every sample: where the measurement noise is
    # larger than the change per step, teacher forcing teaches the model to copy the noise.
    teacher_forcing: float = 0.0  # starting probability of feeding back the measured value
    tf_schedule: str = "constant"  # constant, linear, exponential or inverse-sigmoid
    tf_k: float = 0.0  # k of the exponential (0 < k <= 1) / inverse-sigmoid (k >= 1) schedules; 0 = 0.9 / 10
    tf_c: float = 0.1  # slope of the linear schedule per epoch (1 -> 0 in 10 epochs)
    tf_min: float = 0.0  # floor of the schedule
    tf_unit: str = "epoch"  # i counts epochs or optimiser steps
    detach_feedback: bool = False  # cut the gradient through fed-back predictions (faster, usually worse)
    feedback: str = "mean"  # what free-running steps feed back in training: the mean or a sample
    seed: int = 0
    # Validate and keep an exponential moving average of the weights (Polyak averaging) with this
    # decay per optimiser step; 0 = off, the weights as they are.
    ema: float = 0.0
    # Pick the best epoch by a moving average of the validation RMSE (this weight on the past);
    # 0 = each epoch's own RMSE
    val_smoothing: float = 0.0
    # How an ensemble's members trained together choose their epoch: "each" on its own validation
    # specimens, or "joint": one epoch for all, where the mean of the members' validation RMSEs
    # is lowest (every member's validation specimens at once; stacked.py). Members trained one
    # after the other choose each their own.
    val_select: str = "each"
    # Train this many models (seeds seed, seed + 1, ...: each its own initial weights and
    # validation specimens) into one model file; forecasts average them (docs/TRAINING.md).
    # 0 = auto: AUTO_MEMBERS where fewer than SMALL_VALIDATION specimens would choose the best
    # epoch, else 1; fine-tuning keeps the start model's members (ensemble.resolve_auto)
    ensemble: int = 0
    # Train from a table read this many specimens at a time (one group's tensors in memory, the
    # groups visited in a new order each epoch); 0 = the whole table in memory.
    chunk_specimens: int = 0
    # After training, fit the scale head again on the kept mean's free-running errors on the
    # training specimens (scale_refit.py): the band matches the mean that early stopping kept
    refit_scale: bool = True
    # Once validation chose each member's epoch, train every member again from its start on all
    # the specimens, validation ones included, to that epoch (refit_all.py); what validation
    # measured (the band's factor, the end-of-life paces, the line's and latent's choices) stays
    refit_all: bool = False
    # Each epoch, read every training specimen at a pace of its own, log-uniform on
    # [1 / (1 + warp), 1 + warp] (warp.py): more specimens' worth of hidden rates; 0 = as measured
    warp: float = 0.0
    # This share of the training batches has each step after the warm-up cut into 1 to
    # recut.PIECES equal pieces (unmeasured rows holding the conditions): the network learns to
    # forecast a plan alike however finely its steps are cut (recut.py); 0 = as measured
    recut: float = 0.0
    amp: bool = False  # bfloat16 autocast for the network's forward and backward (data.autocast)
    # "mixed_effects": the forecast averages the model's and the mixed-effects path's
    # (mixed_effects.py), weighted by inverse squared validation RMSE (the weight kept in the model
    # file; forecasting.combination); "none": the model's alone
    combine: str = "none"

    def validate(self) -> None:
        if not self.clip > 0:  # also NaN; inf = no clipping
            raise InputError(f"`clip` must be positive (the largest gradient norm), got {self.clip}")
        _numbers(self, TRAIN_LIMITS)
        if self.chunk_specimens < 0:
            raise InputError(f"`chunk_specimens` must be at least 1, got {self.chunk_specimens}")
        if not self.lr > 0:
            raise InputError(f"`lr` must be positive, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InputError(f"`val_fraction` must be in [0, 1), got {self.val_fraction}")
        members = self.ensemble or AUTO_MEMBERS
        if self.seed + members - 1 > TRAIN_LIMITS["seed"][1]:
            raise InputError(
                f"`seed` {self.seed} leaves no room for the {members} seeds of `ensemble`; use a smaller seed"
            )
        if not 0.0 <= self.val_smoothing < 1.0:
            raise InputError(f"`val_smoothing` must be in [0, 1) (0 = off), got {self.val_smoothing}")
        if not 0.0 <= self.warp <= 1.0:
            raise InputError(
                f"`warp` must be in [0, 1] (0 = off; paces 1 / (1 + warp) to 1 + warp), got {self.warp}"
            )
        if not 0.0 <= self.recut <= 1.0:
            raise InputError(
                f"`recut` must be in [0, 1] (a share of the training batches; 0 = off), got {self.recut}"
            )
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"`ema` must be in [0, 1) (0 = off; 0.9 to 0.99 typical), got {self.ema}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise InputError(f"`teacher_forcing` must be in [0, 1], got {self.teacher_forcing}")
        _choice("tf_schedule", self.tf_schedule, CHOICES["tf_schedule"])
        _choice("tf_unit", self.tf_unit, CHOICES["tf_unit"])
        _choice("val_split", self.val_split, CHOICES["val_split"])
        _choice("val_select", self.val_select, CHOICES["val_select"])
        _choice("combine", self.combine, CHOICES["combine"])
        if self.tf_k < 0:
            raise InputError(f"`tf_k` must be >= 0 (0 = the schedule's usual value), got {self.tf_k}")
        if self.tf_k and self.tf_schedule == "exponential" and not 0 < self.tf_k <= 1:
            raise InputError(f"`tf_schedule` exponential needs 0 < `tf_k` <= 1 (p = k^i), got {self.tf_k}")
        if self.tf_k and self.tf_schedule == "inverse-sigmoid" and self.tf_k < 1:
            raise InputError(f"`tf_schedule` inverse-sigmoid needs `tf_k` >= 1, got {self.tf_k}")
        _choice("feedback", self.feedback, CHOICES["feedback"])
        if self.window < 0 or self.window == 1:
            raise InputError(f"`window` must be 0 (whole series) or at least 2, got {self.window}")
        if not 0.0 <= self.tf_min <= 1.0:
            raise InputError(f"`tf_min` must be in [0, 1], got {self.tf_min}")
        if not 0.0 <= self.warmup_min <= 1.0:
            raise InputError(
                f"`warmup_min` must be in [0, 1] (a share of `val_context`), got {self.warmup_min}"
            )
        if not 0.0 <= self.val_context_frac < 1.0:
            raise InputError(
                "`val_context_frac` must be in [0, 1) (a share of each specimen's rows; 0 = off), "
                f"got {self.val_context_frac}"
            )
        if self.val_context_frac and self.val_context:
            raise InputError(
                "give one of `val_context` (rows) and `val_context_frac` (a share of each "
                f"specimen's rows), not both (got {self.val_context} and {self.val_context_frac})"
            )


# `ensemble = 0` (auto) trains this many members when fewer than SMALL_VALIDATION specimens would
# choose the best epoch: on the benchmark sets (6 validation specimens of 32; Device-B, 4-5 of 23)
# single models' test RMSE varied 6-38 % (sd / mean) over seeds, ensembles of 5 by 1-8 %, and the
# ensembles' mean RMSE was lower or level on all six; on coating tables of 48 specimens (10
# validating) 5 members were 11 % better and far steadier (spread 25 % -> 3 %), of 96 (19
# validating) level (-3 %, both about 10 %): the line lies between (benchmarks/RESULTS.md,
# "The default: auto").
AUTO_MEMBERS = 5
SMALL_VALIDATION = 15

# `epochs = 0` / `patience = 0` (auto) size the run in optimiser steps, not passes over the table:
# an epoch of 11 training specimens is 2 steps, one of 1,000 is 125, and what a small table needs
# is steps. At the old fixed 100 epochs / patience 30, the ensembles on the measured Alloy-A set
# (2 steps an epoch) stopped at best epochs 6-20 with RMSE 0.112 (linear extrapolation: 0.108);
# with 400 epochs and patience 200 they kept improving into epochs 110-380, to 0.050; ball went
# from 2.16 to 1.20, coating (200 epochs, patience 60) from 0.065 to 0.053, ageing and Device-B
# stayed level. A patience of half the run costs an ensemble trained together little (a stopped
# member still runs along) and let members recover from long flat stretches (docs/TRAINING.md,
# "How long to train").
AUTO_STEPS = 800
MIN_AUTO_EPOCHS = 100
PATIENCE_SHARE = 0.5
MIN_AUTO_PATIENCE = 30

# `batch_size = 0` (auto): BASE_BATCH specimens a step, except where the automatic length already
# runs its AUTO_STEPS steps whatever the batch (a small table: at most AUTO_STEPS / MIN_AUTO_EPOCHS
# steps an epoch at BASE_BATCH), where each step takes about ROWS_PER_STEP rows, BASE_BATCH to
# MAX_AUTO_BATCH specimens. A step of short series costs little, so the same number of steps then
# sees more specimens. Measured at the automatic length, ensembles of 5, 3 seeds (session 16,
# benchmarks/results/notes.md, "Batch size at the automatic length"): batch 32 against 8 on the
# short-series sets ball (48 rows a specimen) -24 %, Device-B (17) -3 %, Alloy-A (12) -3 %, for
# about 2 x their short training time; on the long-series sets (200-300 rows) 16 or 32 gained
# 0-4 % (ageing +2 % at 32) for 1.2-2 x minutes more, and they keep 8. Elsewhere (a fixed
# --epochs, or a table big enough that the epoch minimum sets the length) a larger batch would
# mean fewer steps, which is what small tables cannot afford.
BASE_BATCH = 8
MAX_AUTO_BATCH = 32
ROWS_PER_STEP = 1600


# Sane limits (low, high) of the numeric options, checked before anything is built or written: a
# value outside them is a typo or a hostile file, and would otherwise take all memory or crash.
# Every float not listed here must still be finite; every int, a whole number.
MODEL_LIMITS = {
    "hidden": (1, 4096),  # 4096 units x 2 layers is already ~270 M weights per layer pair
    "layers": (1, 64),
    "lags": (1, 1000),
    "static_embedding": (1, 1024),
}
TRAIN_LIMITS = {
    "epochs": (0, 1_000_000),  # 0 = auto
    "batch_size": (0, 1_000_000),  # 0 = auto
    "lr": (0, 1000),  # far past any useful rate; a huge one is how the divergence test diverges
    "weight_decay": (0, 10),
    "clip": (0, float("inf")),  # inf: no clipping
    "window": (0, 10_000_000),
    "val_context": (0, 10_000_000),
    "patience": (0, 1_000_000),  # 0 = auto
    "tf_k": (0, 1e6),
    "tf_c": (0, 1e6),
    "seed": (0, 2**63 - 1),  # what both numpy and torch accept
    "ensemble": (0, 64),  # members per model file (modelfile.MAX_MEMBERS); 0 = auto
    "chunk_specimens": (0, 10**9),
}


def _numbers(cfg, limits: dict[str, tuple[float, float]]) -> None:
    """Each int field a whole number and each float finite (inf only where the limits allow it),
    within ``limits``; the message names the argument (the CLI shows it as its flag)."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        flag = f"`{f.name}`"
        low, high = limits.get(f.name, (-math.inf, math.inf))
        if math.isnan(value) or (math.isinf(value) and high != math.inf):
            raise InputError(f"{flag} must be a finite number, got {value}")
        if not low <= value <= high:
            raise InputError(f"{flag} must be between {_text(low)} and {_text(high)}, got {_text(value)}")


def _text(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise InputError(f"`{name}` must be one of {', '.join(options)}; got {value!r}")


@contextlib.contextmanager
def said_in_file(path: str | None, values: dict) -> Iterator[None]:
    """An error about a setting that the config file ``path`` gave (``values``: its settings the
    command line did not override) says where the value came from (``; best.toml sets val_context =
    5000``): the message names the option as a flag, which the command line did not hold."""
    try:
        yield
    except DurabilityError as exc:
        named = [a for a in dict.fromkeys(exc.arguments) if a in values]
        if path is None or not named:
            raise
        said = ", ".join(f"{a} = {toml_text(values[a])}" for a in named)
        raise exc.reworded(f"{exc.template}; {path} sets {said}") from None


def toml_text(value) -> str:
    """``value`` as a TOML file writes it (true, 0.5, "gru", [1, 2])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    return repr(value)


def load_toml(path: str | None) -> dict:
    """Read a training TOML file: top-level keys or [model] / [train] / [data] tables."""
    if path is None:
        return {}
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a config file; pass a .toml file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the config file is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    flat: dict = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            value = {k.replace("-", "_"): v for k, v in value.items()}  # val-context is val_context
            if len(value) < len(raw[key]):
                raise InputError(f"{path}: an option is given twice in [{key}] (with - and with _); keep one")
            if key not in CONFIG_TABLES:  # [modle] hidden = 8 would apply unseen
                raise InputError(
                    f"{path}: unknown table [{key}]; the tables are {', '.join(f'[{t}]' for t in CONFIG_TABLES)}"
                )
            twice = sorted(set(value) & set(flat))
            if twice:
                raise InputError(f"{path}: {twice[0]} is given twice (in [{key}] and before it); keep one")
            flat.update(value)
        else:
            key = key.replace("-", "_")
            if key in flat:
                raise InputError(f"{path}: {key} is given twice; keep one")
            flat[key] = value
    return flat


CONFIG_TABLES = ("data", "model", "train")


def auto_number(key: str, value, source: str = "options") -> int | str:
    """An AUTO_NUMBERS value: "auto", or a whole number (given as one, or as its text, as the
    command line gives it); its range is the field's validate's to check."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text.lstrip("+-").isdigit():
            return int(text)
    elif isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    where = f"`{key}`" if source == "options" else f"{source}: {key}"  # the CLI names its flag
    raise InputError(f"{where} must be auto or a whole number, got {value!r}")


def build(cls, values: dict, *, source: str = "options"):
    """Build ``cls`` from the keys of ``values`` that belong to it, checking types."""
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known or value is None:
            continue
        default = known[key].default
        if key in AUTO_SWITCHES:  # a switch that may also be left to the training run to decide
            if not (isinstance(value, bool) or value == "auto"):
                raise InputError(f"{source}: {key} must be true, false or auto, got {value!r}")
        elif key in AUTO_NUMBERS:  # a number that may also be left to the training run to decide
            value = auto_number(key, value, source)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise InputError(f"{source}: {key} must be true or false, got {value!r}")
        elif isinstance(default, int | float) and not isinstance(default, bool):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InputError(f"{source}: {key} must be a number, got {value!r}")
            if isinstance(default, int) and not (isinstance(value, int) or float(value).is_integer()):
                raise InputError(f"{source}: {key} must be a whole number, got {value!r}")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise InputError(f"{source}: {key} must be text, got {value!r}")
        kwargs[key] = value
    cfg = cls(**kwargs)
    try:
        cfg.validate()
    except InputError as exc:
        if source in ("options", "model file"):  # the flag names it / the loader names the file
            raise
        raise InputError(f"{source}: {exc}") from None
    return cfg


def saved_model_config(values: dict, *, source: str = "model file") -> ModelConfig:
    """The ModelConfig a model file or checkpoint holds: a trained model's switches are true or
    false (``trend_line`` missing: a file from before the line, so false)."""
    cfg = build(ModelConfig, {"trend_line": False, **values}, source=source)
    if cfg.trend_line not in (True, False):
        raise InputError(f"{source}: trend_line is {cfg.trend_line!r}; a trained model's is true or false")
    if cfg.latent == "auto":
        raise InputError(f"{source}: latent is 'auto'; a trained model's is a number")
    return cfg


def unknown_keys(values: dict, *classes) -> list[str]:
    known = {f.name for cls in classes for f in fields(cls)}
    return sorted(k for k in values if k not in known)


def as_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


@dataclass(frozen=True)
class RowShare:
    """A warm-up given as a share of each specimen's rows (``TrainConfig.val_context_frac``):
    round(share x rows), at least 1, as `evaluate --context-frac` cuts its specimens."""

    share: float

    def rows(self, lengths) -> np.ndarray:
        """Each specimen's warm-up rows for its ``lengths`` (rows in the table)."""
        return np.maximum(1, np.round(np.asarray(lengths, dtype=float) * self.share)).astype(np.int64)

    def __str__(self) -> str:
        return f"{self.share:.3g} of each specimen's rows"


def warmup_rows(context: int | RowShare, lengths) -> np.ndarray:
    """[N] each specimen's warm-up rows under ``context`` (rows for all, or a share of each)."""
    lengths = np.asarray(lengths)
    if isinstance(context, RowShare):
        return context.rows(lengths)
    return np.full(lengths.shape, int(context), dtype=np.int64)


def describe_warmup(context: int | RowShare) -> str:
    """'6 rows' or '0.333 of each specimen's rows': how a message names a warm-up."""
    return str(context) if isinstance(context, RowShare) else f"{context} rows"


def shortest_warmup(warmup_min: float, context: int) -> int:
    """The shortest measured warm-up a training rollout is fed: ceil(``warmup_min`` x
    ``context``) rows, at least 1 and at most ``context`` (``TrainConfig.warmup_min``)."""
    return int(shortest_warmups(warmup_min, np.asarray([context]))[0])


def shortest_warmups(warmup_min: float, counts: np.ndarray) -> np.ndarray:
    """:func:`shortest_warmup` of each count in ``counts`` (one per specimen: a share of its rows)."""
    counts = np.asarray(counts, dtype=np.int64)
    shortest = np.maximum(1, np.ceil(warmup_min * counts - 1e-9)).astype(np.int64)
    return np.minimum(shortest, np.maximum(counts, 1))
