"""Training runs in a second process, beside the one this process trains.

Three kinds of training split into independent runs that share nothing but the table and the
options: ``--trend-line auto``'s two candidates (line_choice.py), the members of an ensemble
that cannot train stacked (``--latent``, which ``--latent auto`` gives long warm-ups; ``--ema``,
``--amp``; ensemble.py), and the members ``--refit-all`` trains again (refit_all.py). Each run
is a Python loop of small tensor operations, bound by the dispatch of those operations on one
core: a second torch thread does not make it faster, a second process does (benchmarks/RESULTS.md,
session 38; benchmarks/line_jobs.py). Where this process may use two CPUs, the line's candidate,
or a share of the members, trains in a child process while this one trains the rest, and the
whole takes about as long as the slower of the two.

The child is a fresh interpreter (``spawn``: forking a process that has started torch's threads
can hang). It gets the table and options by pickling, uses the parent's torch thread count, and
trains with a checkpoint of its own. Its finished model comes back as the model file it writes
(``out``; an ensemble's share writes each member's file itself), which is also what a resumed run
finds; its progress (each run's start line facts and each epoch's log) comes back on a queue,
which the parent drains as it trains and shows once its own share is done. Training is
deterministic and nothing passes between the runs, so the model is the same, bit for bit, as when
they train one after the other.

Stopping: Ctrl-C at a terminal reaches both processes; SIGTERM, or a SIGINT sent to the parent
alone, is passed on by the parent (as SIGTERM). Either way the child keeps its last epoch's
checkpoint and says so, and the parent waits for that before it reports the interruption, so
``--resume`` continues both processes' runs. A second signal while the child is already stopping is
ignored, and a child still starting up when it is stopped ends without a word; one that has
finished training when the signal comes writes its model and ends as it would have. A command
started with Ctrl-C ignored (a shell script's background job) leaves it ignored in the child too,
and a closed terminal (SIGHUP) stops the child at its epoch as SIGTERM does.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import traceback
from pathlib import Path

from durability_cli.errors import InputError

STOP_WAIT = 120.0  # seconds the parent waits for an interrupted child to write its checkpoint
POLL = 0.2  # seconds between looks at the child while waiting for it


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the system says, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


ENV = "DURABILITY_JOBS"  # the default of --jobs where it is not given (e.g. 1 on a shared node)


def resolve_jobs(jobs: int, threads: int) -> int:
    """How many processes may train at once: ``jobs`` as given, or for 0 (auto) ``$DURABILITY_JOBS``
    where it is set, else as many as the CPUs this process may use allow for ``threads`` each
    (at least one). A run starts no more than it can use: two for ``--trend-line auto``'s
    candidates, one per member for an ensemble that cannot train stacked."""
    if jobs < 0:
        raise InputError(f"--jobs must be 0 (auto) or at least 1, got {jobs}")
    if jobs:
        return jobs
    given = os.environ.get(ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise InputError(f"${ENV} must be a whole number of at least 1, got {given!r}; unset it for auto")
        return int(given)
    return max(1, usable_cpus() // max(threads, 1))


def allowed(table, options: dict) -> bool:
    """Whether a training run may go to a second process at all: the table in memory (a table read
    in groups is not copied to another process), one process (not a rank of torchrun: ``dist`` in
    ``options``) and the CPU (two processes would each hold a copy of the model on the GPU)."""
    from durability_cli.schema import Dataset

    device = options.get("device")
    on_cpu = device is None or getattr(device, "type", str(device)) == "cpu"
    return isinstance(table, Dataset) and options.get("dist") is None and on_cpu


def one_based(indices) -> str:
    """Members or folds (0-based indices) as start lines and messages number them: '2, 4'."""
    return ", ".join(str(k + 1) for k in indices)


def polling(asides, on_epoch=None):
    """``on_epoch`` for the run this process trains while ``asides`` train theirs: each epoch
    first takes what the children have said (so that their queues keep moving), then calls
    ``on_epoch`` (None: nothing more)."""

    def each(log) -> None:
        for aside in asides:
            aside.poll()
        if on_epoch is not None:
            on_epoch(log)

    return each


class Aside:
    """``train(table, model_cfg, cfg, **options)`` in a child process; ``result()`` waits for it
    and returns its model. Use as a context manager: leaving it by an exception stops the child
    (its checkpoint written) before the exception goes on."""

    def __init__(
        self,
        train,
        table,
        model_cfg,
        cfg,
        options: dict,
        out: str | Path | None,
        what: str = "the line's candidate",
    ):
        import multiprocessing as mp

        import torch

        ctx = mp.get_context("spawn")
        # A process started with Ctrl-C ignored (a shell's background job, `nohup`-like launchers)
        # ignores it: so does its child, which would otherwise stop alone and stop the command.
        ignored = _ignored(signal.SIGINT)
        self.out = None if out is None else Path(out)
        self.what = what
        self.queue = ctx.Queue()
        self.events: list = []  # ("start", facts) and ("epoch", log) not yet shown, in order
        self.ended: tuple | None = None  # ("done",) or (kind, payload)
        self.process = ctx.Process(
            target=_child,
            args=(
                train,
                table,
                model_cfg,
                cfg,
                options,
                None if out is None else str(out),
                torch.get_num_threads(),
                self.queue,
                ignored,
            ),
            name="durability-second-process",
            daemon=True,
        )

    def __enter__(self) -> Aside:
        # The child starts with SIGINT ignored (an ignored signal is inherited; Python then installs
        # no handler of its own), so that Ctrl-C while it is still importing prints no traceback;
        # it installs its own handler before it trains, and stop() sends SIGTERM, which ends a child
        # still starting up quietly.
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread, where only signal handlers may be set: as it is
            self.process.start()
            return self
        try:
            self.process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None and self.process.is_alive():
            self.stop()
        self.process.join(timeout=STOP_WAIT)
        if self.process.is_alive():  # it did not stop when asked: the checkpoint holds what it wrote
            self.process.kill()  # (not SIGTERM, which a child past its work no longer acts on)
            self.process.join()

    def poll(self) -> None:
        """Take what the child has said so far, without waiting."""
        while True:
            try:
                message = self.queue.get_nowait()
            except queue_mod.Empty:
                return
            self._take(message)

    def _take(self, message: tuple) -> None:
        if message[0] in ("start", "epoch"):
            self.events.append(message)
        else:
            self.ended = message

    def _alive(self) -> bool:
        """Whether the child still runs; once it has ended, its last messages are taken, and an
        end it did not say is recorded as its death."""
        if self.process.is_alive():
            return True
        self.poll()  # the last messages may have come with its end
        if self.ended is None:
            self.ended = ("died", f"exit code {self.process.exitcode}")
        return False

    def stop(self) -> None:
        """Ask the child to stop (SIGTERM: at its epoch, once it trains) and wait until it has said
        it stopped, or has ended."""
        if self.process.pid is not None and self.process.is_alive():
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self._wait(STOP_WAIT)

    def _wait(self, timeout: float | None) -> None:
        """Until the child has said how it ended (or has died), taking its messages as they come."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.ended is None:
            try:
                self._take(self.queue.get(timeout=POLL))
                continue
            except queue_mod.Empty:
                pass
            if not self._alive():
                return
            if deadline is not None and time.monotonic() > deadline:
                return

    def result(self, on_start=None, on_epoch=None, replay: bool = False):
        """Wait for the child, showing its progress (for each training run it started, ``on_start``
        once with its start facts and how far it has come, then ``on_epoch`` for each epoch that
        follows; with ``replay``, ``on_start`` with the facts alone and ``on_epoch`` for every
        epoch, those done while this process was busy included), and return its model (None where
        it writes none: ``out`` None). An exception from ``on_start`` or ``on_epoch`` goes on (the
        context manager then stops the child). Its errors
        are raised here as this process's: a divergence or an interruption as training's, a bad
        input as one line, anything else with the child's traceback."""
        from durability_cli.artifact import load_bundle
        from durability_cli.training import TrainingDiverged, TrainingInterrupted

        try:
            self._follow(on_start, on_epoch, replay)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while waiting: the child stops at its epoch
            self.stop()
            raise TrainingInterrupted("training interrupted while the second process trained") from None
        kind, payload = self.ended[0], self.ended[1] if len(self.ended) > 1 else None
        if kind == "done":
            return None if self.out is None else load_bundle(self.out)
        if kind == "diverged":
            raise TrainingDiverged(payload, None)
        if kind == "interrupted":
            raise TrainingInterrupted(payload)
        if kind == "input":
            raise InputError(payload)
        raise RuntimeError(f"training {self.what} in a second process failed ({payload})")

    def _follow(self, on_start, on_epoch, replay: bool = False) -> None:
        """Show the child's progress until it has said how it ended: each run it started (an
        ensemble's share trains several, one after the other) as one start line saying how many
        epochs it has done so far, then its epochs from there on as they come."""
        self.poll()
        while True:
            events, self.events = self.events, []
            i = 0
            while i < len(events):
                kind, item = events[i]
                if replay and kind == "start":
                    if on_start is not None:
                        on_start(item)
                    i += 1
                    continue
                if kind == "epoch":  # of the run whose start line is shown
                    if on_epoch is not None:
                        on_epoch(item)
                    i += 1
                    continue
                j = i + 1  # a start: the epochs it has done so far are summed up in its line
                while j < len(events) and events[j][0] == "epoch":
                    j += 1
                done = events[j - 1][1].epoch if j > i + 1 else item.get("start_epoch", 0)
                if on_start is not None:
                    on_start({**item, "beside": done})
                i = j
            if self.ended is not None:
                break
            try:
                self._take(self.queue.get(timeout=POLL))
            except queue_mod.Empty:
                self._alive()


def _ignored(signum) -> bool:
    """Whether this process ignores ``signum`` (False where it cannot tell: not the main thread)."""
    try:
        return signal.getsignal(signum) is signal.SIG_IGN
    except ValueError:
        return False


def _stop_signals(ignore_sigint: bool) -> list:
    """The signals that stop a child at its epoch: SIGTERM (the parent's stop()), SIGINT (Ctrl-C at
    the terminal) unless the parent ignores it, and SIGHUP (a closed terminal) unless ignored, as
    under nohup, where the child inherits that."""
    signals = [signal.SIGTERM] + ([] if ignore_sigint else [signal.SIGINT])
    if hasattr(signal, "SIGHUP") and not _ignored(signal.SIGHUP):
        signals.append(signal.SIGHUP)
    return signals


def _absorb(signals: list) -> None:
    """From here on ``signals`` do nothing: the child's work is over, what remains is its exit."""
    for signum in signals:
        signal.signal(signum, _nothing)


def _nothing(signum, frame) -> None:
    pass


def _child(
    train,
    table,
    model_cfg,
    cfg,
    options: dict,
    out: str | None,
    threads: int,
    queue,
    ignore_sigint: bool = False,
) -> None:
    """The child's whole life: train, write the model to ``out`` (None: ``train`` writes what it
    trains itself), say how it ended. Once it has said so, a stopping signal changes nothing: it
    would raise in the middle of the process's exit (multiprocessing's clean-up, a traceback)."""
    import torch

    from durability_cli.artifact import save_bundle
    from durability_cli.training import TrainingDiverged, TrainingInterrupted

    torch.set_num_threads(threads)
    stopping = []

    def interrupt(signum, frame):  # the first signal stops training at its epoch; later ones wait
        if not stopping:
            stopping.append(signum)
            raise KeyboardInterrupt

    signals = _stop_signals(ignore_sigint)
    for signum in signals:
        signal.signal(signum, interrupt)
    parent = os.getppid()

    def on_epoch(log) -> None:
        if os.getppid() != parent:  # the parent was killed outright: stop here, checkpoint kept
            raise KeyboardInterrupt
        queue.put(("epoch", log))

    try:
        bundle = train(
            table,
            model_cfg,
            cfg,
            on_start=lambda info: queue.put(("start", info)),
            on_epoch=on_epoch,
            **options,
        )
        _absorb(signals)  # trained: what is left (the file, the message) is done whatever comes
        if out is not None:
            save_bundle(bundle, out)
        queue.put(("done",))
    except TrainingDiverged as exc:  # (the template: its `argument` names become flags or stay names)
        queue.put(("diverged", exc.template))
    except TrainingInterrupted as exc:
        queue.put(("interrupted", exc.template))
    except KeyboardInterrupt:
        queue.put(("interrupted", "training interrupted before its first epoch ended"))
    except InputError as exc:
        queue.put(("input", exc.template))
    except BaseException as exc:  # noqa: BLE001 - whatever it was, the parent must hear of it
        queue.put(("error", "".join(traceback.format_exception_only(type(exc), exc)).strip()))
        traceback.print_exc()
    finally:
        _absorb(signals)
        queue.close()
        queue.join_thread()
