"""Automatic settings search (``durability tune``): Optuna over the model and training options.

Each trial trains one model per specimen fold (K folds: every specimen is held out once) and
scores it by the free-running RMSE of the held-out specimens after the same warm-up as training's
validation (``training.free_run_rmse``); the objective is the mean over the folds. A TPE sampler
(seeded) proposes the settings, and a median pruner stops a trial whose best validation RMSE so
far is worse than the median of earlier trials at the same fold and epoch. The first trial is the
defaults, so the best found is never worse than them on this objective. The module is silent:
progress goes through ``on_trial``, a dict as each trial ends (number, state, rmse, seconds, the
settings, and ``best``: the study's best score so far).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from durability_cli.config import ModelConfig, RowShare, TrainConfig, describe_warmup
from durability_cli.errors import InputError, Terminated, check_numbers
from durability_cli.schema import measured_only
from durability_cli.training import TrainingDiverged, TrainingInterrupted

# The search space (docs/TRAINING.md). Categorical lists hold the defaults, which trial 0 takes.
# SPACE names its version in the default study name: a study stored by a tune whose lists differ
# cannot be continued (Optuna refuses a parameter whose choices changed), so it is not picked up.
# s2: batch 8 became 0 (auto); s3: the measured trend input (--trend) searched; s4: and the
# warm-up's line (--trend-line) as a third choice of the same parameter
SPACE = "s4"
CELLS = ("lstm", "gru")
HIDDEN = (16, 32, 64, 128)
LAYERS = (1, 3)  # low, high
DROPOUT = (0.0, 0.3)  # only with more than one layer
LR = (3e-4, 1e-2)  # log scale
# 0 is train's automatic batch (the default): 8 at the trials' fixed length, and in the config
# written, whatever train then decides (about 1,600 rows a step on a small table at the automatic
# length), so that the defaults' trial and the check train the defaults `train` trains
BATCH_SIZES = (4, 0, 16, 32)
LAGS = (1, 4)
LOSSES = ("gaussian", "mse", "huber")  # the point losses only with point_losses: no band without gaussian
MONOTONIC = ("none", "decreasing", "increasing")  # only with residual
# Warm-up of the validation forecast and of training's random warm-ups, as a share of the median
# specimen length; "auto" is training's default (20%). The objective always scores after the
# default warm-up, so a longer one cannot win by making the task easier.
VAL_CONTEXT = ("auto", "0.1", "0.3", "0.4")
WEIGHT_DECAY = (1e-6, 1e-2)  # log scale, behind an on/off switch (off = 0, the default)
TEACHER_FORCING = (0.0, 0.5, 1.0)  # starting probability; above 0 a schedule lowers it
TF_SCHEDULES = ("linear", "exponential", "inverse-sigmoid")
# A per-specimen latent z (docs/TRAINING.md, "--latent"): whether the specimens differ by a hidden
# factor the warm-up reveals is a property of the data, which the folds' scores measure directly
LATENT = (0, 2)
LATENT_PRIOR = (0.03, 3.0)  # log scale, only with a latent
# The measured trend (docs/TRAINING.md, "--trend" and "--trend-line"): off, as an input, or as the
# line each step starts from (which also feeds the input). Each gained much on some suite sets and
# lost on others (the line: coating -43 %, battery +24 %, seed 0): the data decide
TREND = ("off", "input", "line")

DEFAULT_TRIAL = {
    "cell": "lstm",
    "hidden": 64,
    "layers": 2,
    "dropout": 0.0,
    "lr": 2e-3,
    "batch_size": 0,
    "lags": 1,
    "residual": True,
    "monotonic": "none",
    "val_context": "auto",
    "weight_decay_on": False,
    "teacher_forcing": 0.0,
    "latent": 0,
    "trend": "off",
}


def default_trial(point_losses: bool = False) -> dict:
    """Trial 0's settings: the defaults, with the loss among them when the loss is searched."""
    return DEFAULT_TRIAL | ({"loss": "gaussian"} if point_losses else {})


@dataclass(frozen=True)
class TuneConfig:
    budget: float = 1200.0  # seconds of wall clock over all trials (20 minutes)
    trials: int | None = None  # at most this many trials in this run; None = until the budget ends
    folds: int = 3  # specimen folds: each trial trains this many models
    # per trial model, fixed so that trials compare epoch by epoch (the pruner) and the cosine
    # learning-rate decay follows it. 0 (the default): trials train SEARCH_EPOCHS with patience
    # SEARCH_PATIENCE, and the settings written leave the length to train's automatic rule (what
    # `train` does by default; the held-back check and --model-out train that way too); a number
    # given is the trials' length and is written with the settings
    epochs: int = 0
    patience: int = 0
    seed: int = 0  # the sampler, the folds and every training
    storage: str | None = None  # SQLite file that keeps the trials (resume by running again)
    study: str | None = None  # study name in the storage; default: from the data and the above
    # also search the point losses (mse, huber): the best may then forecast without a band or
    # end-of-life interval; off, every trial keeps the Gaussian loss
    point_losses: bool = False
    # share of the specimens held back from the whole search: the best settings and the defaults
    # are then trained on the rest and compared on them, and the defaults kept unless the best
    # wins there too (on a small table the folds' winner is partly their luck); 0 = no check
    check: float = 0.0
    # every trial validates, and the objective scores each held-out specimen, from this share of
    # its rows (`train --val-context-frac`), written with the settings; 0 = from the automatic
    # row count, and the validation's rows are searched
    val_context_frac: float = 0.0
    # processes that train a trial's folds at once (`tune --jobs`; aside.py): each fold is an
    # independent training, so two processes take a 3-fold trial in about 2/3 of the time
    jobs: int = 1

    def validate(self) -> None:
        check_numbers(
            whole={"trials": self.trials, "folds": self.folds, "epochs": self.epochs, "patience": self.patience,
                   "seed": self.seed},
            real={"budget": self.budget, "check": self.check, "val_context_frac": self.val_context_frac},
        )  # fmt: skip
        if not (self.budget > 0 and math.isfinite(self.budget)):
            raise InputError(f"`budget` must be a positive duration, got {self.budget}")
        if self.trials is not None and self.trials < 1:
            raise InputError(f"`trials` must be at least 1, got {self.trials}")
        if self.folds < 2:
            raise InputError(f"`folds` must be at least 2, got {self.folds}")
        if not 0.0 <= self.check < 1.0:
            raise InputError(f"`check` must be a share in [0, 1), e.g. 0.2, got {self.check}")
        if self.storage is not None:
            check_storage(self.storage)  # before the table is read
        TrainConfig(
            epochs=self.epochs, patience=self.patience, seed=self.seed, val_context_frac=self.val_context_frac
        ).validate()

    def trial_length(self) -> dict:
        """A trial model's ``epochs`` and ``patience``: those given, else SEARCH_EPOCHS / SEARCH_PATIENCE."""
        return {"epochs": self.epochs or SEARCH_EPOCHS, "patience": self.patience or SEARCH_PATIENCE}

    def written(self, options: dict) -> dict:
        """A trial's options as the settings to write and train with. With ``epochs`` 0 the
        trials' length was the search's own: ``epochs`` is dropped, and ``patience`` unless one
        was given, so that train sizes the run itself. With ``epochs`` given both are kept (the
        patience the trials had)."""
        auto = set() if self.epochs else {"epochs"} | (set() if self.patience else {"patience"})
        return {k: v for k, v in options.items() if k not in auto}


# A trial model's length when tune's `epochs` / `patience` are 0: the old fixed default of train,
# short enough for many trials; the settings written then train at train's automatic length
SEARCH_EPOCHS = 100
SEARCH_PATIENCE = 30


SMALL_TABLE = 50  # fewer specimens than this: the folds' best is checked on new specimens first


@dataclass
class TuneResult:
    """What a search found: the best settings (options of ``train``), their score, every trial."""

    best_params: dict  # ModelConfig and TrainConfig fields, as `train --config` takes them
    best_score: float  # mean free-running validation RMSE over the folds (durability units)
    default_score: float | None  # the same for the defaults (trial 0), when it completed
    trials: object  # pandas DataFrame: number, state, rmse, seconds, then the settings
    study: str  # the study's name in the storage
    folds: int
    context: int | RowShare  # the warm-up the objective scores after (rows, or a share of each's)
    specimens: int = 0  # in the folds
    # the held-back check (TuneConfig.check): specimens, the best's and the defaults' RMSE on them,
    # and whether the defaults were kept
    check: dict | None = None
    trial_epochs: int = 0  # each trial model's epochs (at most)
    columns: dict | None = None  # the column roles the search was given (to_toml's [data] table)

    def notes(self) -> list[str]:
        """What the user should know before adopting the best settings: on a small table the best
        of many trials is partly the folds' luck (benchmarks/RESULTS.md: on 23 devices the folds'
        winner was 15-22 % worse than the defaults on new ones)."""
        if self.check is not None:
            c = self.check
            kept = "the defaults were kept" if c["kept_defaults"] else "the search's best was kept"
            sure = ""
            spread = c.get("skill_spread") or {}
            if spread.get("specimens", 0) >= 2:
                sure = (
                    f" (the best better on {spread['specimens_better']} of them, its skill p5/p95 "
                    f"{spread['low']:.2g}/{spread['high']:.2g})"
                )
            return [
                f"on {c['specimens']} specimen(s) held back from the search the best settings scored "
                f"{c['best']:.4g} and the defaults {c['defaults']:.4g}{sure}: {kept}"
            ]
        if (
            not 0 < self.specimens < SMALL_TABLE  # 0: not known
            or self.default_score is None
            or self.best_score >= self.default_score
        ):
            return []
        return [
            f"the folds hold {self.specimens} specimens: the best of the trials is partly their luck (on a "
            "23-specimen benchmark set the winner forecast new specimens 15-22 % worse than the defaults); "
            "compare both on specimens the search never saw (durability evaluate) before adopting it"
        ]

    def to_toml(self, columns: dict | None = None, source: str = "DATA") -> str:
        """The best settings as a config file for ``durability train --config``; ``columns``
        (id_col, time_col, target, covariates, static: as given; by default those the search was
        given) go in its [data] table."""
        columns = self.columns if columns is None else columns
        done = int((self.trials["state"] == "COMPLETE").sum()) if len(self.trials) else 0
        lines = [
            f"# durability tune: the best of {done} complete trial(s) on {source}",
            f"# mean free-running RMSE over {self.folds} specimen folds after {describe_warmup(self.context)}: "
            f"{self.best_score:.6g}"
            + ("" if self.default_score is None else f" (defaults: {self.default_score:.6g})"),
            f"# use: durability train {source} --config THIS.toml -o model.safetensors",
        ]
        if "epochs" not in self.best_params:
            lines.append(
                f"# no epochs{'' if 'patience' in self.best_params else ' / patience'}: train sizes the run "
                "to the table (auto); each trial trained up to "
                f"{self.trial_epochs} epochs"
            )
        if self.check is not None:
            lines[1:1] = [f"# {line}" for line in self.notes()]
        given = {k: v for k, v in (columns or {}).items() if v is not None}
        if given:
            lines += ["", "[data]"] + [f"{k} = {_toml_value(v)}" for k, v in given.items()]
        for table, cls in (("model", ModelConfig), ("train", TrainConfig)):
            names = [f.name for f in fields(cls) if f.name in self.best_params]
            lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(self.best_params[k])}" for k in names]
        return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def parse_duration(text: str | float) -> float:
    """Seconds in ``90s``, ``10m``, ``1h``, ``1h30m`` or a plain number of seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or parts is None or not any(parts.groups()):
        raise InputError(f"`budget` must be a duration such as 90s, 10m or 1h, got {text!r}")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


def suggest(
    trial, median_length: float, longest: int, point_losses: bool = False, share: float = 0.0
) -> dict:
    """The trial's settings as options of ``train`` (define-by-run: dropout only with stacked
    layers, monotonic only with residual, a schedule only with teacher forcing, the loss only with
    ``point_losses``, the validation's rows only without a ``share`` of each specimen's).
    ``longest``: the warm-up must leave a row of the shortest fold's longest specimen to score."""
    o: dict = {
        "cell": trial.suggest_categorical("cell", CELLS),
        "hidden": trial.suggest_categorical("hidden", HIDDEN),
        "layers": trial.suggest_int("layers", *LAYERS),
    }
    o["dropout"] = trial.suggest_float("dropout", *DROPOUT) if o["layers"] > 1 else 0.0
    o["lr"] = trial.suggest_float("lr", *LR, log=True)
    o["batch_size"] = trial.suggest_categorical("batch_size", BATCH_SIZES)
    o["lags"] = trial.suggest_int("lags", *LAGS)
    o["loss"] = trial.suggest_categorical("loss", LOSSES) if point_losses else "gaussian"
    o["residual"] = trial.suggest_categorical("residual", (True, False))
    o["monotonic"] = trial.suggest_categorical("monotonic", MONOTONIC) if o["residual"] else "none"
    if share:
        o["val_context"], o["val_context_frac"] = 0, share
    else:
        of = trial.suggest_categorical("val_context", VAL_CONTEXT)
        o["val_context"] = (
            0 if of == "auto" else max(3, min(int(round(float(of) * median_length)), longest - 1))
        )
    on = trial.suggest_categorical("weight_decay_on", (False, True))
    o["weight_decay"] = trial.suggest_float("weight_decay", *WEIGHT_DECAY, log=True) if on else 0.0
    o["teacher_forcing"] = trial.suggest_categorical("teacher_forcing", TEACHER_FORCING)
    schedule = "constant"
    if o["teacher_forcing"] > 0:
        schedule = trial.suggest_categorical("tf_schedule", TF_SCHEDULES)
    o["tf_schedule"] = schedule
    o["latent"] = trial.suggest_categorical("latent", LATENT)
    if o["latent"]:
        o["latent_prior"] = trial.suggest_float("latent_prior", *LATENT_PRIOR, log=True)
    trend = trial.suggest_categorical("trend", TREND)
    o["trend"], o["trend_line"] = trend == "input", trend == "line"
    if o["trend_line"] and (not o["residual"] or o["monotonic"] != "none"):
        # the line adds to the step, which these predict otherwise: the model trains the trend input
        # alone (the same weights), and its config says so, as train --config accepts it
        o["trend"], o["trend_line"] = True, False
    return o


def _quiet_interrupts(optuna) -> None:
    """A trial stopped by Ctrl-C, SIGTERM or an error: Optuna logs it as failed, with the whole
    traceback, before it passes the exception on, which the command then says in one line. Those
    records are dropped at Optuna's handlers; its other warnings still show."""
    import logging

    class FailedTrials(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            text = str(record.msg)
            return not (text.startswith("Trial ") and " failed with " in text)

    for handler in logging.getLogger(optuna.__name__).handlers:
        if not any(type(f).__name__ == "FailedTrials" for f in handler.filters):
            handler.addFilter(FailedTrials())


@dataclass
class _Folds:
    """The table's specimens cut into K folds (a seeded permutation), and what scoring needs."""

    ids: list  # [N] specimen ids, sorted as the table
    folds: list  # K arrays of specimen indices
    series: object  # data.Series of the whole table (raw)
    context: int | RowShare  # warm-up of the objective: training's default rows, or the share
    lengths: np.ndarray  # [N] rows per specimen


def _make_folds(ds, k: int, seed: int, share: float = 0.0) -> _Folds:
    from durability_cli.data import to_series
    from durability_cli.training import auto_context, check_context

    series = to_series(ds)
    n = len(series.ids)
    if n < k + 1:
        raise InputError(
            f"{ds.source}: {n} specimen(s) cannot make {k} folds with specimens left to train on; "
            f"lower `folds` (at most {max(n - 1, 1)})"
        )
    order = np.random.default_rng(seed).permutation(n)
    folds = [np.sort(part) for part in np.array_split(order, k)]
    context = RowShare(share) if share else auto_context(series.lengths)
    check_context(series.lengths, context, False, ds.source)
    return _Folds(list(series.ids), folds, series, context, series.lengths)


def fingerprint(ds) -> str:
    """12 hex digits naming the table's contents and roles (the default study name)."""
    import pandas as pd

    digest = hashlib.sha256(json.dumps(ds.schema.to_dict(), sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(ds.frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:12]


def tune(
    ds,
    cfg: TuneConfig,
    *,
    fixed: dict | None = None,
    on_trial: Callable[[dict], None] | None = None,
) -> TuneResult:
    """Search the settings for the Dataset ``ds`` (see the module docstring). ``fixed`` are
    options of ``train`` that every trial keeps (they are not searched)."""
    import optuna

    from durability_cli.api import configs

    cfg.validate()
    ds = measured_only(ds)  # as train's table: no rows after a specimen's last measurement
    fixed = dict(fixed or {})
    length = sorted({"epochs", "patience"} & set(fixed))
    if length:  # the trials' length is the search's: a fixed one would bypass its name and pruner
        raise InputError(
            f"give {' and '.join(f'`{k}`' for k in length)} as tune's own setting, not as a fixed train option"
        )
    # a share given as a train option is the search's own: the objective scores from it too
    share = float(fixed.pop("val_context_frac", 0.0) or 0.0) or cfg.val_context_frac
    configs({**fixed, "val_context_frac": share})  # a bad fixed option is refused before any trial
    full, held = ds, None
    if cfg.check:
        ds, held = _hold_back(ds, cfg.check, cfg.seed)
    split = _make_folds(ds, cfg.folds, cfg.seed, share)
    median = float(np.median(split.lengths))
    longest = min(int(split.lengths[fold].max()) for fold in split.folds)
    points = "-points" if cfg.point_losses else ""  # the two search spaces never share a study
    frac = f"-frac{share:g}" if share else ""  # nor two objectives
    name = cfg.study or (
        f"durability-{SPACE}-{fingerprint(ds)}-k{cfg.folds}-seed{cfg.seed}"
        f"-epochs{cfg.trial_length()['epochs']}{points}{frac}"
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the library is silent; on_trial reports
    _quiet_interrupts(optuna)
    study = optuna.create_study(
        study_name=name,
        storage=_storage(cfg.storage),
        load_if_exists=True,
        direction="minimize",
        # TPE after 5 random trials (Optuna's 10 are most of a short budget)
        sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=5),
        # From the first fold's fifth epoch on, a trial is compared with the earlier ones, the
        # defaults (trial 0) included: a trial worse than them there is stopped. With 2 trials
        # before pruning starts, a random trial 1 ran its full length on coating at 3x the
        # defaults' RMSE and took most of an 8-minute budget.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=5),
    )
    default_params = default_trial(cfg.point_losses)
    # a new study, or one whose defaults trial was cut short: the defaults go first
    if _defaults_trial(study, default_params) is None:
        study.enqueue_trial(default_params)
    deadline = time.monotonic() + cfg.budget
    base = {**cfg.trial_length(), "seed": cfg.seed, **fixed}
    # a trial compares settings with one model per fold (unless `ensemble` is fixed); the settings
    # it reports leave `ensemble` to `train`'s default (auto), which the held-back check trains
    single = {} if "ensemble" in fixed else {"ensemble": 1}

    def objective(trial) -> float:
        options = {**base, **suggest(trial, median, longest, cfg.point_losses, share), **fixed}
        trial.set_user_attr("options", options)
        model_cfg, train_cfg = configs({**options, **single})
        if cfg.jobs >= 2:
            from durability_cli.aside import allowed

            if allowed(ds, {}):
                return float(
                    np.mean(_fold_scores_beside(ds, split, model_cfg, train_cfg, trial, deadline, cfg.jobs))
                )
        scores = []
        for k, fold in enumerate(split.folds):
            scores.append(_fold_score(ds, split, fold, k, model_cfg, train_cfg, trial, deadline))
        return float(np.mean(scores))

    def report(study, trial) -> None:
        if on_trial:  # the trial, and the best score of the study so far (None before one completes)
            best = study.best_value if _any_complete(study) else None
            on_trial({**_trial_row(trial), "best": best})

    try:  # a diverged trial fails and the search goes on; Ctrl-C stops it
        study.optimize(
            objective, n_trials=cfg.trials, timeout=cfg.budget, callbacks=[report], catch=(TrainingDiverged,)
        )
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        # in a trial's training, or outside it (scoring a fold, Optuna's own records between trials);
        # SIGTERM and SIGHUP outside training keep their exit codes (console.run_command)
        if isinstance(exc, Terminated):
            raise
        raise TrainingInterrupted(f"tune interrupted; {_kept(study, cfg.storage)}") from None
    if not _any_complete(study):
        raise InputError(
            f"{ds.source}: no trial completed within the budget ({cfg.budget:g} s); a trial trains "
            f"{cfg.folds} models of up to {base['epochs']} epochs: give a longer `budget`, fewer `epochs` "
            "or fewer `folds`"
        )
    best = study.best_trial
    defaults = _defaults_trial(study, default_params, complete=True)
    # the defaults as `train` has them: trial 0 scores the trend off (a fold cannot run auto's
    # own validation) and no latent, the check trains the default, auto, which chooses the
    # line itself, and the latent by the warm-ups' length (latent_choice.py)
    auto = {} if "trend_line" in fixed or "trend" in fixed else {"trend_line": "auto"}
    auto |= {} if "latent" in fixed else {"latent": "auto"}
    default_options = cfg.written(
        {
            **base,
            **suggest(optuna.trial.FixedTrial(default_params), median, longest, cfg.point_losses, share),
            **auto,
            **fixed,
        }
    )
    won = defaults is not None and best.number == defaults.number
    result = TuneResult(
        # where the defaults' trial won, the defaults as `train` has them (auto): trial 0's own
        # settings would switch off train's automatic choices of the line and the latent
        best_params=default_options if won else cfg.written(best.user_attrs["options"]),
        best_score=float(best.value),
        default_score=None if defaults is None else float(defaults.value),
        trials=trials_frame(study),
        study=name,
        folds=cfg.folds,
        context=split.context,
        specimens=len(split.ids),
        trial_epochs=base["epochs"],
    )
    if held is not None:
        result.check = _check(ds, full, held, result.best_params, default_options, split.context, cfg.jobs)
        if result.check["kept_defaults"]:
            result.best_params = default_options
    return result


def _hold_back(ds, share: float, seed: int):
    """(the Dataset without the held-back specimens, the held-back specimens' indices in ``ds``):
    round(share x N) of them, at least 1, drawn with ``seed`` apart from the folds' draw."""

    from durability_cli.schema import specimen_starts

    starts = specimen_starts(ds.frame, ds.schema.id_col)
    n = len(starts)
    k = max(1, int(round(share * n)))
    if n - k < 3:
        raise InputError(
            f"{ds.source}: {n} specimen(s) leave too few to search after holding back {k} for the check; "
            "lower `check` or leave it out"
        )
    held = np.sort(np.random.default_rng([seed, 1]).permutation(n)[:k])
    return _specimens(ds, np.setdiff1d(np.arange(n), held)), held


def _check(
    ds, full, held, best_options: dict, default_options: dict, context: int | RowShare, jobs: int = 1
) -> dict:
    """Train the best settings and the defaults on ``ds`` (the searched specimens) as `train
    --config` would (an ensemble where train makes one) and backtest both on the held-back
    specimens of ``full`` after ``context`` rows (the mean path, as `evaluate --samples 0`):
    their RMSE, and how surely the best beats the defaults there (metrics.skill_spread). ``jobs``:
    as train's (the line's candidates, or an ensemble's members, at the same time)."""
    from durability_cli.api import configs
    from durability_cli.evaluation import BacktestConfig, evaluate
    from durability_cli.forecasting import ForecastConfig
    from durability_cli.training import train

    best = train(ds, *configs(best_options), jobs=jobs)
    same = default_options == best_options
    others = {} if same else {"defaults": train(ds, *configs(default_options), jobs=jobs)}
    held_ds = _specimens(full, held)
    if isinstance(context, RowShare):
        backtest = BacktestConfig(context_frac=context.share, baselines=False)
    else:
        backtest = BacktestConfig(context=context, baselines=False)
    report = evaluate(best, held_ds, ForecastConfig(samples=0), backtest, others).report
    best_rmse = report["models"]["model"]["rmse"]
    defaults_rmse = best_rmse if same else report["models"]["defaults"]["rmse"]
    return {
        "specimens": len(held),
        "best": best_rmse,
        "defaults": defaults_rmse,
        "kept_defaults": bool(defaults_rmse <= best_rmse),
        # the best settings' skill over the defaults on these specimens: its p5/p95, specimens won
        "skill_spread": None if same else report["skill_spread"]["defaults"],
    }


def _specimens(ds, index: np.ndarray):
    """The Dataset of ``ds``'s specimens at ``index`` (positions in its order)."""
    from dataclasses import replace

    from durability_cli.schema import run_lengths, specimen_starts

    starts = specimen_starts(ds.frame, ds.schema.id_col)
    specimen = np.repeat(np.arange(len(starts)), run_lengths(starts, len(ds.frame)))  # [rows]
    rows = np.isin(specimen, index)
    return replace(ds, frame=ds.frame.iloc[np.flatnonzero(rows)].reset_index(drop=True), t=ds.t[rows])


def _kept(study, storage: str | None) -> str:
    """What an interrupted search leaves: how many trials completed, and where they are kept."""
    import optuna

    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if storage is None:
        lost = f"its {done} completed trial(s) are not kept" if done else "no trial had completed"
        return f"{lost}: give `storage` to keep a search's trials and continue it"
    if not done:
        return f"no trial had completed; running the same command again starts the search in {storage}"
    return f"{done} completed trial(s) are kept in {storage}: run the same command again to continue"


def _storage(path: str | None):
    if path is None:
        return None
    return f"sqlite:///{Path(path).resolve()}"  # TuneConfig.validate checked it (check_storage)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_storage(path: str) -> None:
    """A `storage` that is a folder, or a file some other program wrote (a CSV given by mistake):
    refused in one line before Optuna's database layer fails on it; a new name or an empty file
    starts a search, and a SQLite file another search wrote continues it."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path}: is a folder; give `storage` a file name (a new one starts a search)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{path}: cannot read the search's storage ({exc.strerror or exc})") from None
    if head and head != _SQLITE_MAGIC:
        raise InputError(
            f"{path}: is not a search's storage (a SQLite file that tune wrote); give a new file name "
            "to start a search there, or the file an earlier search kept"
        )


def _fold_score(ds, split: _Folds, fold, k: int, model_cfg, train_cfg, trial, deadline, asides=()) -> float:
    """Train on every fold but ``fold`` and return the held-out specimens' free-running RMSE
    after the objective's warm-up. Each epoch reports its best validation RMSE so far to the
    pruner (step = fold x epochs + epoch, so the same step is the same fold in every trial).
    ``asides``: other processes training folds at the same time, whose messages each epoch takes
    (aside.polling)."""
    from durability_cli.aside import polling
    from durability_cli.training import train

    on_epoch = polling(asides, _reporter(trial, k, train_cfg.epochs, deadline))
    held_out = [split.ids[i] for i in fold]
    bundle = train(ds, model_cfg, train_cfg, on_epoch=on_epoch, val_ids=held_out)
    return held_out_rmse(bundle, split.series.take(fold), split.context)


def _reporter(trial, k: int, epochs: int, deadline: float):
    """``on_epoch`` for fold ``k`` of ``trial``: reports the best validation RMSE so far to the
    pruner at step k x epochs + epoch, and stops the trial (TrialPruned) where the pruner says so
    or the budget is spent."""
    import optuna

    best = math.inf

    def on_epoch(log) -> None:
        nonlocal best
        best = min(best, log.val_rmse)
        trial.report(best, k * epochs + log.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
        if time.monotonic() > deadline:  # the budget is wall-clock time: the running trial stops too
            trial.set_user_attr("stopped", "budget")
            raise optuna.TrialPruned()

    return on_epoch


def _fold_scores_beside(ds, split: _Folds, model_cfg, train_cfg, trial, deadline, jobs: int) -> list[float]:
    """Every fold's score (as _fold_score). The first fold trains here alone where that costs no
    time: most trials the pruner stops are stopped there, before a second process is started.
    The other folds are then shared in turn among ``jobs`` processes: this one trains the first
    of them and reports them to the pruner as they run; each other process trains its share one
    after the other, and their epochs reach the pruner, in fold order, once this process's folds
    are done. With 3 folds and 2 processes the pruner so hears every epoch in the order one
    process reports them (fold 3's after the end of fold 2), and decides alike, only later."""
    import tempfile
    from contextlib import ExitStack

    from durability_cli.artifact import load_bundle
    from durability_cli.aside import Aside, one_based

    n = len(split.folds)
    scores: dict[int, float] = {}
    # the first fold alone where that costs no time: 1 + ceil((n - 1) / jobs) folds' time against
    # ceil(n / jobs) (3 folds in 2 processes: 2 either way; 2 or 4 folds: the first goes with the rest)
    if 1 + math.ceil((n - 1) / jobs) <= math.ceil(n / jobs):
        scores[0] = _fold_score(ds, split, split.folds[0], 0, model_cfg, train_cfg, trial, deadline)
    rest = [k for k in range(n) if k not in scores]
    count = min(jobs, len(rest))
    shares = [rest[p::count] for p in range(count)]
    trial.set_user_attr("processes", count)
    with tempfile.TemporaryDirectory(prefix="durability-folds-") as scratch, ExitStack() as stack:
        asides = []
        for share in shares[1:]:
            task = [
                (k, [split.ids[i] for i in split.folds[k]], str(Path(scratch) / f"fold{k}.safetensors"))
                for k in share
            ]
            what = f"fold(s) {one_based(share)} of {n}"
            asides.append(
                stack.enter_context(Aside(_train_folds, ds, model_cfg, train_cfg, {"task": task}, None, what))
            )

        for k in shares[0]:
            scores[k] = _fold_score(
                ds, split, split.folds[k], k, model_cfg, train_cfg, trial, deadline, asides
            )
        current: dict = {}  # the pruner's reporter for the fold a child is training

        def started(info: dict) -> None:
            current["report"] = _reporter(trial, info["fold"], train_cfg.epochs, deadline)

        for aside, share in zip(asides, shares[1:], strict=True):
            aside.result(started, lambda log: current["report"](log), replay=True)
            for k in share:
                bundle = load_bundle(Path(scratch) / f"fold{k}.safetensors")
                scores[k] = held_out_rmse(bundle, split.series.take(split.folds[k]), split.context)
    return [scores[k] for k in range(n)]


def _train_folds(ds, model_cfg, train_cfg, *, task, on_start=None, on_epoch=None) -> None:
    """A child's folds (aside.py's ``train``): each trained with its held-out specimens validating
    and written to its file; the start of each says which fold it is."""
    from durability_cli.artifact import save_bundle
    from durability_cli.training import train

    for k, held_out, out in task:

        def start(info: dict, k: int = k) -> None:
            if on_start is not None:
                on_start({**info, "fold": k})

        bundle = train(ds, model_cfg, train_cfg, on_start=start, on_epoch=on_epoch, val_ids=held_out)
        save_bundle(bundle, out)


def held_out_rmse(bundle, series, context: int | RowShare) -> float:
    """The free-running RMSE (durability units) of ``bundle`` on ``series`` after ``context``
    rows: one model's, or an ensemble's (fixed `ensemble` in the search) of its members' mean
    path, as the forecast averages them, not the first member's alone."""
    import torch

    from durability_cli.data import to_tensors
    from durability_cli.training import _free_run_errors, free_run_rmse

    if len(bundle.members) == 1:
        return free_run_rmse(bundle.model, to_tensors(series, bundle.scaler), bundle.scaler, context)[0]
    # each member's errors in durability units (the rows scored are the same for every member)
    errors = [
        _free_run_errors(m.model, to_tensors(series, m.scaler), context)[0].double() * m.scaler.y_std
        for m in bundle.members
    ]
    err = torch.stack(errors).mean(0)
    return float(torch.sqrt((err**2).mean())) if err.numel() else float("nan")


def _any_complete(study) -> bool:
    import optuna

    return any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


def _defaults_trial(study, defaults: dict, complete: bool = False):
    """The trial of the ``defaults`` (default_trial): complete, or (``complete`` False) also
    enqueued and not started."""
    import optuna

    state = optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(state.COMPLETE, state.WAITING)):
        if t.state == state.COMPLETE and t.params == defaults:
            return t
        if not complete and t.state == state.WAITING and t.system_attrs.get("fixed_params") == defaults:
            return t
    return None


def _trial_row(trial) -> dict:
    seconds = None if trial.duration is None else trial.duration.total_seconds()
    state = trial.state.name
    if state == "PRUNED" and trial.user_attrs.get("stopped") == "budget":
        state = "STOPPED"  # cut by the end of the budget, not by the pruner
    return {
        "number": trial.number,
        "state": state,
        "rmse": trial.value if state == "COMPLETE" else None,  # a pruned one holds a partial score
        "seconds": seconds,
        **trial.user_attrs.get("options", {}),
    }


def trials_frame(study):
    """One row per trial: number, state, rmse (mean over the folds), seconds, then the settings."""
    import pandas as pd

    return pd.DataFrame([_trial_row(t) for t in study.trials])


def write_config(result: TuneResult, path: str, columns: dict | None = None, source: str = "DATA") -> None:
    """Write ``result.to_toml`` to ``path`` atomically."""
    from durability_cli.io import atomic_path

    text = result.to_toml(columns, source)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
