"""Signals and the second process that trains beside the command (aside.py): a child whose work is
done takes a late signal quietly, and a command started with Ctrl-C ignored (a shell script's
background job) does not stop because its child took the Ctrl-C."""

from __future__ import annotations

import os
import signal

import pytest

from durability_cli import aside
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.schema import load_dataset
from durability_cli.training import train

STOPS = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])


@pytest.fixture
def handlers_kept():
    """This process's handlers of the stopping signals and torch's thread count (the child's life
    run here sets both), put back after the test."""
    import torch

    saved, threads = {sig: signal.getsignal(sig) for sig in STOPS}, torch.get_num_threads()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    torch.set_num_threads(threads)


class _Said:
    """What the child puts on its queue (the parent's end of a queue the child closes)."""

    def __init__(self):
        self.messages = []

    def put(self, message) -> None:
        self.messages.append(message)

    def close(self) -> None:
        pass

    def join_thread(self) -> None:
        pass


def _nothing_to_train(table, model_cfg, cfg, on_start=None, on_epoch=None):
    return None


def test_a_signal_once_the_child_s_work_is_done_changes_nothing(handlers_kept):
    """The child's life run here: once it has said it is done, SIGINT (Ctrl-C reaching the group as
    the child exits) raised KeyboardInterrupt in multiprocessing's clean-up, which printed a
    traceback from the spawned interpreter after the command's own line."""
    said = _Said()
    aside._child(_nothing_to_train, None, None, None, {}, None, 1, said)
    try:  # the handler runs at once, in this (the main) thread
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    except KeyboardInterrupt:
        pytest.fail("a signal after the child's work raised KeyboardInterrupt")
    assert said.messages == [("done",)]


def test_a_command_that_ignores_ctrl_c_has_a_child_that_ignores_it_too(
    coating_slice, tmp_path, handlers_kept
):
    """This process ignores SIGINT, as a background job of a shell script does. A SIGINT that
    reaches the child while it trains (a signal to the whole group) stopped the child alone, and
    so the command (`tune` or `train --jobs 2` said "interrupted" where `--jobs 1` went on). Now
    the child goes on and its model comes back with every epoch trained."""
    ds = load_dataset(str(coating_slice(4, 20)), static=["material"])
    model_cfg = ModelConfig(hidden=8, layers=1)
    cfg = TrainConfig(epochs=25, patience=100, batch_size=2, seed=1, ensemble=1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sent = []

    def signal_once(*_) -> None:
        if not sent:
            os.kill(box.process.pid, signal.SIGINT)
            sent.append(True)

    with aside.Aside(train, ds, model_cfg, cfg, {}, tmp_path / "m.safetensors", "the test's run") as box:
        bundle = box.result(signal_once, signal_once)
    assert sent and bundle is not None
    assert bundle.summary["epochs_run"] == 25, bundle.summary
