"""Small shared fixtures: a CLI runner and a writer of tiny CSV files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner


def pytest_configure(config):
    """One torch thread in each pytest-xdist worker (`make test` runs one per core): two workers
    of two threads each fight over two cores, and the suite's small models gain nothing from a
    second thread (the accuracy tests' training took 1.14 x as long with two threads while another
    process held the other core)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
    # `train --jobs` auto would start a second process for --trend-line auto's second candidate in
    # every test that trains with it, on cores the other worker already holds; the tests of --jobs
    # (tests/test_line_choice.py) give it, and the subprocesses the tests start inherit this
    os.environ.setdefault("DURABILITY_JOBS", "1")


# The files that take longest, longest first (seconds summed over each file's tests in one worker
# of `make test`, `python -m pytest -n 2 --dist loadfile --durations=0`; session 56: 1,267 s in
# all, in 649 s of wall time, so the two workers end within seconds of each other). `make test`
# hands files to its two workers in collection order (--no-loadscope-reorder), so the long ones
# start first and the many short ones fill the gaps at the end, instead of a file of 3 minutes starting last while the other worker waits
# (pytest-xdist's default order is by number of tests). The two accuracy files train one model
# each in a module fixture: apart, the two trainings run in the two workers at once.
LONGEST_FIRST = (  # each file's test seconds in session 56's `make test` (--durations=0)
    "test_accuracy_ball.py",  # 88
    "test_accuracy.py",  # 76
    "test_tune.py",  # 76
    "test_streaming.py",  # 74
    "test_distributed.py",  # 74
    "test_line_choice.py",  # 72
    "test_cli.py",  # 67
    "test_training.py",  # 66
    "test_demo.py",  # 64
    "test_train_chunks.py",  # 61
    "test_member_jobs.py",  # 57
    "test_bad_inputs.py",  # 42
    "test_latent.py",  # 34
    "test_memory.py",  # 33
)


def pytest_collection_modifyitems(config, items):
    """Tests of the files in LONGEST_FIRST first, in its order; each file's tests keep theirs."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write_csv(tmp_path):
    """``write_csv(text, name="data.csv") -> str``: dedent ``text``, write it under tmp_path."""

    def write(text: str, name: str = "data.csv") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture(scope="session")
def coating_slice(tmp_path_factory):
    """``coating_slice(n_specimens, n_rows, first=0) -> Path``: specimens of
    sample_data/coating.csv (``n_specimens`` of them in id order, from the ``first``-th, 0-based)
    cut to their first rows, written once per session (read-only)."""
    import pandas as pd

    sample = Path(__file__).resolve().parents[1] / "sample_data" / "coating.csv"
    made: dict[tuple[int, int, int], Path] = {}

    def make(n_specimens: int, n_rows: int, first: int = 0) -> Path:
        key = (n_specimens, n_rows, first)
        if key not in made:
            df = pd.read_csv(sample)
            keep = sorted(df.specimen_id.unique())[first : first + n_specimens]
            df = df[df.specimen_id.isin(keep) & (df.groupby("specimen_id").cumcount() < n_rows)]
            path = tmp_path_factory.mktemp("coating") / f"coating_{n_specimens}x{n_rows}_from{first}.csv"
            df.to_csv(path, index=False)
            made[key] = path
        return made[key]

    return make


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib Figures written with plotting.save_figure during a test (by the library or
    a command), kept for inspection; the files are still written."""
    from durability_cli import plotting

    drawn: list = []
    save = plotting.save_figure

    def keep(fig, path):
        drawn.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plotting, "save_figure", keep)
    return drawn


# -- a small table, a plan with future rows, a tiny model trained once (tests of bad inputs) ---------
@pytest.fixture(scope="session")
def small(coating_slice) -> Path:
    """10 coating specimens x 40 rows."""
    return coating_slice(10, 40)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """``tiny_model(data) -> Path``: a tiny model (2 epochs, 8 units, one layer) trained on the
    table ``data`` through the command line, once per table and session (read-only)."""
    from durability_cli.cli import app

    made: dict[Path, Path] = {}

    def train(data: Path) -> Path:
        if data not in made:
            out = tmp_path_factory.mktemp("model") / "m.safetensors"
            args = ["train", str(data), "-o", str(out), "--epochs", "2", "--hidden", "8", "--layers", "1"]
            r = CliRunner().invoke(app, [*args, "--quiet"])
            assert r.exit_code == 0, r.stderr
            made[data] = out
        return made[data]

    return train


@pytest.fixture(scope="session")
def model(small, tiny_model) -> Path:
    """A tiny model trained on ``small`` (read-only)."""
    return tiny_model(small)


@pytest.fixture(scope="session")
def plan(small, tmp_path_factory) -> Path:
    """The small table with durability hidden after 20 rows: 20 future rows per specimen."""
    import numpy as np
    import pandas as pd

    df = pd.read_csv(small)
    df.loc[df.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
    path = tmp_path_factory.mktemp("plan") / "plan.csv"
    df.to_csv(path, index=False)
    return path


# The CLI in a child that copies its own /proc/self/status at exit: VmHWM is the child's own peak.
# (The rusage of a child started by subprocess would carry the pytest parent's high-water mark
# over fork + exec, hiding what the command itself used.)
_PEAK_CHILD = (
    "import atexit, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write(open('/proc/self/status').read()))\n"
    "sys.argv = ['durability', *sys.argv[2:]]\n"
    "from durability_cli.cli import main\n"
    "main()\n"
)


@pytest.fixture
def cli_peak(tmp_path):
    """cli_peak(ARGS) runs ``durability ARGS`` in a fresh process with one thread and a clean
    environment and returns its peak resident memory in bytes (Linux /proc only)."""
    return lambda args: _cli_peak_bytes(args, tmp_path / "status.txt")


def _cli_peak_bytes(args: list[str], status_file: Path) -> int:
    import os
    import subprocess
    import sys

    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ} | {"OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", _PEAK_CHILD, str(status_file), *args], env=env, check=True)
    hwm = next(x for x in status_file.read_text().splitlines() if x.startswith("VmHWM:"))
    return int(hwm.split()[1]) * 1024


@pytest.fixture(scope="session", autouse=True)
def _interruptible():
    """Ctrl-C must reach the training runs the interrupt tests start. A command put in the
    background by a non-interactive shell (``make test &`` in a script, ``nohup ... &``) starts with
    SIGINT ignored, and its children inherit that: the runs would then finish through the signal.
    Python resets its own handler, not an ignored disposition, so the suite restores it here."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


def _signal_masks(pid: int) -> str:
    """The blocked, ignored and caught signal masks of process ``pid`` (Linux; else empty)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return ""
    return ", ".join(x.replace("\t", " ") for x in lines if x.startswith(("SigBlk", "SigIgn", "SigCgt")))


@pytest.fixture
def interrupt_at_checkpoint():
    """``interrupt_at_checkpoint(CMD, CKPT, env=ENV, sig=SIGINT) -> (exit code, stderr)``: start
    CMD, wait until it has written CKPT (a complete epoch), send the signal, wait for the end.
    Fails if the run ends before it could be interrupted."""
    import signal
    import subprocess
    import time

    def run(cmd, ckpt, *, env, sig=signal.SIGINT):
        start = time.monotonic()
        mask = getattr(signal, "pthread_sigmask", None)  # what CMD inherits (not on Windows)
        blocked = sorted(int(x) for x in mask(signal.SIG_BLOCK, [])) if mask else None
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not Path(ckpt).exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be interrupted"
        seen = time.monotonic() - start
        masks = _signal_masks(proc.pid)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        if proc.returncode != 130:  # every caller expects 130
            # the signal did not stop it (seen once in CI: exit 0, nothing on stderr): say when it
            # was sent and what the run left, for whoever reads the failure
            left = sorted(p.name for p in Path(ckpt).parent.iterdir())
            stderr += (
                f"\n[interrupt_at_checkpoint: {sig!r} sent {seen:.2f} s after the start, once "
                f"{Path(ckpt).name} existed; the run ended {time.monotonic() - start:.2f} s after "
                f"the start with exit code {proc.returncode}; its folder holds {left}; its signal "
                f"masks just before (/proc/PID/status, bit {int(sig) - 1} is this signal): {masks}; the "
                f"signals this test process blocked when it started the run: {blocked}]"
            )
        return proc.returncode, stderr

    return run


@pytest.fixture(scope="session")
def same_weights():
    """``same_weights(a, b) -> bool``: two model files (safetensors) hold the same tensors, bit for
    bit (the same training given two ways)."""
    from safetensors.torch import load_file

    def same(a: Path, b: Path) -> bool:
        x, y = load_file(a), load_file(b)
        return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)

    return same
