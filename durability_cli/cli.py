"""The `durability` command line: parse options, call one library function, render.

No model or table logic lives here. Data goes to stdout; progress, logs and tables go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from durability_cli import __version__
from durability_cli.errors import DurabilityError

app = typer.Typer(
    name="durability",
    help="Forecast how the durability of materials decays under changing conditions.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Tables on a pipe or in a log get a width that fits them, not the 80 columns rich assumes.
class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of stderr went away (`2>&1 | head`): rich would exit 1; stop quietly (_run)."""
        self.quiet = True
        raise BrokenPipeError


err = _Console(stderr=True, width=None if sys.stderr is not None and sys.stderr.isatty() else 120)

# Shared options, defined once and reused by every command that reads a table.
DataArg = Annotated[
    str,
    typer.Argument(help="Input table: .csv, .csv.gz, .parquet, a folder of Parquet files, or - for stdin."),
]
IdCol = Annotated[
    str | None,
    typer.Option(
        "--id-col",
        help="Specimen id column (default: auto-detect specimen_id, specimen, series_id, unit, id).",
        rich_help_panel="Columns",
    ),
]
TimeCol = Annotated[
    str | None,
    typer.Option(
        "--time-col",
        help="Time column (default: auto-detect time, cycle, step, day, t, or a datetime column).",
        rich_help_panel="Columns",
    ),
]
TargetCol = Annotated[
    str | None,
    typer.Option(
        "--target", help="Measured durability column (default: durability).", rich_help_panel="Columns"
    ),
]
Covariates = Annotated[
    str | None,
    typer.Option(
        "--covariates",
        help="Comma-separated condition columns (default: every other numeric column).",
        rich_help_panel="Columns",
    ),
]
Static = Annotated[
    str | None,
    typer.Option(
        "--static",
        help="Comma-separated per-specimen constant columns (material, batch, ...).",
        rich_help_panel="Columns",
    ),
]
Fmt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Input format when it cannot be told from the name: csv, parquet or jsonl.",
        rich_help_panel="Columns",
    ),
]
Debug = Annotated[
    bool, typer.Option("--debug", help="Show the full traceback on errors.", rich_help_panel="Advanced")
]
# One thread by default: the recurrent steps are small and sequential, and with two threads on a
# busy 2-core machine one LSTM step of 48 specimens took 5-40 ms instead of 0.14 ms.
Threads = Annotated[
    int,
    typer.Option(
        "--threads",
        help="CPU threads for torch. 1 (default) is fastest for the small sequential steps; more can help very large batches.",
        rich_help_panel="Advanced",
    ),
]
Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the network runs: auto (a GPU when torch sees one), cpu or cuda[:N].",
        rich_help_panel="Advanced",
    ),
]

AMP_HELP = (
    "Mixed precision: run the network in bfloat16 (torch.autocast); the fed-back durability and "
    "the sums stay float32. For GPUs with bfloat16 (A100, H100 and later); on a CPU it is usually "
    "slower. On the coating sample forecasts moved by at most 0.0016 (its measurement noise is 0.01)."
)
Amp = Annotated[bool, typer.Option("--amp", help=AMP_HELP, rich_help_panel="Advanced")]

ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="Only shard I of N (0-based, e.g. 3/8): specimens split by a stable hash of their id, "
        "for job arrays; the shards' outputs concatenate to the whole.",
        rich_help_panel="Advanced",
    ),
]
ChunkOpt = Annotated[
    int | None,
    typer.Option(
        "--chunk-specimens",
        help="Work through N specimens at a time and write the outputs as they go, so that memory "
        "follows N, not the table. A Parquet file or folder is then read N specimens at a time "
        "(a first pass reads the id column; tables not sorted by specimen take a pass per group); "
        "CSV and stdin are still read whole. The numbers are the whole-table run's bit for bit "
        "(with --threads 1). forecast: not with --plot; a --future table is read whole.",
        rich_help_panel="Advanced",
    ),
]


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


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
        _error_line(str(exc))
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
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
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
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Write the description as JSON on stdout instead of a table on stderr."),
    ] = False,
    debug: Debug = False,
) -> None:
    """Describe a table: detected column roles, specimens, lengths, spacing, missing values, ranges.

    Example:  durability schema sample_data/coating.csv
              cat sample_data/coating.csv | durability schema - --json | jq .n_specimens
    """
    from durability_cli.schema import describe, load_dataset

    def go():
        ds = load_dataset(
            data,
            fmt=fmt,
            id_col=id_col,
            time_col=time_col,
            target=target,
            covariates=_split(covariates),
            static=_split(static),
        )
        info = describe(ds)
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2) + "\n")
            sys.stdout.flush()
        else:
            from durability_cli.render import render_schema

            render_schema(err, info)

    _run(debug, go)


# -- train -----------------------------------------------------------------------------------------
_MODEL = "Model"
_TRAIN = "Training"
_SCHED = "Teacher forcing"


@app.command()
def train(
    data: DataArg,
    output: Annotated[str, typer.Option("--output", "-o", help="Model file to write (.safetensors).")],
    config: Annotated[
        str | None,
        typer.Option("--config", help="TOML file with any of the options below; flags override it."),
    ] = None,
    cell: Annotated[
        str | None, typer.Option(help="Recurrent cell: lstm or gru.", rich_help_panel=_MODEL)
    ] = None,
    hidden: Annotated[int | None, typer.Option(help="Units per layer.", rich_help_panel=_MODEL)] = None,
    layers: Annotated[
        int | None, typer.Option(help="Stacked recurrent layers.", rich_help_panel=_MODEL)
    ] = None,
    dropout: Annotated[
        float | None, typer.Option(help="Dropout between stacked layers.", rich_help_panel=_MODEL)
    ] = None,
    lags: Annotated[
        int | None,
        typer.Option(
            help="How many past durability values are fed back (1 = plain feedback; 3 = h1, h2, h3 -> h4).",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option(
            help="gaussian (mean and scale, gives intervals), mse or huber.", rich_help_panel=_MODEL
        ),
    ] = None,
    residual: Annotated[
        bool | None,
        typer.Option(
            "--residual/--no-residual",
            help="Predict the step change instead of the level.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    monotonic: Annotated[
        str | None,
        typer.Option(
            help="none, decreasing or increasing: make each step change one-signed by construction.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    latent: Annotated[
        int | None,
        typer.Option(
            help="Size D of a per-specimen latent vector z (0 = off): the model infers each specimen's "
            "hidden factors (batch, initial flaw) from its warm-up; see docs/TRAINING.md.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    latent_prior: Annotated[
        float | None,
        typer.Option(
            help="Weight of the N(0, I) prior on z: larger trusts a short warm-up less.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(help="Maximum epochs (early stopping usually ends sooner).", rich_help_panel=_TRAIN),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Specimens per optimiser step.", rich_help_panel=_TRAIN)
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.", rich_help_panel=_TRAIN)] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="Adam weight decay.", rich_help_panel=_TRAIN)
    ] = None,
    clip: Annotated[
        float | None, typer.Option(help="Gradient-norm clipping.", rich_help_panel=_TRAIN)
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(
            help="Train on random windows of this many steps (truncated BPTT); 0 = whole series.",
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of specimens held out for validation and early stopping.", rich_help_panel=_TRAIN
        ),
    ] = None,
    val_context: Annotated[
        int | None,
        typer.Option(
            help="Warm-up rows before the free-running validation forecast; 0 = 20% of the median length.",
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many epochs without a better validation RMSE.", rich_help_panel=_TRAIN
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed: same seed, same data -> identical weights (the file also records timings).",
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    teacher_forcing: Annotated[
        float | None,
        typer.Option(
            help="Starting probability of feeding back the measured value instead of the prediction.",
            rich_help_panel=_SCHED,
        ),
    ] = None,
    tf_schedule: Annotated[
        str | None,
        typer.Option(
            help="constant, linear (max(min, p - c*i)), exponential (p*k^i) or inverse-sigmoid (k/(k+exp(i/k))).",
            rich_help_panel=_SCHED,
        ),
    ] = None,
    tf_k: Annotated[
        float | None,
        typer.Option(help="k of the exponential / inverse-sigmoid schedules.", rich_help_panel=_SCHED),
    ] = None,
    tf_c: Annotated[
        float | None, typer.Option(help="Slope c of the linear schedule.", rich_help_panel=_SCHED)
    ] = None,
    tf_min: Annotated[
        float | None, typer.Option(help="Floor of the schedule.", rich_help_panel=_SCHED)
    ] = None,
    tf_unit: Annotated[
        str | None,
        typer.Option(help="The schedule's i counts epochs or optimiser steps.", rich_help_panel=_SCHED),
    ] = None,
    detach_feedback: Annotated[
        bool | None,
        typer.Option(
            "--detach-feedback/--keep-feedback-gradient",
            help="Cut the gradient through fed-back predictions (default: keep it).",
            rich_help_panel=_SCHED,
        ),
    ] = None,
    feedback: Annotated[
        str | None,
        typer.Option(
            help="Free-running training steps feed back the predicted mean or a sample.",
            rich_help_panel=_SCHED,
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue an interrupted run from its checkpoint (same data and options).",
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from a trained model's weights and scaling and fine-tune on DATA.",
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint file written after every epoch (default: OUTPUT.ckpt; removed after success).",
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    history: Annotated[
        str | None,
        typer.Option(
            help="Write the per-epoch log (loss, validation RMSE, teacher-forcing ratio) to this table."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: TargetCol = None,
    covariates: Covariates = None,
    static: Static = None,
    fmt: Fmt = None,
    device: Device = "auto",
    amp: Annotated[bool | None, typer.Option("--amp", help=AMP_HELP, rich_help_panel="Advanced")] = None,
    threads: Threads = 1,
    chunk_specimens: Annotated[
        int | None,
        typer.Option(
            "--chunk-specimens",
            help="Train holding N specimens at a time, for tables bigger than memory: a Parquet file or "
            "folder is read N specimens at a time (a first pass checks it and fits the scaling), the "
            "groups come in a new order each epoch and batches are drawn group by group. CSV and stdin "
            "are read whole, only the tensors go by group. Take N as large as memory allows: with N "
            "at least the number of specimens the result is the whole-table run's.",
            rich_help_panel="Advanced",
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            help="Train data-parallel in N processes on this machine (starts torchrun; see docs/SCALING.md).",
            rich_help_panel="Advanced",
        ),
    ] = 1,
    debug: Debug = False,
    ctx: typer.Context = None,
) -> None:
    """Train the recurrent feedback model on a table of specimens.

    Example:  durability train sample_data/coating.csv -o coating.safetensors
              durability train sample_data/ball.csv --target height --lags 3 -o ball.safetensors
              durability train big.parquet -o big.safetensors --nproc 4
    """
    from dataclasses import fields

    from durability_cli.config import ModelConfig, TrainConfig

    # the model and training options given on the command line (None = not given)
    names = {f.name for cls in (ModelConfig, TrainConfig) for f in fields(cls)}
    flags = {k: v for k, v in locals().items() if k in names}

    def go():
        import os
        import signal

        from durability_cli import config as cfgmod
        from durability_cli import parallel
        from durability_cli.errors import InputError
        from durability_cli.io import check_outputs, write_table
        from durability_cli.schema import load_dataset

        values = cfgmod.load_toml(config)
        unknown = cfgmod.unknown_keys(values, cfgmod.ModelConfig, cfgmod.TrainConfig)
        data_keys = {"id_col", "time_col", "target", "covariates", "static"}
        unknown = [k for k in unknown if k not in data_keys]
        if unknown:
            raise InputError(f"{config}: unknown option(s) {', '.join(unknown)}; see durability train --help")
        values.update({k: v for k, v in flags.items() if v is not None})
        model_cfg = cfgmod.build(cfgmod.ModelConfig, values, source=config or "options")
        train_cfg = cfgmod.build(cfgmod.TrainConfig, values, source=config or "options")
        ckpt = checkpoint or f"{output}.ckpt"
        # resuming rewrites the checkpoint it started from: that one output may equal an input
        same = resume is not None and os.path.realpath(resume) == os.path.realpath(ckpt)
        check_outputs(
            [output, None if same else ckpt, history],
            [data if data != "-" else None, resume, init_from],
            tables=(history,),
        )
        dist = parallel.from_env()
        if nproc < 1:
            raise InputError(f"--nproc must be at least 1, got {nproc}")
        if chunk_specimens is not None and chunk_specimens < 1:  # 0 = off only in a config file
            raise InputError(f"--chunk-specimens must be at least 1, got {chunk_specimens}")
        if (nproc > 1 or dist) and data == "-":
            raise InputError(
                "distributed training reads the table in every process, so it cannot come from stdin; "
                "pass a file name"
            )
        if nproc > 1 and dist is not None:
            raise InputError("--nproc starts torchrun itself; leave it out when running under torchrun")
        main_rank = dist is None or dist.main
        quiet_here = quiet or not main_rank  # only rank 0 reports
        covs = _split(covariates) if covariates else _as_list(values.get("covariates"))
        stat = _split(static) if static else _as_list(values.get("static"))
        base = None
        if init_from:
            from durability_cli.artifact import load_bundle

            base = load_bundle(init_from)
        roles = dict(
            fmt=fmt,
            id_col=id_col or values.get("id_col"),
            time_col=time_col or values.get("time_col"),
            target=target or values.get("target"),
            covariates=covs,
            static=stat,
            schema=base.schema if base else None,
        )
        groups = None
        if train_cfg.chunk_specimens:  # pass 1 (the checks) runs inside training
            groups = _training_groups(data, train_cfg.chunk_specimens, **roles)
            ds = groups
        else:
            ds = load_dataset(data, **roles)
        if nproc > 1:  # the table was read once here only to report a bad input in one line
            if groups is not None:
                for _ in groups:  # every group, checked here: the workers find no bad row
                    pass
            if resume:
                from durability_cli.artifact import CHECKPOINT_FORMAT, read_safetensors

                read_safetensors(resume, expect=CHECKPOINT_FORMAT)
            del ds, base, groups
            raise typer.Exit(_launch(parallel.launch_command(nproc, _command_line(ctx, drop={"nproc"}))))

        from durability_cli.artifact import save_bundle
        from durability_cli.data import resolve_device
        from durability_cli.training import TrainingDiverged, train_groups
        from durability_cli.training import train as fit

        if groups is not None:
            fit = train_groups

        _set_threads(threads)
        # A bar on a terminal; a plain line at most every LOG_EVERY seconds in a log file or CI.
        progress = None
        if not quiet_here:
            progress = _TrainProgress(train_cfg.epochs) if err.is_terminal else _TrainLog(train_cfg.epochs)
        if not quiet_here:
            for note in ds.notes:
                err.print(f"[dim]{note}[/]", highlight=False)

        def on_start(info):
            if not quiet_here:
                err.print(
                    f"Training on {info['n_train']} specimens, validating on {info['n_val']} "
                    f"(free run after {info['context']} rows); {info['parameters']:,} parameters"
                    + (f"; {info['processes']} processes" if info["processes"] > 1 else "")
                    + (
                        f"; {train_cfg.chunk_specimens} specimens at a time ({info['groups']} groups)"
                        if info.get("groups", 1) > 1
                        else ""
                    )
                    + (f"; resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""),
                    highlight=False,
                )
            if progress:
                progress.start(info["start_epoch"])

        dev = parallel.rank_device(device, dist)
        if dist is None:
            handlers = {signal.SIGTERM: _sigterm_to_interrupt}
        else:  # every rank stops at the same step: see parallel.Distributed.stop
            handlers = {signal.SIGTERM: _stop_flag(dist), signal.SIGINT: _stop_flag(dist)}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            with parallel.process_group(dist, resolve_device(dev)) as dist:
                bundle = fit(
                    ds,
                    model_cfg,
                    train_cfg,
                    checkpoint=ckpt,
                    resume=resume,
                    init_from=base,
                    on_epoch=progress.update if progress else None,
                    on_start=on_start,
                    device=resolve_device(dev),
                    dist=dist,
                )
        except TrainingDiverged as exc:
            if exc.bundle is not None and main_rank:
                save_bundle(exc.bundle, output)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if progress:
                progress.stop()
        if not main_rank:
            return
        save_bundle(bundle, output)
        if history:
            import pandas as pd

            write_table(pd.DataFrame(bundle.summary["history"]), history)
        Path(ckpt).unlink(missing_ok=True)
        if not quiet:
            _render_train_summary(bundle, output)

    _run(debug, go)


def _training_groups(data: str, size: int, *, fmt, schema, **names):
    """The table to train on as groups of ``size`` specimens: a Parquet file or folder read a group
    at a time (column roles worked out on its first rows, or the --init-from model's), anything
    else read and checked whole, then cut."""
    from durability_cli.schema import _resolve, load_dataset
    from durability_cli.streaming import FrameGroups, SpecimenGroups, is_parquet, probe_frame

    if not is_parquet(data, fmt):
        return FrameGroups(load_dataset(data, fmt=fmt, schema=schema, **names), size)
    notes = []
    if schema is None:
        schema, notes = _resolve(probe_frame(data), source=str(data), require_target=True, **names)
    groups = SpecimenGroups(data, schema, size=size, require_target=True)
    groups.notes[:0] = notes
    return groups


def _with_defaults(doc: str) -> str:
    """The train help ends with the defaults of every model and training option (their CLI
    defaults are None, meaning "from --config, else the dataclass"), so --help shows them."""
    import inspect
    from dataclasses import fields

    from durability_cli.config import ModelConfig, TrainConfig

    options = inspect.signature(train).parameters
    parts = []
    for cls in (ModelConfig, TrainConfig):
        shown = [f for f in fields(cls) if f.name in options]  # the rest are config-file only
        parts.append(", ".join(f"--{f.name.replace('_', '-')} {_default_text(f.default)}" for f in shown))
    return f"{doc.rstrip()}\n\n    Defaults: {'; '.join(parts)}.\n"


def _default_text(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


train.__doc__ = _with_defaults(train.__doc__ or "")


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_flag(dist):
    """A signal handler for a torchrun rank: ask every rank to stop at the next optimiser step (they
    agree on it with the loss). Repeated signals change nothing: under Slurm a worker gets SIGTERM
    both from Slurm and from torchrun, and one stuck for good is killed by torchrun's timeout."""

    def handler(signum, frame):
        dist.stop = True

    return handler


def _command_line(ctx, drop: set[str]) -> list[str]:
    """The arguments of this command as given on the command line, without the ``drop`` options:
    what each torchrun worker is started with."""
    positional, options = [], []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in drop or getattr(source, "name", "") not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[param.name]
        if param.param_type_name == "argument":
            positional.append(str(value))
        elif param.is_flag and param.secondary_opts:
            options.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                options.append(param.opts[0])
        else:
            options += [param.opts[0], str(value)]
    return [ctx.info_name or "train", *positional, *options]


def _launch(command: list[str]) -> int:
    """Run torchrun in its own session and wait; Ctrl-C and SIGTERM are passed on to it once, and
    it passes them on to the workers, which stop together after their current step."""
    import signal
    import subprocess

    proc = subprocess.Popen(command, start_new_session=True)
    forwarded = []

    def forward(signum, frame):
        forwarded.append(signum)
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # torchrun itself exits 1 after passing a signal on; say "interrupted" as a single process does
    return 130 if forwarded and code != 0 else code


class _TrainProgress:
    """A rich progress bar on stderr: epoch, loss, validation RMSE, teacher forcing, time left."""

    def __init__(self, epochs: int):
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.epochs = epochs
        self.task = None

    def start(self, done: int):
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.epochs, completed=done, status="")

    def update(self, log):
        status = (
            f"loss {log.train_loss:.4f}  val RMSE {log.val_rmse:.4g}{' *' if log.best else '  '}  "
            f"teacher forcing {log.teacher_forcing:.2f}"
        )
        self.progress.update(self.task, completed=log.epoch, status=status)

    def stop(self):
        self.progress.stop()


class _TrainLog:
    """Progress for a stderr that is not a terminal (a log file, CI): one plain line for the first
    epoch, then at most one every LOG_EVERY seconds, and the last one."""

    LOG_EVERY = 10.0

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.last = None
        self.started = 0.0

    def start(self, done: int):
        import time

        self.started = time.monotonic()

    def update(self, log):
        import time

        now = time.monotonic()
        if self.last is not None and now - self.last < self.LOG_EVERY and log.epoch < self.epochs:
            return
        self.last = now
        err.print(
            f"epoch {log.epoch}/{self.epochs}  loss {log.train_loss:.4f}  val RMSE {log.val_rmse:.4g}"
            f"{' (best)' if log.best else ''}  teacher forcing {log.teacher_forcing:.2f}  "
            f"{now - self.started:.0f} s",
            highlight=False,
            soft_wrap=True,
        )

    def stop(self):
        pass


def _render_train_summary(bundle, output: str) -> None:
    from rich.table import Table

    s = bundle.summary
    table = Table(title=f"Trained {output}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    m = bundle.model_config
    table.add_row(
        "model",
        f"{m.cell.upper()} {m.layers}x{m.hidden}, lags {m.lags}, {m.loss}, "
        f"{'residual' if m.residual else 'level'}, monotonic {m.monotonic}; {s['parameters']:,} parameters",
    )
    table.add_row("specimens", f"{len(s['train_specimens'])} train, {len(s['val_specimens'])} validation")
    table.add_row("epochs", f"{s['epochs_run']} run, best {s['best_epoch']} ({s['stopped']})")
    table.add_row(
        "validation RMSE",
        f"{_fmt(s['best_val_rmse'])} free-running after {s['val_context']} rows "
        f"(persistence: {_fmt(s['val_persistence_rmse'])})",
    )
    table.add_row("time", f"{s['train_seconds']:.1f} s")
    err.print(table)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{x:.4g}"


def _as_list(value) -> list[str] | None:
    """A TOML value for a column list: a list, or one comma-separated string."""
    return _split(value) if isinstance(value, str) else value


# -- forecast --------------------------------------------------------------------------------------
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model file written by durability train.")]
Samples = Annotated[
    int, typer.Option(help="Monte Carlo paths for intervals (Gaussian models); 0 = deterministic mean path.")
]
Quantiles = Annotated[str, typer.Option(help="Comma-separated quantiles to report, e.g. 0.1,0.5,0.9.")]
Threshold = Annotated[float | None, typer.Option(help="End-of-life threshold in durability units.")]
Direction = Annotated[
    str, typer.Option(help="End of life when durability goes below or above the threshold.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for the Monte Carlo paths.")]
OutFmt = Annotated[
    str | None,
    typer.Option("--output-format", help="csv, parquet or jsonl for stdout (files: from the extension)."),
]


def _set_threads(threads: int) -> None:
    import torch

    from durability_cli.limits import check_threads

    torch.set_num_threads(check_threads(threads))


def _forecast_config(samples, quantiles, threshold, direction, seed, strict=False, device="cpu", amp=False):
    from durability_cli.errors import InputError
    from durability_cli.forecasting import ForecastConfig

    try:
        qs = tuple(float(q) for q in _split(quantiles) or [])
    except ValueError:
        raise InputError(f"--quantiles must be numbers separated by commas, got {quantiles!r}") from None
    from durability_cli.data import resolve_device

    cfg = ForecastConfig(
        samples=samples,
        quantiles=qs,
        threshold=threshold,
        direction=direction,
        seed=seed,
        strict=strict,
        device=str(resolve_device(device)),
        amp=amp,
    )
    cfg.validate()
    return cfg


@app.command()
def forecast(
    data: DataArg,
    model: ModelOpt,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Forecast table to write; - is stdout.")
    ] = "-",
    horizon: Annotated[
        int | None,
        typer.Option(
            help="Forecast at most N steps after each specimen's last measurement; with --hold-conditions, add N steps to tables that have no future rows."
        ),
    ] = None,
    future: Annotated[
        str | None, typer.Option(help="Table of future rows (id, time, conditions) to append to DATA.")
    ] = None,
    hold_conditions: Annotated[
        bool,
        typer.Option(
            "--hold-conditions", help="With --horizon: hold each specimen's last conditions and step length."
        ),
    ] = False,
    samples: Samples = 200,
    quantiles: Quantiles = "0.1,0.5,0.9",
    threshold: Threshold = None,
    direction: Direction = "below",
    eol_out: Annotated[
        str | None, typer.Option("--eol-out", help="Write the end-of-life table (needs --threshold).")
    ] = None,
    paths_out: Annotated[
        str | None,
        typer.Option("--paths-out", help="Write the raw Monte Carlo paths (id, time, sample, value)."),
    ] = None,
    plot: Annotated[
        str | None, typer.Option("--plot", help="Also draw the forecasts to this PNG or SVG.")
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse to extrapolate beyond the conditions and step lengths seen in training."
        ),
    ] = False,
    seed: SeedOpt = 0,
    output_format: OutFmt = None,
    fmt: Fmt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No notes on stderr.")] = False,
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
    """

    def go():
        _set_threads(threads)
        from durability_cli.artifact import load_bundle
        from durability_cli.errors import InputError
        from durability_cli.forecasting import forecast as run_forecast
        from durability_cli.io import check_outputs, write_table
        from durability_cli.schema import load_dataset

        cfg = _forecast_config(samples, quantiles, threshold, direction, seed, strict, device, amp)
        spec = _shard_spec(shard)
        if eol_out and threshold is None:
            raise InputError("--eol-out needs --threshold")
        if hold_conditions and not horizon:
            raise InputError("--hold-conditions needs --horizon N")
        check_outputs(
            [output, eol_out, paths_out, plot],
            [data if data != "-" else None, model, future],
            tables=(output, eol_out, paths_out),
            pictures=(plot,),
            fmt=output_format,
        )
        if chunk_specimens is not None:
            _refuse_with_chunks(plot=plot)
            from durability_cli.streaming import forecast_in_chunks

            bundle = load_bundle(model)
            grouped, stream = forecast_in_chunks(
                bundle,
                data,
                cfg,
                size=chunk_specimens,
                output=output,
                output_format=output_format,
                eol_out=eol_out,
                paths_out=paths_out,
                fmt=fmt,
                shard=spec,
                horizon=horizon,
                hold_conditions=hold_conditions,
                future=load_dataset(future, schema=bundle.schema, require_target=False) if future else None,
            )
            if stream is None:
                _empty_shard_note(spec, grouped.total, data, quiet)
            elif not quiet:
                _print_warnings(stream.warnings)
                _forecast_note(stream.info, spec)
            return
        bundle = load_bundle(model)
        ds = _take_shard(load_dataset(data, fmt=fmt, schema=bundle.schema, require_target=True), spec, quiet)
        if ds is None:
            return
        fut = load_dataset(future, schema=bundle.schema, require_target=False) if future else None
        if fut is not None and spec is not None:
            fut = _take_shard(fut, spec, quiet=True)
        result = run_forecast(
            bundle,
            ds,
            cfg,
            horizon=horizon,
            hold_conditions=hold_conditions,
            future=fut,
            want_paths=paths_out is not None,
        )
        if not quiet:
            _print_warnings(result.warnings)
            _forecast_note(result.info, spec)
        result.forecast.attrs["durability"] = result.info
        write_table(result.forecast, output, fmt=output_format)
        if eol_out and result.eol is not None:
            write_table(result.eol, eol_out)
        if paths_out and result.paths is not None:
            write_table(result.paths, paths_out)
        if plot:
            from durability_cli.plotting import plot_forecasts

            s = bundle.schema
            plot_forecasts(
                ds.frame,
                result.forecast,
                plot,
                id_col=s.id_col,
                time_col=s.time_col,
                target=s.target,
                threshold=threshold,
                eol=result.eol,
            )

    _run(debug, go)


def _forecast_note(info: dict, spec) -> None:
    err.print(
        f"Forecast {info['rows']} rows for {info['specimens']} specimens "
        f"({info['samples']} samples, seed {info['seed']}"
        + (f", shard {spec[0]}/{spec[1]})" if spec else ")"),
        highlight=False,
    )


def _refuse_with_chunks(**options) -> None:
    """Options that need every specimen at once cannot go with --chunk-specimens."""
    from durability_cli.errors import InputError

    why = {
        "plot": "--plot draws from the whole table; drop --chunk-specimens, or draw a few specimens "
        "with durability plot forecast",
    }
    for name, value in options.items():
        if value:
            raise InputError(f"{why[name]} (--chunk-specimens works a group of specimens at a time)")


def _empty_shard_note(spec, total: int, data: str, quiet: bool) -> None:
    if not quiet:
        source = "stdin" if data == "-" else data
        err.print(
            f"shard {spec[0]}/{spec[1]} holds none of the {total} specimens of {source}; "
            "nothing to do, no output written",
            highlight=False,
        )


def _shard_spec(shard: str | None) -> tuple[int, int] | None:
    from durability_cli.parallel import parse_shard

    return None if shard is None else parse_shard(shard)


def _take_shard(ds, spec: tuple[int, int] | None, quiet: bool):
    """This job's specimens of ``ds``, or None (with a note) when the shard holds none."""
    if spec is None:
        return ds
    from durability_cli.parallel import take_shard

    part = take_shard(ds, *spec)
    if part is None and not quiet:
        n = ds.frame[ds.schema.id_col].nunique()
        err.print(
            f"shard {spec[0]}/{spec[1]} holds none of the {n} specimens of {ds.source}; "
            "nothing to do, no output written",
            highlight=False,
        )
    return part


def _print_warnings(lines: list[str], limit: int = 10) -> None:
    for line in lines[:limit]:
        err.print(f"[yellow]Warning:[/] {line}", highlight=False, soft_wrap=True)
    if len(lines) > limit:
        err.print(f"[yellow]Warning:[/] ... and {len(lines) - limit} more", highlight=False)


# -- evaluate --------------------------------------------------------------------------------------
@app.command()
def evaluate(
    data: DataArg,
    model: ModelOpt,
    context: Annotated[
        int | None, typer.Option(help="Rows observed per specimen before the forecast.")
    ] = None,
    context_frac: Annotated[
        float | None, typer.Option(help="Share of each specimen's rows observed before the forecast.")
    ] = None,
    origins: Annotated[
        int | None, typer.Option(help="K rolling cut-offs per specimen (needed for the prognostics metrics).")
    ] = None,
    horizon: Annotated[int | None, typer.Option(help="Score at most N steps after each cut-off.")] = None,
    samples: Samples = 200,
    threshold: Threshold = None,
    direction: Direction = "below",
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines/--no-baselines", help="Also score persistence, linear trend and exponential fit."
        ),
    ] = True,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the metrics JSON to this file instead of stdout.")
    ] = None,
    per_series: Annotated[
        str | None, typer.Option("--per-series", help="Write one row of scores per specimen and model.")
    ] = None,
    backtest_out: Annotated[
        str | None,
        typer.Option(
            "--backtest-out", help="Write every forecast point (truth, prediction, quantiles, model)."
        ),
    ] = None,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Draw the error by horizon step, model vs baselines (PNG or SVG)."),
    ] = None,
    seed: SeedOpt = 0,
    fmt: Fmt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table on stderr.")] = False,
    device: Device = "auto",
    amp: Amp = False,
    shard: ShardOpt = None,
    chunk_specimens: ChunkOpt = None,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Backtest: hide the truth after a cut-off, forecast, and score against the baselines.

    Example:  durability evaluate sample_data/coating.csv -m coating.safetensors --context 30 --threshold 0.6
              durability evaluate test.csv -m m.safetensors --origins 4 --json metrics.json --plot errors.png
    """

    def go():
        _set_threads(threads)
        from durability_cli.artifact import load_bundle
        from durability_cli.evaluation import evaluate as run_evaluate
        from durability_cli.io import atomic_path, check_outputs, write_table
        from durability_cli.metrics import to_jsonable
        from durability_cli.schema import load_dataset

        cfg = _forecast_config(samples, "0.1,0.5,0.9", threshold, direction, seed, device=device, amp=amp)
        spec = _shard_spec(shard)
        check_outputs(
            [json_out, per_series, backtest_out, plot],
            [data if data != "-" else None, model],
            tables=(per_series, backtest_out),
            pictures=(plot,),
        )
        bundle = load_bundle(model)
        options = {
            "context": context,
            "context_frac": context_frac,
            "origins": origins,
            "horizon": horizon,
            "baselines": baselines,
        }
        if chunk_specimens is not None:
            from durability_cli.streaming import evaluate_in_chunks

            grouped, stream = evaluate_in_chunks(
                bundle,
                data,
                cfg,
                size=chunk_specimens,
                per_series=per_series,
                backtest_out=backtest_out,
                fmt=fmt,
                shard=spec,
                **options,
            )
            if stream is None:
                _empty_shard_note(spec, grouped.total, data, quiet)
                return
            report = stream.report
        else:
            ds = _take_shard(load_dataset(data, fmt=fmt, schema=bundle.schema), spec, quiet)
            if ds is None:
                return
            result = run_evaluate(bundle, ds, cfg, **options)
            report = result.report
            if per_series:
                write_table(result.per_series, per_series)
            if backtest_out:
                write_table(result.backtest, backtest_out)
        if spec is not None:  # the scores are this shard's specimens only
            report["settings"]["shard"] = f"{spec[0]}/{spec[1]}"
        text = json.dumps(to_jsonable(report), indent=2) + "\n"
        if json_out:
            with atomic_path(json_out) as tmp:
                Path(tmp).write_text(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        if plot:
            from durability_cli.plotting import plot_horizon_errors

            by_step = {name: m["rmse_by_step"] for name, m in report["models"].items()}
            plot_horizon_errors(by_step, plot, metric="RMSE", unit=bundle.schema.target)
        if not quiet:
            _render_evaluation(report)

    _run(debug, go)


def _render_evaluation(report: dict) -> None:
    from rich.table import Table

    table = Table(title="Backtest", title_justify="left")
    for col in ("model", "RMSE", "MAE", "bias", "MASE", "skill (RMSE)", "80% coverage", "EOL error"):
        table.add_column(col, justify="right" if col != "model" else "left")
    skill = report.get("skill", {})
    for name, m in report["models"].items():
        cov = (m.get("coverage") or {}).get("80")
        eol = (m.get("eol") or {}).get("mae")
        sk = "" if name == "model" else _fmt(skill.get(name))
        table.add_row(
            name,
            _fmt(m.get("rmse")),
            _fmt(m.get("mae")),
            _fmt(m.get("bias")),
            _fmt(m.get("mase")),
            sk,
            "" if cov is None else f"{cov:.0%}",
            "" if eol is None else _fmt(eol),
        )
    err.print(table)
    err.print(
        f"{report.get('n_specimens')} specimens, {report.get('n_origins')} cut-off(s) each; "
        "skill = 1 - RMSE_model / RMSE_baseline",
        highlight=False,
    )


# -- inspect and plot ------------------------------------------------------------------------------
@app.command()
def inspect(
    model: Annotated[str, typer.Argument(help="Model file written by durability train.")],
    as_json: Annotated[bool, typer.Option("--json", help="Write everything as JSON on stdout.")] = False,
    debug: Debug = False,
) -> None:
    """Show a model file's schema, hyper-parameters, scaling and training summary.

    Example:  durability inspect coating.safetensors --json | jq .summary.best_val_rmse
    """

    def go():
        from durability_cli.artifact import describe_bundle, load_bundle

        info = describe_bundle(load_bundle(model), model)
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2) + "\n")
            return
        from rich.table import Table

        s = info["summary"]
        table = Table(title=model, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        sch = info["schema"]
        table.add_row(
            "format", f"{info['format']} v{info['format_version']} (durability {info['package_version']})"
        )
        table.add_row("columns", f"id {sch['id_col']}, time {sch['time_col']}, target {sch['target']}")
        table.add_row("conditions", ", ".join(sch["covariates"]) or "none")
        table.add_row("static", ", ".join(sch.get("static", [])) or "none")
        table.add_row("model", ", ".join(f"{k}={v}" for k, v in info["model_config"].items()))
        table.add_row("training", ", ".join(f"{k}={v}" for k, v in info["train_config"].items()))
        table.add_row("parameters", f"{info['parameters']:,}")
        if info["model_config"].get("latent"):
            spread = ", ".join(f"{v:.3g}" for v in s.get("latent_train_std", []))
            table.add_row(
                "latent",
                f"z of size {info['model_config']['latent']} per specimen, fitted to each warm-up "
                f"(prior weight {info['model_config']['latent_prior']:g}); spread of the training "
                f"specimens' z (sd per dimension): {spread or 'n/a'}",
            )
        table.add_row(
            "trained on", f"{s.get('source')}: {s.get('n_specimens')} specimens, {s.get('n_rows')} rows"
        )
        table.add_row(
            "validation RMSE",
            f"{_fmt(s.get('best_val_rmse'))} (persistence {_fmt(s.get('val_persistence_rmse'))}), "
            f"best epoch {s.get('best_epoch')} of {s.get('epochs_run')}",
        )
        for name, (lo, hi) in s.get("envelope", {}).items():
            table.add_row(f"range {name}", f"{lo:.4g} .. {hi:.4g}")
        err.print(table)

    _run(debug, go)


plot_app = typer.Typer(help="Draw forecasts and training histories (PNG or SVG).", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command("forecast")
def plot_forecast_cmd(
    data: DataArg,
    model: ModelOpt,
    output: Annotated[str, typer.Option("--output", "-o", help="Picture to write (.png or .svg).")],
    truth: Annotated[
        str | None, typer.Option(help="Table with the true values of the forecast rows, drawn as markers.")
    ] = None,
    specimens: Annotated[
        str | None, typer.Option(help="Comma-separated specimen ids to draw (default: the first --max).")
    ] = None,
    max_specimens: Annotated[int, typer.Option("--max", help="Draw at most this many specimens.")] = 12,
    horizon: Annotated[int | None, typer.Option(help="As in durability forecast.")] = None,
    hold_conditions: Annotated[
        bool, typer.Option("--hold-conditions", help="As in durability forecast.")
    ] = False,
    samples: Samples = 200,
    threshold: Threshold = None,
    direction: Direction = "below",
    seed: SeedOpt = 0,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Forecast and draw history, median, interval band, threshold and end of life per specimen.

    Example:  durability plot forecast plan.csv -m coating.safetensors --threshold 0.6 -o forecast.png
    """

    def go():
        _set_threads(threads)
        from durability_cli.artifact import load_bundle
        from durability_cli.forecasting import forecast as run_forecast
        from durability_cli.io import check_outputs
        from durability_cli.plotting import plot_forecasts
        from durability_cli.schema import load_dataset

        check_outputs([output], [data if data != "-" else None, model, truth], pictures=(output,))
        cfg = _forecast_config(samples, "0.1,0.25,0.5,0.75,0.9", threshold, direction, seed)
        bundle = load_bundle(model)
        ds = load_dataset(data, schema=bundle.schema)
        result = run_forecast(bundle, ds, cfg, horizon=horizon, hold_conditions=hold_conditions)
        truth_ds = load_dataset(truth, schema=bundle.schema).frame if truth else None
        s = bundle.schema
        plot_forecasts(
            ds.frame,
            result.forecast,
            output,
            id_col=s.id_col,
            time_col=s.time_col,
            target=s.target,
            truth=truth_ds,
            threshold=threshold,
            eol=result.eol,
            specimens=_split(specimens),
            max_specimens=max_specimens,
        )

    _run(debug, go)


@plot_app.command("history")
def plot_history_cmd(
    model: Annotated[str, typer.Argument(help="Model file written by durability train.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Picture to write (.png or .svg).")],
    debug: Debug = False,
) -> None:
    """Draw a model's training history: loss, free-running validation RMSE, teacher forcing.

    Example:  durability plot history coating.safetensors -o history.png
    """

    def go():
        from durability_cli.artifact import load_bundle
        from durability_cli.io import check_outputs
        from durability_cli.plotting import plot_training_history

        check_outputs([output], [model], pictures=(output,))
        plot_training_history(load_bundle(model).summary["history"], output)

    _run(debug, go)


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
        message = " ".join(exc.format_message().split()).rstrip(".")
        sep = " " if message.endswith("?") else "; "  # "... Did you mean 'forecast'? see ..."
        err.print(f"Error: {message}{sep}see {command} --help", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
