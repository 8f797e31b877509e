"""The options of the `durability` commands, declared once: their help texts, panels and metavars,
and the model and training options of `train` (CONFIG_OPTIONS), each the field of the same name of
config.ModelConfig or config.TrainConfig. The commands (cli.py, cli_plot.py) use these types."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from durability_cli.config import CHOICES


def _opt(help: str, panel: str | None = None, *names: str, metavar: str | None = None):
    """An option with its help text and help panel; ``names`` are its flags when not the default;
    ``metavar`` says what goes there in --help (PATH, N, ...; FLAG for a switch)."""
    return typer.Option(*names, help=help, rich_help_panel=panel, metavar=metavar, case_sensitive=False)


# What goes after an option in --help, instead of the type (<str>, <int>); a switch shows nothing.
FLAG, PATH, N, FLOAT, NAME, LIST = "", "PATH", "N", "FLOAT", "NAME", "LIST"


FORMATS = "<csv|parquet|jsonl>"  # io.FORMATS; io also takes aliases (pq, ndjson), so not a Choice


# Shared options, defined once and reused by every command that reads a table.
_COLS, _ADV = "Columns", "Advanced"


DataArg = Annotated[
    str,
    typer.Argument(
        help="Input table: .csv, .csv.gz, .parquet, a folder of Parquet files, .xlsx, or - for stdin.",
        metavar="DATA",
    ),
]


_ID = "Specimen id column (default: auto-detect specimen_id, specimen, series_id, unit, id)."


IdCol = Annotated[str | None, _opt(_ID, _COLS, "--id-col", metavar=NAME)]


_TIME = "Time column (default: auto-detect time, cycle, step, day, t, or a datetime column)."


TimeCol = Annotated[str | None, _opt(_TIME, _COLS, "--time-col", metavar=NAME)]


TargetCol = Annotated[
    str | None, _opt("Measured durability column (default: durability).", _COLS, "--target", metavar=NAME)
]


_COVS = "Comma-separated condition columns (default: every other numeric column)."


Covariates = Annotated[str | None, _opt(_COVS, _COLS, "--covariates", metavar=LIST)]


Static = Annotated[
    str | None,
    _opt("Comma-separated per-specimen constant columns (material, batch, ...).", _COLS, metavar=LIST),
]


_FMT = "Input format when it cannot be told from the name: csv, parquet, jsonl or xlsx."


Fmt = Annotated[str | None, _opt(_FMT, _COLS, "--format", metavar="<csv|parquet|jsonl|xlsx>")]


_SHEET = (
    "Sheet of an Excel (.xlsx) input to read (default: the first); needs pip install 'durability\\[excel]'."
)


Sheet = Annotated[str | None, _opt(_SHEET, _COLS, "--sheet", metavar=NAME)]


Debug = Annotated[bool, _opt("Show the full traceback on errors.", _ADV, "--debug", metavar=FLAG)]


# One thread by default: the recurrent steps are small and sequential, and with two threads on a
# busy 2-core machine one LSTM step of 48 specimens took 5-40 ms instead of 0.14 ms.
_THREADS = "CPU threads for torch. 1 (default) is fastest for the small sequential steps; more can help very large batches."


Threads = Annotated[int, _opt(_THREADS, _ADV, "--threads", metavar=N)]


_DEVICE = "Where the network runs: auto (a GPU when torch sees one), cpu or cuda[:N]."


Device = Annotated[str, _opt(_DEVICE, _ADV, "--device", metavar="<auto|cpu|cuda[:N]>")]


AMP_HELP = (
    "Mixed precision: run the network in bfloat16 (torch.autocast); the fed-back durability and "
    "the sums stay float32. For GPUs with bfloat16 (A100, H100 and later); on a CPU it is usually "
    "slower. On the coating sample forecasts moved by at most 0.0016 (its measurement noise is 0.01)."
)


Amp = Annotated[bool, _opt(AMP_HELP, _ADV, "--amp", metavar=FLAG)]


_SHARD = (
    "Only shard I of N (0-based, e.g. 3/8): specimens split by a stable hash of their id, "
    "for job arrays; the shards' outputs concatenate to the whole."
)


ShardOpt = Annotated[str | None, _opt(_SHARD, _ADV, "--shard", metavar="I/N")]


_CHUNK = (
    "Work through N specimens at a time and write the outputs as they go, so that memory "
    "follows N, not the table. A Parquet file or folder is then read N specimens at a time "
    "(a first pass reads the id column; tables not sorted by specimen take a pass per group); "
    "CSV and stdin are still read whole. The numbers are the whole-table run's bit for bit "
    "(with --threads 1). forecast: not with --plot; a --future table is read whole."
)


ChunkOpt = Annotated[int | None, _opt(_CHUNK, _ADV, "--chunk-specimens", metavar=N)]


Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress, notes, warnings or tables on stderr (errors still print; a forecast's extrapolated column still marks its rows).",
        metavar=FLAG,
    ),
]


def _one_model(values: list[str]) -> list[str]:
    """Refuse a repeated -m on a command that reads one model: the parser would keep the last
    silently (plot calibration -m A -m B drew B). The command reads ``model[0]``."""
    if len(values) > 1:
        raise typer.BadParameter(
            f"given {len(values)} times ({', '.join(values)}); this command reads one model: compare "
            "models with durability evaluate -m A -m B, plot errors or plot conditions",
            param_hint="-m/--model",
        )
    return values


# A list, so that a repeated -m is seen at all (a plain option keeps the last); one path in it.
ModelOpt = Annotated[
    list[str],
    typer.Option(
        "--model", "-m", help="Model file written by durability train.", metavar=PATH, callback=_one_model
    ),
]


ModelArg = Annotated[str, typer.Argument(help="Model file written by durability train.", metavar="MODEL")]


Picture = Annotated[
    str, typer.Option("--output", "-o", help="Picture to write (.png or .svg).", metavar=PATH)
]


_SAMPLES = "Monte Carlo paths for intervals (Gaussian models); 0 = deterministic mean path."


Samples = Annotated[int, _opt(_SAMPLES, metavar=N)]


Quantiles = Annotated[str, _opt("Comma-separated quantiles to report, e.g. 0.1,0.5,0.9.", metavar=LIST)]


Threshold = Annotated[float | None, _opt("End-of-life threshold in durability units.", metavar=FLOAT)]


Direction = Annotated[
    Literal[CHOICES["direction"]], _opt("End of life when durability goes below or above the threshold.")
]


SeedOpt = Annotated[int, _opt("Seed for the Monte Carlo paths.", None, "--seed", metavar=N)]


_HORIZON = (
    "Forecast at most N steps after each specimen's last measurement; with --hold-conditions, "
    "add N steps to tables that have no future rows (a model without conditions adds them "
    "without it, at each specimen's last step length)."
)


Horizon = Annotated[int | None, _opt(_HORIZON, metavar=N)]


Future = Annotated[
    str | None, _opt("Table of future rows (id, time, conditions) to append to DATA.", metavar=PATH)
]
_FUTURE_SHEET = (
    "Sheet of an Excel (.xlsx) --future workbook to read (default: the first), e.g. a plan kept "
    "beside notes in one workbook."
)
FutureSheet = Annotated[str | None, _opt(_FUTURE_SHEET, None, "--future-sheet", metavar=NAME)]
_HOLD = "With --horizon: hold each specimen's last conditions and step length."


Hold = Annotated[bool, _opt(_HOLD, None, "--hold-conditions", metavar=FLAG)]


OutFmt = Annotated[
    str | None,
    _opt(
        "Format of each table whose destination names none: stdout, a device or pipe, a name "
        "without .csv, .parquet or .jsonl (a file's own extension decides).",
        None,
        "--output-format",
        metavar=FORMATS,
    ),
]


_PATHS = "Write the raw Monte Carlo paths (id, time, sample, value)."


_WHAT_IF, _OUT = "What if", "Output"


_SET = (
    "Put these conditions on every future row (after each specimen's last measurement, and the "
    "--horizon --hold-conditions rows): temperature=45,humidity=85, or --set temperature=45 --set "
    "humidity=85; each condition once."
)


_SCENARIOS = (
    "Table with a 'scenario' column and condition columns, one row per named scenario: one forecast "
    "each, a 'scenario' column in every output (an empty cell keeps the data's or --set's value). "
    "All scenarios draw the same random numbers (same --seed), so their differences come from the conditions."
)


_BOUNDS = (
    "Clip the mean, quantiles and paths to physical bounds; either side may be empty (0,). "
    "Default: a --monotonic model's training range of the target; otherwise none (',' = none)."
)


_PRECISION = (
    "Significant digits of predicted values (default: 6 in CSV and JSON Lines, all in Parquet; 0 = all)."
)
_EVAL_PRECISION = (
    "Significant digits of the forecasts and scores in --per-series and --backtest-out, as forecast's "
    "--precision (default: 6 in CSV and JSON Lines, all in Parquet; 0 = all); measured values and "
    "times keep every digit they were typed with."
)


_META = (
    "Write a JSON record of the run (model file and hash, seed, samples, quantiles, threshold, scenarios)."
)


_STRICT = "Refuse to extrapolate beyond the conditions and step lengths seen in training."

_EVAL_MAX_STEP = (
    "The steps each backtest's forecast runs, as forecast --max-step: auto (the default, where the "
    "model file keeps its training steps) cuts the future steps longer than training's at their "
    "conditions into pieces typical of training, LENGTH every step longer than that, off none; only "
    "the table's own rows are scored. Give what the forecasts you check or calibrate will use."
)


_MAX_STEP = (
    "Cut future steps into equal pieces for the network, each holding the conditions of the row it "
    "starts from; the outputs keep the plan's own rows. auto (the default, where the model file keeps "
    "its training steps): the steps longer than training's at their conditions, into the fewest "
    "pieces typical of training; LENGTH (time units; days on a date table): every step longer than "
    "LENGTH; off: the plan's steps as given. The network learned its steps from the measurements' "
    "spacing: against the coating physics, 70 days at 60 C scored RMSE 0.233 in 14-day steps, 0.125 "
    "with auto, 0.091 with 1; auto cut none of the measured sets' test schedules. Not finer than the "
    "measurements had at such conditions (docs/GUIDE.md, What if)."
)


# the plot commands' --max-step: a backtest figure's (as evaluate's) and a forecast figure's (as forecast's)
BacktestMaxStep = Annotated[str | None, _opt(_EVAL_MAX_STEP, None, "--max-step", metavar="LENGTH|auto|off")]
ForecastMaxStep = Annotated[str | None, _opt(_MAX_STEP, None, "--max-step", metavar="LENGTH|auto|off")]


_BASELINES = "Also score persistence, linear trend, exponential fit and the mixed-effects path that train fitted on its table and kept in the model file (files from before it lack one)."


_POINTS = "Write every forecast point (truth, prediction, quantiles, model)."


_ERRORS = "Draw the error by forecast horizon, model vs baselines, with specimens per step (PNG or SVG)."


_METRICS_JSON = "Write the metrics JSON on stdout (the default when stdout is not a terminal, or with -q)."


_TIME_UNIT = "Unit of the time column for the axis labels, e.g. cycles or hours (default: days for dates)."


TimeUnit = Annotated[str | None, _opt(_TIME_UNIT, None, "--time-unit", metavar=NAME)]


_MODEL = "Model"


_TRAIN = "Training"


_SCHED = "Teacher forcing"


# The model and training options: (name, type, panel, help[, flag]). Each maps onto the field of
# the same name of config.ModelConfig or config.TrainConfig; None (not given) means "from --config,
# else the dataclass default". They stand in the train command's signature after --config.
CONFIG_OPTIONS = [
    ("cell", str, _MODEL, "Recurrent cell."),
    ("hidden", int, _MODEL, "Units per layer."),
    ("layers", int, _MODEL, "Stacked recurrent layers."),
    ("dropout", float, _MODEL, "Dropout between stacked layers."),
    ("lags", int, _MODEL, "How many past durability values are fed back (1 = plain feedback; 3 = h1, h2, h3 -> h4)."),
    ("loss", str, _MODEL, "gaussian: mean and scale, gives intervals; mse or huber: a point forecast."),
    ("residual", bool, _MODEL, "Predict the step change instead of the level.", "--residual/--no-residual"),
    ("monotonic", str, _MODEL, "One-signed steps by construction (or none); accuracy mixed, see docs/TRAINING.md."),
    ("latent", str, _MODEL, "Size D of a per-specimen latent vector z (0 = off): the model infers each specimen's hidden factors (batch, initial flaw) from its warm-up. auto (the default): a latent of 2, with the warm-up's line (unless --no-trend-line), where validation warms up on at least 50 rows (the median over the specimens; --val-context sets it), none on shorter warm-ups. Measured on 96 new specimens per set, 2-3 seeds: with 52-row warm-ups ageing -27 %, coating -8 %, crack -12 % RMSE; with 40-48 rows ageing -49 %, battery +3 % to +6 %; with 20 rows or fewer it lost on most sets (ball +12 %, coating +9 %, Device-B +15 %; crack -7 %). Its ensemble members train one after the other (1.3-3 x the time). See docs/TRAINING.md."),
    ("latent_prior", float, _MODEL, "Weight of the N(0, I) prior on z: larger trusts a short warm-up less."),
    ("transform", str, _MODEL, "Physics-aware inputs, COLUMN=NAME pairs: arrhenius (1000/K from °C), arrhenius-kelvin, log (Peck humidity, stress laws), log1p, reciprocal, sqrt; e.g. temperature=arrhenius,humidity=log. Stored in the model and applied at forecast time."),
    ("trend", bool, _MODEL, "Feed every step the least-squares trend of the measured values so far (its slope and how many rows it rests on): the specimen's own rate, read alike from a warm-up of any length, at no extra forecast cost. Measured (3 seeds): ball -21 %, ageing -12 %, coating -12 %, level on battery, crack and the measured Alloy-A, the measured Device-B +7 % (worse on each of five test splits), so it is off by default. Compare on held-out specimens with evaluate -m A -m B; see docs/TRAINING.md.", "--trend/--no-trend"),
    ("trend_line", bool, _MODEL, "Start every step from the straight line through the specimen's measurements so far: their least-squares slope (as --trend computes it) times a learned gain, starting at 1 (at 0 with --lags 2 or more, whose lag path already starts from the last step), is added to each predicted step, so the network learns where to bend the line instead of learning the rate itself; it also feeds the trend as an input (--trend). Left out (auto), training runs twice, without and with the line, and keeps the line where it validates better for most ensemble members (twice the training time; the summary says which and why). Measured (3 seeds): the line alone gains on specimens that wear at steady rates of their own (ageing -45 %, ball -19 % on 96 fresh specimens; the measured lasers -42 %) and loses on the measured Device-B (+14 %), whose forecasts start from a few rows of a sharply bending curve; auto against the model without the line: ageing -45 %, ball -19 %, coating -4 %, battery -0.6 %, crack level on 96 fresh specimens of each synthetic set; the measured lasers -28 %, luminosity -17 %, Alloy-A -5 %, Device-B level on their test splits; level or better on every measured set and seed. --trend-line forces it, --no-trend-line leaves it out (one training). The line is left out with --monotonic or --no-residual. See docs/TRAINING.md.", "--trend-line/--no-trend-line"),
    ("epochs", int, _TRAIN, "Maximum epochs (early stopping usually ends sooner); the learning rate decays over them. 0 (the default) = auto: enough epochs for about 800 optimiser steps of --batch-size training specimens, at least 100 (at --batch-size 8 a table of 11 training specimens gets 400 epochs, one of 26 gets 200, 57 or more get 100; where the automatic batch takes every training specimen in one step, as on a small table of short series, 800): small tables need steps, not passes; see docs/TRAINING.md."),
    ("batch_size", int, _TRAIN, "Specimens per optimiser step. 0 (the default) = auto: 8, but on a small table at the automatic length (--epochs 0, at most 64 training specimens, so the run makes its ~800 steps whatever the batch) about 1,600 rows a step, up to 32 specimens: 32 for series of 50 rows or fewer. Measured: 32 instead of 8 on the short-series benchmark sets, ball -24 %, Device-B -3 %, Alloy-A -3 % for about 2 x their (short) training time; long series keep 8. See docs/TRAINING.md."),
    ("lr", float, _TRAIN, "Adam learning rate."),
    ("weight_decay", float, _TRAIN, "Adam weight decay."),
    ("clip", float, _TRAIN, "Gradient-norm clipping."),
    ("window", int, _TRAIN, "Train on random windows of this many steps (truncated BPTT); 0 = whole series."),
    ("val_fraction", float, _TRAIN, "Share of specimens held out for validation and early stopping."),
    ("val_split", str, _TRAIN, "How the validation specimens are drawn: random, or stratified (specimens ordered by their mean conditions, numeric static values and length, cut into as many groups as validation specimens, one drawn from each: a validation set that spans the table, e.g. every temperature of a designed test). Measured no better than random on the Device-B set; see docs/TRAINING.md."),
    ("val_context", int, _TRAIN, "Warm-up rows before the free-running validation forecast; 0 = 20% of the median length, at least 3."),
    ("val_context_frac", float, _TRAIN, "Instead of --val-context rows: validation warms up on this share of each specimen's rows (round(share x rows), at least 1), as evaluate --context-frac cuts and as forecasts from part of each series start; training's warm-ups are then drawn up to each specimen's own share. For tables whose specimens differ in length. 0 (the default) = off. See docs/TRAINING.md."),
    ("warmup_min", float, _TRAIN, "Shortest measured warm-up of a training rollout, as a share of --val-context: each rollout is fed between ceil(share x val-context) and val-context measured rows before it runs free. 0 (the default) = any length from 1 row; 1 = always the validation's warm-up, which teaches the network to read a specimen's own rate from that many rows. See docs/TRAINING.md."),
    ("patience", int, _TRAIN, "Stop after this many epochs without a better validation RMSE. 0 (the default) = auto: half the epochs, at least 30 (a member of an ensemble trained together costs the same time stopped or not, and on small tables late improvements came after long flat stretches)."),
    ("seed", int, _TRAIN, "Random seed: same seed, same data -> identical weights (the file also records timings)."),
    ("warp", float, _TRAIN, "Each epoch, read every training specimen at a pace of its own, drawn log-uniformly from 1 / (1 + W) to 1 + W: its measured values at that pace along its own time stamps (interpolated), its conditions from the nearest row, as if more specimens had been measured that differ only in how fast they go (0 = off, the default). Validation, the band and the forecast read the specimens as measured; a latent model is not warped. Measured in session 36 at 0.3 (3 seeds, 96 new specimens): crack -14 %, but its end-of-life interval 0.81 -> 0.64; coating +9 %; ball (a projectile: no pace to vary) 4 x worse; over five splits of the measured sets laser +22 %, Alloy-A +13 %, Device-B and luminosity level. Try it only where specimens differ mainly in pace, and keep it only if evaluate -m A -m B on held-out specimens says so (docs/TRAINING.md)."),
    ("recut", float, _TRAIN, "Cut this share of the training batches (drawn per batch) into shorter steps before the rollout: every step after a specimen's warm-up becomes 1 to 4 equal pieces, the inserted rows holding the conditions of the row they follow and no measurement; the loss stays on the measured rows. The network then forecasts a plan less differently however finely it is cut. Measured at 0.5 (session 49): future steps cut into 4 pieces took Alloy-A's RMSE up 1.7-5.6 x without it, level on 2 of 3 seeds with it; on the measured schedules better on 10 of 13 runs (means of 3 seeds: Alloy-A -8 %, laser -18 %, Device-B +5 %, luminosity -2 %; coating -1 % on one), for about 2 x the training time; 0.25 gained less. 0 (the default) = off until the whole suite has measured it. See docs/TRAINING.md."),
    ("ema", float, _TRAIN, "Validate and keep a moving average of the weights with this decay per optimiser step (0 = off; 0.9-0.99 typical): measured no better on the ageing benchmark; see docs/TRAINING.md."),
    ("ensemble", int, _TRAIN, "Train N models (seeds --seed .. --seed + N - 1, each with its own validation specimens) into one file: the forecast mean averages them and each member's paths keep its own spread around that average. Steadier on small data. With the whole table in memory the members train together (about 2 x one model's time); with --nproc, --chunk-specimens, --latent, --ema or --amp one after the other (N x; with --latent, --ema or --amp split among the --jobs processes). 0 (the default) = auto: 5 when fewer than 15 specimens would choose the best epoch (tables of up to about 72 specimens), else 1 (on six benchmark sets with 4-10 validation specimens 5 members were better or level and their seeds agreed within 10 %; with 19 they were level); fine-tuning keeps the members of the --init-from model. See docs/TRAINING.md."),
    ("val_smoothing", float, _TRAIN, "Pick the best epoch by a moving average of the validation RMSE with this weight on the past (0 = off): measured no better on the benchmarks; see docs/TRAINING.md."),
    ("val_select", str, _TRAIN, "How an ensemble's members choose their best epoch: each on its own validation specimens (the default), or joint: one epoch for all members, where the mean of their validation RMSEs is lowest, so that the choice rests on every member's validation specimens at once instead of each member's few. Only for members trained together (not with --latent, --ema, --amp, --nproc or --chunk-specimens: there each chooses its own, as the summary says). Measured on every benchmark set it touches (3 seeds, the suite's split): RMSE 6-18 % lower on ball, crack, Alloy-A and laser, 1-4 % higher on battery and luminosity, crack's end-of-life interval worse; on four more test splits of the three small measured sets higher on 9 of 12 (Device-B +6 %, Alloy-A +1 %, laser -9 % over five splits); see docs/TRAINING.md."),
    ("refit_scale", bool, _TRAIN, "After training, fit the scale head (the band's width) again on the kept model's free-running errors on its training specimens, from the validation's warm-up; the mean does not move, and the validation's factor then widens the band where new specimens err more. Measured with the defaults (3 seeds, 96 fresh specimens of each synthetic set): 80 % band coverage 71-99.5 % -> 69-91 % (ball and ageing had been far too wide), pinball loss -25 %; on small measured sets narrower, some too narrow (59-86 %): check with durability calibrate on held-out specimens. --no-refit-scale keeps the band as trained. See docs/TRAINING.md.", "--refit-scale/--no-refit-scale"),
    ("combine", str, _TRAIN, "mixed_effects: forecast the average of the model's path and the mixed-effects path (each specimen's polynomial path moved from the training specimens' toward its warm-up, as evaluate's baseline of that name), weighted by their inverse squared validation RMSE (an ensemble's: its members' means), paths, quantiles and end of life moved with the mean; none (the default): the model alone. Measured over five test splits of the four measured sets (training seed 0): 0.955 x the model's RMSE, better on 16 of the 20 splits and on average on every set (Alloy-A -3.4 %, Device-B -5.4 %, laser -3.7 %, luminosity -7.5 %; the worst split +11 %); on three synthetic sets (split 0, seed 0) coating -0.6 %, battery +9 %, ball +14 %, where the path forecasts new specimens worse than the model and still gets a quarter to a half of the average. Compare with evaluate -m A -m B on held-out specimens. See docs/TRAINING.md."),
    ("refit_all", bool, _TRAIN, "Once validation chose each member's epoch, train every member again from its start on all the specimens, validation ones included, to that epoch; the band's validation factor, the end-of-life paces and the choices of line and latent stay what validation measured. Costs one more run of each member to its epoch (0.3-0.8 x the first pass; the members refit in --jobs processes at once). Measured in session 35 (benchmarks/refit_all.py, 3 seeds): RMSE -16 %, -11 %, -4 % on the laser, Alloy-A and Device-B test splits, but over five splits of each +7.9 %, -2.8 %, +2.6 %; coating -2.4 %, crack -1.1 % (its seeds +9 % to -17 %), luminosity +3 %. Off by default: keep it only where evaluate -m A -m B on held-out specimens says so (docs/TRAINING.md).", "--refit-all/--no-refit-all"),
    ("teacher_forcing", float, _SCHED, "Starting probability of feeding back the measured value instead of the prediction."),
    ("tf_schedule", str, _SCHED, "linear: max(min, p - c*i); exponential: p*k^i; inverse-sigmoid: k/(k+exp(i/k))."),
    ("tf_k", float, _SCHED, "k of the exponential / inverse-sigmoid schedules; 0 = their defaults, 0.9 / 10."),
    ("tf_c", float, _SCHED, "Slope c of the linear schedule."),
    ("tf_min", float, _SCHED, "Floor of the schedule."),
    ("tf_unit", str, _SCHED, "The schedule's i counts epochs or optimiser steps."),
    ("detach_feedback", bool, _SCHED, "Cut the gradient through fed-back predictions.", "--detach-feedback/--keep-feedback-gradient"),
    ("feedback", str, _SCHED, "Free-running training steps feed back the predicted mean or a sample."),
]  # fmt: skip


_METAVARS = {
    int: N,
    float: FLOAT,
    bool: FLAG,
    "transform": "COLUMN=NAME,...",
    "latent": "<auto|D>",
}  # by type, or name


def _with_config_options(command):
    """Add the CONFIG_OPTIONS to ``command``'s signature after its ``config`` parameter; the
    command receives them in ``**options``."""
    import inspect
    from dataclasses import fields

    from durability_cli.config import ModelConfig, TrainConfig

    signature = inspect.signature(command, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    at = [p.name for p in params].index("config") + 1
    defaults = {f.name: f.default for cls in (ModelConfig, TrainConfig) for f in fields(cls)}
    added = []
    for name, kind, panel, help_text, *flag in CONFIG_OPTIONS:
        default = defaults[name]
        if kind is bool and default != "auto":  # "--residual/--no-residual": the flag that is on
            default = flag[0].split("/")[0 if default else 1].lstrip("-")
        default = "none" if default == "" else default
        # the CLI default is None ("from --config, else the dataclass"): show the dataclass's
        shown = _opt(
            f"{help_text} \\[default: {default}]",
            panel,
            *flag,
            metavar=_METAVARS.get(name, _METAVARS.get(kind)),
        )
        annotation = Annotated[(Literal[CHOICES[name]] if name in CHOICES else kind) | None, shown]
        added.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        )
        command.__annotations__[name] = annotation
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    command.__signature__ = signature.replace(parameters=keyword[:at] + added + keyword[at:])
    return command


_RESUME = "Continue an interrupted run from its checkpoint (same data and options)."


_INIT_FROM = (
    "Start from a trained model's weights and scaling and fine-tune on DATA (model options must "
    "match it or be left out)."
)


_CHECKPOINT = "Checkpoint file written after every epoch (default: OUTPUT.ckpt; removed after success)."


_HISTORY = "Write the per-epoch log (loss, validation RMSE, teacher-forcing ratio) to this table."


_TRAIN_CHUNK = (
    "Train holding N specimens at a time, for tables bigger than memory: a Parquet file or "
    "folder is read N specimens at a time (a first pass checks it and fits the scaling), the "
    "groups come in a new order each epoch and batches are drawn group by group. CSV and stdin "
    "are read whole, only the tensors go by group. Take N as large as memory allows: with N "
    "at least the number of specimens the result is the whole-table run's."
)


_NPROC = "Train data-parallel in N processes on this machine (starts torchrun; see docs/SCALING.md)."
_JOBS = (
    "Processes that may train at once. With 2, --trend-line auto's two candidates train at the same "
    "time, the line's in a second process: 0.53-0.56 x the wall time on the measured benchmark tables; "
    "an ensemble whose members train one after the other (--latent, which --latent auto gives warm-ups "
    "of 50 rows or more, --ema, --amp), and --refit-all's refit, split the members among the processes "
    "(docs/TRAINING.md). The model "
    "is the same, bit for bit. 0 (the default): $DURABILITY_JOBS where set, else as many as the CPUs "
    "this process may use allow for --threads each; a run starts no more than it can use (2 for the "
    "line's candidates, one per member). Only for a table in memory, on the CPU, without --nproc."
)


# -- tune ------------------------------------------------------------------------------------------
_TUNE_JOBS = (
    "Processes that train a trial's folds at once (each fold is a training of its own). With 2 and 3 "
    "folds: the first fold alone (most trials the pruner stops end there), then the second here and the "
    "third in a second process; the pruner hears every epoch in the order one process reports them, the "
    "third fold's once the second is done, so the scores and decisions are the same, and a trial that "
    "runs to its end takes about 2/3 of the time (docs/TRAINING.md). 0 (the default): $DURABILITY_JOBS "
    "where set, else as many as the CPUs allow for --threads each. The held-back check and --model-out "
    "train with them too (train --jobs)."
)
_BUDGET = "Wall-clock time for the whole search, e.g. 90s, 10m, 1h (a running trial is cut at the end)."
_TRIALS = "At most this many trials in this run (default: as many as the budget allows)."
_FOLDS = "Specimen folds: each trial trains one model per fold and scores the held-out specimens."
_TUNE_EPOCHS = (
    "Maximum epochs per trial model (the learning-rate decay follows it). 0: 100 epochs, patience 30, "
    "and the config leaves the length to train's automatic rule; N: N epochs, written to the config "
    "with the trials' patience (30). Lower it for a short --budget: a trial trains --folds models."
)
_STORAGE = "SQLite file that keeps the trials; run again with it to continue the search."
_STUDY = "Study name in --storage (default: from the data, --folds, --seed and the trials' epochs, 100 for --epochs 0)."
_MODEL_OUT = "Also train a model on DATA with the best settings and write it here (.safetensors)."
