"""Work split across processes: data-parallel training under torchrun, and job-array shards.

Training: ``torchrun --nproc-per-node N -m durability_cli train ...`` starts N copies of the command;
each reads the whole table, makes the same split and scaling, and holds identical weights. Every
optimiser step takes the same global batch of specimens as a single process would (same seed, same
shuffled order, same random windows and teacher-forcing coins, drawn from one generator that stays in
step on every rank); rank r runs rows r, r + N, r + 2N, ... of it, and the summed gradients are
averaged over the measured rows of the whole batch with one all-reduce, so the step is the
single-process step up to the order of float additions.

Gradients are reduced by hand rather than by wrapping the model in DistributedDataParallel: the model
is small (one flat all-reduce per step costs less than DDP's bucketing and hooks), its forward calls
the same RNN in a Python loop after a fused prefix whose length depends on the batch, the scale head
receives no gradient in a batch without measured rows (DDP would need ``find_unused_parameters``),
and the loss must be weighted by the measured rows of the *global* batch, which needs one extra
reduction either way. Reducing by hand also keeps the weights' names free of DDP's ``module.``
prefix, so checkpoints move freely between single-process and distributed runs.

Forecasting and evaluation scale by job arrays instead: ``--shard i/n`` keeps the specimens whose id
hashes to i modulo n, a hash that is the same on every machine and every run, so n independent
jobs split a table without talking to each other and their outputs concatenate.

This module imports torch only inside the functions that need it, so the CLI stays fast to start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from durability_cli.errors import InputError


# -- torchrun --------------------------------------------------------------------------------------
@dataclass
class Distributed:
    """This process's place in a torchrun job."""

    rank: int  # 0 .. world-1; rank 0 writes every file and all progress
    world: int  # number of processes
    local_rank: int  # index on this machine: picks the GPU
    backend: str = "gloo"  # gloo on the CPU, nccl on CUDA
    stop: bool = False  # set by the CLI's signal handler; every rank stops at the same step

    @property
    def main(self) -> bool:
        return self.rank == 0

    def _comm_device(self):
        import torch

        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else "cpu"

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64, one collective call)."""
        import torch
        import torch.distributed as dist

        buf = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.cpu().tolist()

    def sum_gradients(self, parameters) -> None:
        """Replace each parameter's gradient by its sum over all ranks (one flat all-reduce).
        A parameter without a gradient on this rank contributes zeros."""
        import torch
        import torch.distributed as dist

        params = [p for p in parameters if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])  # [P]
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def broadcast_parameters(self, module) -> None:
        """Make every rank hold rank 0's weights and buffers (they are equal already when the seed
        is; this guards against anything that is not)."""
        import torch.distributed as dist

        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)

    def gather_bytes(self, tensor) -> list:
        """Every rank's copy of a uint8 tensor of the same size (random-generator states)."""
        import torch
        import torch.distributed as dist

        local = tensor.to(self._comm_device())
        out = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(out, local)
        return [t.cpu() for t in out]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def from_env(environ: dict | None = None) -> Distributed | None:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or None outside torchrun or
    when it started a single process."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be integers (they are set by torchrun); "
            f"got WORLD_SIZE={env.get('WORLD_SIZE')!r}, RANK={env.get('RANK')!r}"
        ) from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise InputError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world})")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
    if missing:
        raise InputError(
            f"WORLD_SIZE={world} asks for a distributed run, but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; "
            "start it with torchrun (or durability train --nproc N), or unset WORLD_SIZE"
        )
    return Distributed(rank=rank, world=world, local_rank=local_rank)


def main_process(environ: dict | None = None) -> bool:
    """False only in a secondary rank of a real torchrun job (torchrun sets LOCAL_RANK and
    TORCHELASTIC_RUN_ID): there rank 0 reports the error that every rank hits. A stray RANK=1 in
    the environment of a plain run hides nothing."""
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env and "TORCHELASTIC_RUN_ID" not in env:
        return True
    try:
        return int(env.get("WORLD_SIZE", "1")) <= 1 or int(env.get("RANK", "0")) == 0
    except ValueError:
        return True


MAX_NPROC = 256  # processes per machine: more would only fight over its cores and memory
RENDEZVOUS_TIMEOUT = 300.0  # seconds to wait for every rank; $DURABILITY_RENDEZVOUS_TIMEOUT overrides


def rank_device(name: str, dist: Distributed | None) -> str:
    """Under torchrun, ``auto`` and a bare ``cuda`` mean this process's own GPU (cuda:LOCAL_RANK);
    an explicit cuda:N is kept."""
    if dist is None:
        return name
    if name == "cuda" or (name == "auto" and _cuda_available()):
        return f"cuda:{dist.local_rank}"
    return name


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@contextlib.contextmanager
def process_group(dist: Distributed | None, device) -> Iterator[Distributed | None]:
    """Join the torchrun job for the duration of the block (gloo on the CPU, nccl on CUDA)."""
    if dist is None:
        yield None
        return
    import torch
    import torch.distributed as tdist

    device = torch.device(device)
    dist.backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    import datetime

    seconds = float(os.environ.get("DURABILITY_RENDEZVOUS_TIMEOUT") or RENDEZVOUS_TIMEOUT)
    try:
        tdist.init_process_group(
            backend=dist.backend,
            rank=dist.rank,
            world_size=dist.world,
            timeout=datetime.timedelta(seconds=seconds),
        )
    except (RuntimeError, ValueError) as exc:  # torch's DistStoreError is a RuntimeError
        raise InputError(
            f"the distributed run could not start: not all {dist.world} ranks joined at "
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} within {seconds:g} s "
            f"({' '.join(str(exc).split())[:120]}); start every rank, or use torchrun"
        ) from None
    try:
        yield dist
    finally:
        tdist.destroy_process_group()


def launch_command(nproc: int, args: list[str]) -> list[str]:
    """The torchrun command line that runs ``durability <args>`` in ``nproc`` processes here.
    ``--standalone`` picks a free port, so several jobs on one machine do not collide."""
    import sys

    if nproc > MAX_NPROC:
        raise InputError(f"--nproc must be between 1 and {MAX_NPROC} processes on one machine, got {nproc}")

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "durability_cli",
        *args,
    ]


# -- job-array shards ------------------------------------------------------------------------------
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    m = _SHARD.match(text)
    if m is None:
        raise InputError(
            f"--shard must be I/N (this job's index, then the number of jobs), e.g. 0/8; got {text!r}"
        )
    try:
        index, count = int(m.group(1)), int(m.group(2))
    except ValueError:  # more digits than Python converts
        index, count = 0, 2**63
    if count >= 2**63:  # past what the shard arithmetic holds; no run has that many jobs
        raise InputError(f"--shard {text}: N must be below 2^63 (9223372036854775808)")
    if count < 1 or index >= count:
        raise InputError(
            f"--shard {text}: the index must be 0..N-1 and N at least 1 "
            "(Slurm: --array=0-(N-1) with --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
        )
    return index, count


def shard_of(ids, count: int) -> np.ndarray:
    """[N] the shard (0..count-1) of each specimen id: blake2b of the id text, modulo ``count``.
    Unlike Python's hash() it is the same in every process, on every machine, in every run."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest(), "little") % count
            for i in ids
        ),
        dtype=np.int64,
        count=len(ids),
    )


def take_shard(ds, index: int, count: int):
    """The rows of ``ds`` (a validated Dataset) whose specimens fall in shard ``index`` of
    ``count``; None when none do. Its dates are written in the unit the whole table's need
    (``date_unit``), so that the shards' CSVs concatenate to the whole run's."""
    from dataclasses import replace

    from durability_cli.streaming import dates_unit

    if count == 1:
        return ds
    ids = ds.frame[ds.schema.id_col].to_numpy()
    unique, inverse = np.unique(ids, return_inverse=True)
    keep = (shard_of(unique, count) == index)[inverse]  # [rows]
    if not keep.any():
        return None
    frame = ds.frame[keep].reset_index(drop=True)
    unit = ds.date_unit if ds.date_unit is not None else dates_unit(ds)
    return replace(ds, frame=frame, t=np.ascontiguousarray(ds.t[keep]), notes=list(ds.notes), date_unit=unit)


# -- starting torchrun, and stopping cleanly on a signal -------------------------------------------
def check_launch(nproc: int, *, from_stdin: bool, dist: Distributed | None) -> None:
    """The rules of ``--nproc``: at least 1; every process reads the table, so not from stdin;
    not again under torchrun."""
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, got {nproc}")
    if (nproc > 1 or dist) and from_stdin:
        raise InputError(
            "distributed training reads the table in every process, so it cannot come from stdin; "
            "pass a file name"
        )
    if nproc > 1 and dist is not None:
        raise InputError("--nproc starts torchrun itself; leave it out when running under torchrun")


def command_line(ctx, drop: set[str]) -> list[str]:
    """The arguments of this command (a click context) as given on the command line, without the
    ``drop`` options: what each torchrun worker is started with."""
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


def launch(command: list[str]) -> int:
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


@contextlib.contextmanager
def stop_signals(dist: Distributed | None) -> Iterator[None]:
    """While training: SIGTERM stops a single process as Ctrl-C does (the checkpoint is kept);
    under torchrun SIGTERM, SIGINT and SIGHUP ask every rank to stop at the same optimiser step."""
    import signal

    if dist is None:
        handlers = {signal.SIGTERM: _sigterm_to_interrupt}
    else:  # a closed terminal reaches every rank as SIGHUP: the same agreed stop
        stops = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        handlers = {sig: _stop_flag(dist) for sig in stops}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_flag(dist: Distributed):
    """A signal handler for a torchrun rank: ask every rank to stop at the next optimiser step (they
    agree on it with the loss). Repeated signals change nothing: under Slurm a worker gets SIGTERM
    both from Slurm and from torchrun, and one stuck for good is killed by torchrun's timeout."""

    def handler(signum, frame):
        dist.stop = True

    return handler
