"""The `durability` command line: parse options, call one library function, render.

No model or table logic lives here. Data goes to stdout; progress, logs and tables go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from durability_cli import __version__
from durability_cli.config import CHOICES
from durability_cli.errors import DurabilityError
from durability_cli.render import render_empty_shard, render_forecast_note, render_warnings

app = typer.Typer(
    name="durability",
    help="Forecast how the durability of materials decays under changing conditions.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


# Tables on a pipe or in a log get a width that fits them, not the 80 columns rich assumes.
class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of stderr went away (`2>&1 | head`): rich would exit 1; stop quietly (_run)."""
        self.quiet = True
        raise BrokenPipeError


err = _Console(stderr=True, width=None if sys.stderr is not None and sys.stderr.isatty() else 120)


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
    "Sheet of an Excel (.xlsx) input to read (default: the first); needs pip install 'durability[excel]'."
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
    bool, typer.Option("--quiet", "-q", help="No progress, notes or tables on stderr.", metavar=FLAG)
]
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Model file written by durability train.", metavar=PATH)
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
    "add N steps to tables that have no future rows."
)
Horizon = Annotated[int | None, _opt(_HORIZON, metavar=N)]
_HOLD = "With --horizon: hold each specimen's last conditions and step length."
Hold = Annotated[bool, _opt(_HOLD, None, "--hold-conditions", metavar=FLAG)]
OutFmt = Annotated[
    str | None,
    _opt("Format of stdout (files: from the extension).", None, "--output-format", metavar=FORMATS),
]
_PATHS = "Write the raw Monte Carlo paths (id, time, sample, value)."
_WHAT_IF, _OUT = "What if", "Output"
_SET = (
    "Put these conditions on every future row (after each specimen's last measurement, and the "
    "--horizon --hold-conditions rows); one option, comma-separated: temperature=45,humidity=85."
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
_META = (
    "Write a JSON record of the run (model file and hash, seed, samples, quantiles, threshold, scenarios)."
)
_STRICT = "Refuse to extrapolate beyond the conditions and step lengths seen in training."
_BASELINES = "Also score persistence, linear trend and exponential fit."
_POINTS = "Write every forecast point (truth, prediction, quantiles, model)."
_ERRORS = "Draw the error by forecast horizon, model vs baselines, with specimens per step (PNG or SVG)."
_METRICS_JSON = "Write the metrics JSON on stdout (the default when stdout is not a terminal, or with -q)."
_TIME_UNIT = "Unit of the time column for the axis labels, e.g. cycles or hours (default: days for dates)."
TimeUnit = Annotated[str | None, _opt(_TIME_UNIT, None, "--time-unit", metavar=NAME)]


def _run(debug: bool, fn):
    """Call ``fn`` and turn the project's errors into one line on stderr and an exit code."""
    try:
        return fn()
    except DurabilityError as exc:
        if debug:
            raise
        if not _main_process():  # torchrun: every rank hits the same error; rank 0 says it
            import time

            time.sleep(1.0)  # torchrun stops the job at the first exit: let rank 0 print first
            raise typer.Exit(exc.exit_code) from None
        _error_line(exc.cli_message())
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None
    except OSError as exc:  # disk full, stdout closed, ...: not the user's input, still one line
        if debug:
            raise
        _error_line(f"{exc.strerror or exc} ({type(exc).__name__}); rerun with --debug for details")
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: say so in one line; --debug shows the traceback
        if debug:
            raise
        _error_line(f"unexpected {type(exc).__name__}: {exc}; rerun with --debug and report it")
        raise typer.Exit(1) from None


def _error_line(message: str) -> None:
    """One line on stderr, whatever the message holds ([brackets] or line breaks from the data)."""
    from durability_cli.errors import one_line

    message = one_line(message)
    try:
        err.print("[bold red]Error:[/] ", end="", highlight=False)
        err.print(message, markup=False, highlight=False, soft_wrap=True)
    except (OSError, ValueError, AttributeError):  # stderr closed or full: the exit code still tells
        pass


def _main_process() -> bool:
    from durability_cli.parallel import main_process

    return main_process()


def _quiet_broken_pipe() -> None:
    """The reader of stdout went away (`| head`): stop quietly, as Unix tools do."""
    import contextlib
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    with contextlib.suppress(OSError, ValueError, AttributeError):  # the reader of stderr may be gone too
        os.dup2(devnull, sys.stderr.fileno())
    raise typer.Exit(0)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"durability {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit.", metavar=FLAG
        ),
    ] = False,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            metavar="SIZE",
            help="Memory budget, e.g. 4G: work estimated above it is refused up front with the fix. "
            "Default: half the machine's memory (or $DURABILITY_MAX_MEMORY).",
        ),
    ] = None,
) -> None:
    """Forecast how the durability of materials decays under changing conditions."""
    from durability_cli import limits

    _run(False, lambda: limits.set_budget(max_memory))


@app.command()
def schema(
    data: DataArg,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: TargetCol = None,
    covariates: Covariates = None,
    static: Static = None,
    fmt: Fmt = None,
    sheet: Sheet = None,
    as_json: Annotated[
        bool,
        _opt(
            "Write the description as JSON on stdout instead of a table on stderr.",
            None,
            "--json",
            metavar=FLAG,
        ),
    ] = False,
    debug: Debug = False,
) -> None:
    """Describe a table: detected column roles, specimens, lengths, spacing, missing values, ranges.

    Example:  durability schema sample_data/coating.csv
              cat sample_data/coating.csv | durability schema - --json | jq .n_specimens
    """

    def go():
        from durability_cli import api
        from durability_cli.render import render_schema
        from durability_cli.schema import describe

        info = describe(
            api.read(
                data,
                columns=api.Columns.of(
                    id_col, time_col, target, covariates, static, _input_format(fmt, sheet)
                ),
            )
        )
        if as_json:
            _write_json(info)
        else:
            render_schema(err, info)

    _run(debug, go)


def _input_format(fmt: str | None, sheet: str | None) -> str | None:
    """--format and --sheet as one input format (``xlsx:SHEET`` for a named sheet)."""
    from durability_cli.io import sheet_format

    return sheet_format(fmt, sheet)


def _write_json(info: dict, path: str | None = None) -> None:
    """``info`` as indented JSON to ``path`` (atomically), or to stdout."""
    text = json.dumps(info, indent=2) + "\n"
    if path:
        from durability_cli.io import atomic_path

        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


# -- train -----------------------------------------------------------------------------------------
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
    ("monotonic", str, _MODEL, "Make each step change one-signed by construction (or none)."),
    ("latent", int, _MODEL, "Size D of a per-specimen latent vector z (0 = off): the model infers each specimen's hidden factors (batch, initial flaw) from its warm-up; see docs/TRAINING.md."),
    ("latent_prior", float, _MODEL, "Weight of the N(0, I) prior on z: larger trusts a short warm-up less."),
    ("transform", str, _MODEL, "Physics-aware inputs, COLUMN=NAME pairs: arrhenius (1000/K from °C), arrhenius-kelvin, log (Peck humidity, stress laws), log1p, reciprocal, sqrt; e.g. temperature=arrhenius,humidity=log. Stored in the model and applied at forecast time."),
    ("epochs", int, _TRAIN, "Maximum epochs (early stopping usually ends sooner)."),
    ("batch_size", int, _TRAIN, "Specimens per optimiser step."),
    ("lr", float, _TRAIN, "Adam learning rate."),
    ("weight_decay", float, _TRAIN, "Adam weight decay."),
    ("clip", float, _TRAIN, "Gradient-norm clipping."),
    ("window", int, _TRAIN, "Train on random windows of this many steps (truncated BPTT); 0 = whole series."),
    ("val_fraction", float, _TRAIN, "Share of specimens held out for validation and early stopping."),
    ("val_context", int, _TRAIN, "Warm-up rows before the free-running validation forecast; 0 = 20% of the median length."),
    ("patience", int, _TRAIN, "Stop after this many epochs without a better validation RMSE."),
    ("seed", int, _TRAIN, "Random seed: same seed, same data -> identical weights (the file also records timings)."),
    ("ema", float, _TRAIN, "Validate and keep a moving average of the weights with this decay per optimiser step (0 = off; 0.9-0.99 typical): steadier on small, noisy data; see docs/TRAINING.md."),
    ("teacher_forcing", float, _SCHED, "Starting probability of feeding back the measured value instead of the prediction."),
    ("tf_schedule", str, _SCHED, "linear: max(min, p - c*i); exponential: p*k^i; inverse-sigmoid: k/(k+exp(i/k))."),
    ("tf_k", float, _SCHED, "k of the exponential / inverse-sigmoid schedules."),
    ("tf_c", float, _SCHED, "Slope c of the linear schedule."),
    ("tf_min", float, _SCHED, "Floor of the schedule."),
    ("tf_unit", str, _SCHED, "The schedule's i counts epochs or optimiser steps."),
    ("detach_feedback", bool, _SCHED, "Cut the gradient through fed-back predictions.", "--detach-feedback/--keep-feedback-gradient"),
    ("feedback", str, _SCHED, "Free-running training steps feed back the predicted mean or a sample."),
]  # fmt: skip


_METAVARS = {int: N, float: FLOAT, bool: FLAG, "transform": "COLUMN=NAME,..."}  # by type, or name


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
        if kind is bool:  # "--residual/--no-residual": the default is the flag that is on
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


@app.command()
@_with_config_options
def train(
    data: DataArg,
    output: Annotated[str, _opt("Model file to write (.safetensors).", None, "--output", "-o", metavar=PATH)],
    config: Annotated[
        str | None, _opt("TOML file with any of the options below; flags override it.", metavar=PATH)
    ] = None,
    resume: Annotated[str | None, _opt(_RESUME, _TRAIN, metavar=PATH)] = None,
    init_from: Annotated[str | None, _opt(_INIT_FROM, _TRAIN, metavar=PATH)] = None,
    checkpoint: Annotated[str | None, _opt(_CHECKPOINT, _TRAIN, metavar=PATH)] = None,
    history: Annotated[str | None, _opt(_HISTORY, metavar=PATH)] = None,
    quiet: Annotated[bool, _opt("No progress bar or summary.", None, "--quiet", "-q", metavar=FLAG)] = False,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: TargetCol = None,
    covariates: Covariates = None,
    static: Static = None,
    fmt: Fmt = None,
    sheet: Sheet = None,
    device: Device = "auto",
    amp: Annotated[bool | None, _opt(f"{AMP_HELP} \\[default: off]", _ADV, "--amp", metavar=FLAG)] = None,
    threads: Threads = 1,
    chunk_specimens: Annotated[int | None, _opt(_TRAIN_CHUNK, _ADV, "--chunk-specimens", metavar=N)] = None,
    nproc: Annotated[int, _opt(_NPROC, _ADV, "--nproc", metavar=N)] = 1,
    debug: Debug = False,
    ctx: typer.Context = None,
    **options,
) -> None:
    """Train the recurrent feedback model on a table of specimens.

    Example:  durability train sample_data/coating.csv -o coating.safetensors
              durability train sample_data/ball.csv --target height --lags 3 -o ball.safetensors
              durability train big.parquet -o big.safetensors --nproc 4
    """
    # the model and training options given on the command line (None = not given)
    given = {name: options[name] for name, *_ in CONFIG_OPTIONS}
    given.update(chunk_specimens=chunk_specimens, amp=amp)
    names = dict(id_col=id_col, time_col=time_col, target=target, covariates=covariates, static=static)

    def go():
        import os

        from durability_cli import api, parallel
        from durability_cli.errors import InputError
        from durability_cli.io import check_outputs

        options, columns = api.train_options(config, given, names, _input_format(fmt, sheet))
        source = config or "options"
        api.configs(options, source=source)  # bad values are reported before any file is touched
        ckpt = checkpoint or f"{output}.ckpt"
        # resuming rewrites the checkpoint it started from: that one output may equal an input
        same = resume is not None and os.path.realpath(resume) == os.path.realpath(ckpt)
        check_outputs(
            [output, None if same else ckpt, history],
            [data if data != "-" else None, resume, init_from],
            tables=(history,),
        )
        dist = parallel.from_env()
        parallel.check_launch(nproc, from_stdin=data == "-", dist=dist)
        if chunk_specimens is not None and chunk_specimens < 1:  # 0 = off only in a config file
            raise InputError(f"--chunk-specimens must be at least 1, got {chunk_specimens}")
        run = api.TrainRun(data, columns, options, init_from=init_from, source=source)
        if nproc > 1:  # the table was read once here only to report a bad input in one line
            run.check_every_group()  # every group, checked here: the workers find no bad row
            if resume:
                api.check_checkpoint(resume)
            del run
            raise typer.Exit(
                parallel.launch(parallel.launch_command(nproc, parallel.command_line(ctx, {"nproc"})))
            )
        _fit(run, dist, output, ckpt, resume, history, quiet=quiet, device=device, threads=threads)

    _run(debug, go)


def _fit(run, dist, output: str, checkpoint: str, resume, history, *, quiet: bool, device: str, threads: int):
    """Train in this process (or as this rank of a torchrun job), with progress on stderr; save."""
    from durability_cli import api
    from durability_cli.render import TrainReport, render_train_summary

    api.set_threads(threads)
    main_rank = dist is None or dist.main  # only rank 0 reports
    with TrainReport(err, run, quiet=quiet or not main_rank) as report:
        paths = dict(checkpoint=checkpoint, resume=resume, history=history)
        model = run.fit_files(
            output, **paths, device=device, dist=dist, on_epoch=report.epoch, on_start=report.start
        )
    if not quiet and main_rank:
        render_train_summary(err, model.bundle, output)


# -- forecast --------------------------------------------------------------------------------------


@app.command()
def forecast(
    data: DataArg,
    model: ModelOpt,
    output: Annotated[
        str, _opt("Forecast table to write; - is stdout.", None, "--output", "-o", metavar=PATH)
    ] = "-",
    horizon: Horizon = None,
    future: Annotated[
        str | None, _opt("Table of future rows (id, time, conditions) to append to DATA.", metavar=PATH)
    ] = None,
    hold_conditions: Hold = False,
    samples: Samples = 200,
    quantiles: Quantiles = "0.1,0.5,0.9",
    threshold: Threshold = None,
    direction: Direction = "below",
    eol_out: Annotated[
        str | None, _opt("Write the end-of-life table (needs --threshold).", None, "--eol-out", metavar=PATH)
    ] = None,
    paths_out: Annotated[str | None, _opt(_PATHS, None, "--paths-out", metavar=PATH)] = None,
    plot: Annotated[
        str | None, _opt("Also draw the forecasts to this PNG or SVG.", None, "--plot", metavar=PATH)
    ] = None,
    strict: Annotated[bool, _opt(_STRICT, None, "--strict", metavar=FLAG)] = False,
    seed: SeedOpt = 0,
    set_conditions: Annotated[str | None, _opt(_SET, _WHAT_IF, "--set", metavar="NAME=VALUE,...")] = None,
    scenarios: Annotated[str | None, _opt(_SCENARIOS, _WHAT_IF, "--scenarios", metavar=PATH)] = None,
    bounds: Annotated[str | None, _opt(_BOUNDS, _OUT, "--bounds", metavar="LO,HI")] = None,
    precision: Annotated[int | None, _opt(_PRECISION, _OUT, "--precision", metavar=N)] = None,
    meta_out: Annotated[str | None, _opt(_META, _OUT, "--meta-out", metavar=PATH)] = None,
    output_format: OutFmt = None,
    fmt: Fmt = None,
    sheet: Sheet = None,
    quiet: Quiet = False,
    device: Device = "auto",
    amp: Amp = False,
    shard: ShardOpt = None,
    chunk_specimens: ChunkOpt = None,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Forecast each specimen from its measured history over its future rows.

    Example:  durability forecast plan.csv --model coating.safetensors --threshold 0.6 --eol-out eol.csv
              cat plan.csv | durability forecast - -m coating.safetensors | durability schema - --target durability_mean
              durability forecast plan.csv -m coating.safetensors --scenarios scenarios.csv --threshold 0.6 --eol-out eol.csv
    """

    def go():
        from durability_cli import api
        from durability_cli.errors import InputError
        from durability_cli.io import check_outputs
        from durability_cli.outputs import check_one_stdout, check_precision
        from durability_cli.parallel import parse_shard
        from durability_cli.scenarios import parse_set

        api.set_threads(threads)
        cfg = api.forecast_config(samples, quantiles, threshold, direction, seed, strict, device, amp, bounds)
        check_precision(precision)
        spec = parse_shard(shard) if shard else None
        if eol_out and threshold is None:
            raise InputError("--eol-out needs --threshold")
        if hold_conditions and not horizon:
            raise InputError("--hold-conditions needs --horizon N")
        check_one_stdout(
            {"-o/--output": output, "--eol-out": eol_out, "--paths-out": paths_out, "--meta-out": meta_out}
        )
        check_outputs(
            [output, eol_out, paths_out, plot, meta_out],
            [data if data != "-" else None, model, future, scenarios],
            tables=(output, eol_out, paths_out),
            pictures=(plot,),
            fmt=output_format,
        )
        if chunk_specimens is not None and plot:
            raise InputError(
                "--plot draws from the whole table; drop --chunk-specimens, or draw a few specimens with "
                "durability plot forecast (--chunk-specimens works a group of specimens at a time)"
            )
        if scenarios == "-" and data == "-":
            raise InputError("--scenarios - and DATA - both read stdin; give one of them as a file")
        if scenarios and plot:
            raise InputError(
                "--plot draws one forecast per specimen; drop --scenarios, or use --set for one scenario"
            )
        trained = api.load(model)
        outputs = api.Outputs(
            table=output, eol=eol_out, paths=paths_out, fmt=output_format, meta=meta_out, precision=precision
        )
        options = {"horizon": horizon, "hold_conditions": hold_conditions, "future": future}
        options |= {"conditions": parse_set(set_conditions), "scenarios": scenarios}
        run = api.forecast_files(
            trained,
            data,
            cfg,
            outputs,
            size=chunk_specimens,
            fmt=_input_format(fmt, sheet),
            shard=spec,
            **options,
        )
        if run.result is None:
            return None if quiet else render_empty_shard(err, spec, run.total, data)
        if not quiet:
            render_warnings(err, run.result.warnings)
            render_forecast_note(err, run.result.info, spec, len(run.result.scenarios))
        if plot:
            from durability_cli.plotting import save_figure

            save_figure(trained.plot_result(run.dataset, run.result, threshold=threshold), plot)

    _run(debug, go)


# -- evaluate --------------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True})
def evaluate(
    data: DataArg,
    model: ModelOpt,
    context: Annotated[int | None, _opt("Rows observed per specimen before the forecast.", metavar=N)] = None,
    context_frac: Annotated[
        float | None, _opt("Share of each specimen's rows observed before the forecast.", metavar=FLOAT)
    ] = None,
    origins: Annotated[
        int | None, _opt("K rolling cut-offs per specimen (needed for the prognostics metrics).", metavar="K")
    ] = None,
    horizon: Annotated[int | None, _opt("Score at most N steps after each cut-off.", metavar=N)] = None,
    samples: Samples = 200,
    threshold: Threshold = None,
    direction: Direction = "below",
    baselines: Annotated[bool, _opt(_BASELINES, None, "--baselines/--no-baselines", metavar=FLAG)] = True,
    as_json: Annotated[bool, _opt(_METRICS_JSON, None, "--json", metavar=FLAG)] = False,
    output: Annotated[
        str | None, _opt("Write the metrics JSON to this file.", None, "--output", "-o", metavar=PATH)
    ] = None,
    per_series: Annotated[
        str | None,
        _opt("Write one row of scores per specimen and model.", None, "--per-series", metavar=PATH),
    ] = None,
    backtest_out: Annotated[str | None, _opt(_POINTS, None, "--backtest-out", metavar=PATH)] = None,
    plot: Annotated[str | None, _opt(_ERRORS, None, "--plot", metavar=PATH)] = None,
    time_unit: TimeUnit = None,
    seed: SeedOpt = 0,
    fmt: Fmt = None,
    sheet: Sheet = None,
    quiet: Quiet = False,
    device: Device = "auto",
    amp: Amp = False,
    shard: ShardOpt = None,
    chunk_specimens: ChunkOpt = None,
    threads: Threads = 1,
    debug: Debug = False,
    ctx: typer.Context = None,
) -> None:
    """Backtest: hide the truth after a cut-off, forecast, and score against the baselines.

    Scores: a table on stderr; the JSON to -o FILE, or stdout with --json, -q or off a terminal.

    Example:  durability evaluate sample_data/coating.csv -m coating.safetensors --context 30 --threshold 0.6
              durability evaluate test.csv -m m.safetensors --origins 4 -o metrics.json --plot errors.png
    """

    def go():
        from durability_cli import api
        from durability_cli.evaluation import BacktestConfig

        _no_extra_args(ctx.args, as_json)
        from durability_cli.io import check_outputs
        from durability_cli.parallel import parse_shard

        api.set_threads(threads)
        cfg = api.forecast_config(
            samples, api.DEFAULT_QUANTILES, threshold, direction, seed, device=device, amp=amp
        )
        spec = parse_shard(shard) if shard else None
        check_outputs(
            [output, per_series, backtest_out, plot],
            [data if data != "-" else None, model],
            tables=(per_series, backtest_out),
            pictures=(plot,),
        )
        trained = api.load(model)
        backtest = BacktestConfig(context, context_frac, origins, horizon, baselines)
        outputs = api.Outputs(per_series=per_series, backtest=backtest_out)
        run = api.evaluate_files(
            trained,
            data,
            cfg,
            backtest,
            outputs,
            size=chunk_specimens,
            fmt=_input_format(fmt, sheet),
            shard=spec,
        )
        if run.result is None:
            return None if quiet else render_empty_shard(err, spec, run.total, data)
        if output and output != "-":
            _write_json(run.result.to_dict(), output)
        # stdout gets the JSON when asked, or when no file takes it and no table is on a terminal
        if as_json or output == "-" or (not output and (quiet or not sys.stdout.isatty())):
            _write_json(run.result.to_dict())
        if plot:
            from durability_cli.plotting import save_figure

            save_figure(trained.plot_errors(run.result, time_unit=time_unit), plot)
        if not quiet:
            from durability_cli.render import render_evaluation

            render_evaluation(err, run.result.report)

    _run(debug, go)


def _no_extra_args(args: list[str], as_json: bool) -> None:
    """Refuse arguments left over by the parser; ``--json FILE`` (evaluate's old way to write the
    metrics file, now a switch) is told about -o."""
    from durability_cli.errors import InputError

    if args and as_json:
        name = next((a for a in args if a.endswith(".json")), args[0])
        raise InputError(
            f"--json is a switch now (the metrics on stdout); write them to a file with -o {name}"
        )
    if args:
        raise InputError(f"unexpected extra argument ({' '.join(args)}); see durability evaluate --help")


# -- inspect and plot ------------------------------------------------------------------------------
@app.command()
def inspect(
    model: ModelArg,
    as_json: Annotated[
        bool, _opt("Write everything as JSON on stdout.", None, "--json", metavar=FLAG)
    ] = False,
    debug: Debug = False,
) -> None:
    """Show a model file's schema, hyper-parameters, scaling and training summary.

    Example:  durability inspect coating.safetensors --json | jq .summary.best_val_rmse
    """

    def go():
        from durability_cli import api
        from durability_cli.render import render_model

        info = api.describe_file(model)
        if as_json:
            _write_json(info)
        else:
            render_model(err, info, model)

    _run(debug, go)


plot_app = typer.Typer(
    help="Draw forecasts, backtest errors, calibration, end of life and training histories (PNG or SVG).",
    no_args_is_help=True,
)
app.add_typer(plot_app, name="plot")


@plot_app.command("forecast")
def plot_forecast_cmd(
    data: DataArg,
    model: ModelOpt,
    output: Picture,
    truth: Annotated[
        str | None, _opt("Table with the true values of the forecast rows, drawn as markers.", metavar=PATH)
    ] = None,
    specimens: Annotated[
        str | None, _opt("Comma-separated specimen ids to draw (default: the first --max).", metavar=LIST)
    ] = None,
    max_specimens: Annotated[int, _opt("Draw at most this many specimens.", None, "--max", metavar=N)] = 12,
    horizon: Horizon = None,
    future: Annotated[
        str | None, _opt("Table of future rows (id, time, conditions) to append to DATA.", metavar=PATH)
    ] = None,
    hold_conditions: Hold = False,
    samples: Samples = 200,
    quantiles: Annotated[
        str,
        _opt(
            "Comma-separated quantiles; the outer two pairs are drawn as bands, 0.5 as the line.",
            metavar=LIST,
        ),
    ] = "0.1,0.25,0.5,0.75,0.9",
    threshold: Threshold = None,
    direction: Direction = "below",
    time_unit: TimeUnit = None,
    seed: SeedOpt = 0,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Forecast and draw history, median, interval band, threshold and end of life per specimen.

    Example:  durability plot forecast plan.csv -m coating.safetensors --threshold 0.6 -o forecast.png
              durability plot forecast history.csv -m coating.safetensors --future plan.csv --time-unit days -o f.png
    """

    def go():
        from durability_cli import api
        from durability_cli.io import check_outputs
        from durability_cli.plotting import save_figure

        api.set_threads(threads)
        check_outputs([output], [data if data != "-" else None, model, truth, future], pictures=(output,))
        how = dict(
            horizon=horizon, hold_conditions=hold_conditions, samples=samples, direction=direction, seed=seed
        )
        figure = api.load(model).plot_forecast(
            data,
            truth=truth,
            specimens=specimens,
            max_specimens=max_specimens,
            threshold=threshold,
            future=future,
            quantiles=quantiles,
            time_unit=time_unit,
            **how,
        )
        save_figure(figure, output)

    _run(debug, go)


@plot_app.command("history")
def plot_history_cmd(model: ModelArg, output: Picture, debug: Debug = False) -> None:
    """Draw a model's training history: loss, free-running validation RMSE, teacher forcing.

    Example:  durability plot history coating.safetensors -o history.png
    """

    def go():
        from durability_cli import api
        from durability_cli.io import check_outputs
        from durability_cli.plotting import save_figure

        check_outputs([output], [model], pictures=(output,))
        save_figure(api.load(model).plot_history(), output)

    _run(debug, go)


# The backtest options of the plot commands (evaluate spells out its own).
_CUT = "Backtest cut-off (exactly one of these)"
PlotContext = Annotated[
    int | None, _opt("Rows observed per specimen before the forecast.", _CUT, "--context", metavar=N)
]
_FRAC = "Share of each specimen's rows observed before the forecast."
PlotContextFrac = Annotated[float | None, _opt(_FRAC, _CUT, "--context-frac", metavar=FLOAT)]
PlotOrigins = Annotated[int | None, _opt("K rolling cut-offs per specimen.", _CUT, "--origins", metavar="K")]
_PLOT_HORIZON = "Score at most N steps after each cut-off."
PlotHorizon = Annotated[int | None, _opt(_PLOT_HORIZON, None, "--horizon", metavar=N)]


def _backtest_figure(output: str, data: str, model: str, threads: int, draw) -> None:
    """Check the output, load the model, ``draw(model)`` a Figure and write it."""
    from durability_cli import api
    from durability_cli.io import check_outputs
    from durability_cli.plotting import save_figure

    api.set_threads(threads)
    check_outputs([output], [data if data != "-" else None, model], pictures=(output,))
    save_figure(draw(api.load(model)), output)


def _backtest_plot(name: str, doc: str, draw) -> None:
    """Add ``plot NAME``: the figure ``draw(model, DATA, backtest options, time_unit)`` of a
    backtest with the cut-off options, written to --output."""

    def command(
        data: DataArg,
        model: ModelOpt,
        output: Picture,
        context: PlotContext = None,
        context_frac: PlotContextFrac = None,
        origins: PlotOrigins = None,
        horizon: PlotHorizon = None,
        samples: Samples = 200,
        time_unit: TimeUnit = None,
        seed: SeedOpt = 0,
        threads: Threads = 1,
        debug: Debug = False,
    ) -> None:
        def figure(trained):
            cut = dict(context=context, context_frac=context_frac, origins=origins, horizon=horizon)
            return draw(trained, data, dict(cut, samples=samples, seed=seed), time_unit)

        _run(debug, lambda: _backtest_figure(output, data, model, threads, figure))

    command.__doc__ = doc
    plot_app.command(name)(command)


def _calibration(trained, data, backtest: dict, time_unit):
    from durability_cli.api import CALIBRATION_LEVELS

    evaluation = trained.evaluate(data, **backtest, baselines=False, quantiles=CALIBRATION_LEVELS)
    return trained.plot_calibration(evaluation, time_unit=time_unit)


def _errors(trained, data, backtest: dict, time_unit):
    return trained.plot_errors(trained.evaluate(data, **backtest), time_unit=time_unit)


_backtest_plot(
    "calibration",
    """Backtest and draw whether the intervals hold: observed vs nominal quantiles, coverage by horizon.

    The left panel checks the quantile levels 0.05 to 0.95 against the hidden truth; the right
    one the p10-p90 coverage by time after the cut-off, with the specimens scored per time bin.

    Example:  durability plot calibration test.csv -m coating.safetensors --context 40 --time-unit days -o calib.png
    """,
    _calibration,
)
_backtest_plot(
    "errors",
    """Backtest and draw the RMSE by time after the cut-off, model vs baselines, with specimens per bin.

    Time bins scored on fewer than 3 specimens are left out of the lines (their bars are grey).

    Example:  durability plot errors test.csv -m coating.safetensors --context 40 --time-unit days -o errors.png
    """,
    _errors,
)


@plot_app.command("eol")
def plot_eol_cmd(
    data: DataArg,
    model: ModelOpt,
    output: Picture,
    threshold: Annotated[
        float, _opt("End-of-life threshold in durability units.", None, "--threshold", metavar=FLOAT)
    ],
    context: PlotContext = None,
    context_frac: PlotContextFrac = None,
    horizon: PlotHorizon = None,
    samples: Samples = 200,
    direction: Direction = "below",
    time_unit: TimeUnit = None,
    seed: SeedOpt = 0,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Backtest and draw predicted (median, p10-p90) against true end of life per specimen.

    Each specimen's truth is hidden after the cut-off; specimens whose data end before the
    threshold are drawn open at their last measurement, with an arrow (the truth is later).

    Example:  durability plot eol test.csv -m coating.safetensors --threshold 0.6 --context 40 -o eol.png
    """

    def draw(trained):
        cut = dict(context=context, context_frac=context_frac, horizon=horizon)
        how = dict(samples=samples, direction=direction, seed=seed)
        table = trained.end_of_life_backtest(data, threshold=threshold, **cut, **how)
        return trained.plot_end_of_life(table, threshold=threshold, time_unit=time_unit)

    _run(debug, lambda: _backtest_figure(output, data, model, threads, draw))


def main() -> None:
    """The console entry point. Usage errors that the option parser finds (an unknown option, a
    missing argument, a value of the wrong type) are one line and exit code 2, like every other
    bad input, instead of the parser's framed box."""
    try:
        code = app(standalone_mode=False, prog_name="durability")
    except Exception as exc:  # the parser's exceptions, told apart by what they carry
        name = type(exc).__name__
        if name == "NoArgsIsHelpError":  # `durability` or `durability plot` alone
            text = exc.format_message()  # Typer has printed the help; plain click hands it over
            if text:
                print(text)
            sys.exit(exc.exit_code)
        if name == "Abort":  # end of input at a prompt
            err.print("Aborted.", highlight=False)
            sys.exit(1)
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "durability"
        message = " ".join(exc.format_message().replace("Value error, ", "").split()).rstrip(".")
        sep = " " if message.endswith("?") else "; "  # "... Did you mean 'forecast'? see ..."
        err.print(f"Error: {message}{sep}see {command} --help", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
