"""``--trend-line auto`` (line_choice.py): both candidates train, the one with the lower validation
RMSE is kept, and it is exactly the model that training with that choice alone gives; an
interrupted choice resumes to the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.line_choice import line_wins, member_val_rmse

SMALL = [
    "--hidden",
    "8",
    "--layers",
    "1",
    "--batch-size",
    "2",
    "--epochs",
    "6",
    "--patience",
    "100",
    "--seed",
    "3",
]


@pytest.fixture(scope="module")
def table(coating_slice) -> Path:
    return coating_slice(8, 30)


@pytest.fixture(scope="module")
def auto_toml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("line") / "auto.toml"
    path.write_text('[model]\ntrend_line = "auto"\n')
    return path


def _cmd(table: Path, auto_toml: Path, out: Path, *extra: str) -> list[str]:
    """The command line of the interrupted runs below: 28 epochs of the small model, auto. Enough
    that with --jobs 2 the first candidate is still training when the second process has written
    its first epoch (measured: at epoch 15-19 of 28; the second process takes 4-8 s to start)."""
    return [sys.executable, "-m", "durability_cli", "train", str(table), "-o", str(out), *SMALL] + [
        "--epochs",
        "28",
        "--config",
        str(auto_toml),
        "--quiet",
        *extra,
    ]


@pytest.fixture(scope="module")
def uninterrupted(table, auto_toml, tmp_path_factory) -> Path:
    """The model an uninterrupted run of ``_cmd`` writes (one process: this one, the same command
    line; the interrupted runs and their resumes are the processes tested)."""
    full = tmp_path_factory.mktemp("full") / "full.safetensors"
    r = CliRunner().invoke(app, _cmd(table, auto_toml, full, "--jobs", "1")[3:])
    assert r.exit_code == 0, r.output
    return full


@pytest.fixture(scope="module")
def auto_one(table, auto_toml, tmp_path_factory) -> tuple[Path, str, int]:
    """SMALL with --trend-line auto in one process (--jobs 1), read by the two tests below: the
    model file, what the command said on stderr, and how many times it chose a mixed-effects path
    (with no path chosen before it)."""
    from durability_cli import mixed_effects, training

    chosen = []
    real = mixed_effects.choose
    auto = tmp_path_factory.mktemp("auto") / "auto.safetensors"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mixed_effects, "choose", lambda *a, **k: chosen.append(1) or real(*a, **k))
        mp.setattr(training, "_PATHS_SEEN", {})
        r = CliRunner().invoke(
            app, ["train", str(table), "-o", str(auto), *SMALL, "--config", str(auto_toml), "--jobs", "1"]
        )
    assert r.exit_code == 0, r.output
    return auto, r.stderr, len(chosen)


def test_auto_keeps_the_candidate_that_validates_better(table, auto_one, same_weights, tmp_path, monkeypatch):
    """The model kept is the candidate with the lower mean validation RMSE, its file says which
    (a plain true / false, and why), the output names both candidates, and its weights are those
    of training with that choice given. The two candidates split the specimens alike, so the
    mixed-effects path is chosen once per member's split and shared (training._PATHS_SEEN): the
    same path, the same validation scores, as each run fitting its own."""
    from durability_cli import mixed_effects, training

    auto, stderr, n_chosen = auto_one
    assert n_chosen == 5  # one per member's split, not one per member of each candidate
    chosen = []
    real = mixed_effects.choose
    monkeypatch.setattr(mixed_effects, "choose", lambda *a, **k: chosen.append(1) or real(*a, **k))
    monkeypatch.setattr(training, "_PATHS_SEEN", {})  # the runs below fit their own
    monkeypatch.setattr(training, "_PATHS_KEPT", 0)
    runner = CliRunner()
    assert "Without the warm-up's line (1 of 2)" in stderr and "With the warm-up's line (2 of 2)" in stderr
    bundle = load_bundle(auto)
    scores = bundle.summary["trend_line_val_rmse"]  # each member's, of each candidate
    assert len(scores["with"]) == len(scores["without"]) == len(bundle.members) == 5
    votes = sum(b < a for a, b in zip(scores["without"], scores["with"], strict=True))
    kept = votes >= 3
    assert bundle.model_config.trend_line is kept
    why = bundle.summary["trend_line_auto"]
    assert why.startswith(f"auto: {'with' if kept else 'without'} the line (better on {votes} of 5 members")
    assert "trend line" in stderr  # the summary table's row, and inspect's
    shown = runner.invoke(app, ["inspect", str(auto)])
    text = " ".join((shown.stdout + shown.stderr).replace("│", " ").split())  # the table, unwrapped
    assert shown.exit_code == 0 and f"trend line {why[:40]}" in text
    assert not Path(f"{auto}.ckpt").exists() and not Path(f"{auto}.ckpt.without-line").exists()
    alone = {}
    for name, flag in (("line", "--trend-line"), ("plain", "--no-trend-line")):
        alone[name] = tmp_path / f"{name}.safetensors"
        r = runner.invoke(app, ["train", str(table), "-o", str(alone[name]), *SMALL, flag])
        assert r.exit_code == 0, r.output
    assert same_weights(auto, alone["line" if kept else "plain"])
    assert not same_weights(auto, alone["plain" if kept else "line"])
    assert len(chosen) == 10  # each alone run chose its members' paths itself
    for name in alone:  # the same path, and the same baseline scores, as shared
        theirs = load_bundle(alone[name])
        assert theirs.summary["mixed_effects"] == bundle.summary["mixed_effects"], name
        assert (
            theirs.summary["ensemble"]["val_baseline_rmse"] == bundle.summary["ensemble"]["val_baseline_rmse"]
        )
    scored = {n: member_val_rmse(load_bundle(p)) for n, p in alone.items()}
    assert scored["line"] == pytest.approx(scores["with"]) and scored["plain"] == pytest.approx(
        scores["without"]
    )


def test_auto_trains_once_where_the_line_cannot_apply(table, tmp_path):
    """With --monotonic the line has no step to add to: one training, without it, and why."""
    import durability_cli as dur

    model = dur.train(
        str(table), trend_line="auto", monotonic="decreasing", hidden=8, layers=1, epochs=3, batch_size=2
    )
    assert model.bundle.model_config.trend_line is False
    assert "--monotonic decreasing" in model.bundle.summary["trend_line_auto"]
    assert "trend_line_val_rmse" not in model.bundle.summary
    tuned = dur.train(str(table), init_from=model, trend_line="auto", epochs=2)
    assert tuned.bundle.model_config.trend_line is False
    assert tuned.bundle.summary["trend_line_auto"] == "auto: without the line, as the model it fine-tunes"


@pytest.mark.parametrize(
    ("without", "with_line", "wins"),
    [
        ([0.5], [0.4], True),
        ([0.5], [0.5], False),  # a tie keeps the model without the line
        ([1.0, 1.0, 1.0], [2.0, 0.9, 0.9], True),  # most members, not the mean
        ([1.0, 1.0, 1.0], [0.1, 1.1, 1.1], False),
        ([1.0, 1.0, 1.0, 1.0], [0.9, 0.9, 1.1, 1.1], False),
        ([1.0, None, 1.0], [0.9, 0.1, 1.1], False),  # a member without a score does not vote
        ([None], [0.1], False),
    ],
)
def test_the_line_must_validate_better_on_most_members(without, with_line, wins):
    assert line_wins(without, with_line) is wins


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_a_trend_line_that_is_not_true_false_or_auto_is_one_error_line(table, tmp_path, value):
    config = tmp_path / "bad.toml"
    config.write_text(f"trend_line = {value}\n")
    out = tmp_path / "m.safetensors"
    r = CliRunner().invoke(app, ["train", str(table), "-o", str(out), "--config", str(config)])
    assert r.exit_code == 2 and "trend_line must be true, false or auto" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    ("jobs", "written", "resume_jobs"),
    [("1", ".without-line", "1"), ("2", ".line", "2")],
)
def test_an_interrupted_choice_resumes_to_the_same_model(
    table,
    auto_toml,
    tmp_path,
    interrupt_at_checkpoint,
    same_weights,
    uninterrupted,
    jobs,
    written,
    resume_jobs,
):
    """SIGINT to the process it was started as. One after the other (--jobs 1), stopped while the
    line's candidate trains: the first one is finished and kept beside the checkpoint. Both at
    once (--jobs 2), stopped once the second process has written its own checkpoint (CKPT.line):
    the parent passes the signal on and waits for it. Either way the run exits 130 and `--resume`
    gives the model an uninterrupted run writes, and leaves no checkpoint (resuming the second
    layout in one process: the test below)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    part = tmp_path / "part.safetensors"
    ckpt = Path(f"{part}.ckpt")
    code, stderr = interrupt_at_checkpoint(
        _cmd(table, auto_toml, part, "--jobs", jobs), Path(f"{ckpt}{written}"), env=env, sig=signal.SIGINT
    )
    assert code == 130, stderr
    assert "interrupted" in stderr and f"--resume {ckpt}" in stderr
    assert Path(f"{ckpt}{written}").exists() and ckpt.exists() and not part.exists()
    done = subprocess.run(
        _cmd(table, auto_toml, part, "--resume", str(ckpt), "--jobs", resume_jobs),
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert same_weights(uninterrupted, part)
    assert (
        load_bundle(part).summary["trend_line_auto"] == load_bundle(uninterrupted).summary["trend_line_auto"]
    )
    assert [p.name for p in tmp_path.iterdir() if ".ckpt" in p.name] == []


def test_a_finished_first_candidate_from_another_table_is_refused(coating_slice, tmp_path):
    """A run stopped between its two candidates (the first finished beside the checkpoint, the
    checkpoint still the first one's) and resumed on another table: the line's candidate starts
    afresh: the first one, made on another table, is refused in one line before any training."""
    import durability_cli as dur
    from durability_cli.artifact import save_bundle
    from durability_cli.errors import InputError
    from durability_cli.training import TrainingInterrupted, fingerprint

    tiny = dict(hidden=8, layers=1, epochs=2, ensemble=1)
    a, b = coating_slice(8, 30), coating_slice(8, 25)
    ckpt = tmp_path / "run.ckpt"

    def stop(log):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):  # leaves the first candidate's checkpoint
        dur.train(a, trend_line=False, checkpoint=ckpt, on_epoch=stop, **tiny)
    first = dur.train(a, trend_line=False, **tiny).bundle
    assert fingerprint(dur.read(a)) == first.summary["data_fingerprint"]  # as the checkpoint's
    save_bundle(first, f"{ckpt}.without-line")
    before = ckpt.read_bytes()
    with pytest.raises(InputError, match=r"run\.ckpt\.without-line: .* made on a different table"):
        dur.train(b, trend_line="auto", checkpoint=ckpt, resume=ckpt, **tiny)
    assert ckpt.read_bytes() == before  # nothing trained, nothing overwritten
    resumed = dur.train(a, trend_line="auto", checkpoint=ckpt, resume=ckpt, **tiny)  # the same table
    assert resumed.bundle.summary["trend_line_val_rmse"]["without"] == [first.summary["best_val_rmse"]]


def test_two_jobs_train_the_candidates_at_once_into_the_same_model(
    table, auto_toml, auto_one, tmp_path, same_weights
):
    """--jobs 2 trains the line's candidate in a second process while this one trains the other:
    the model file is the one --jobs 1 writes (``auto_one``), tensor for tensor, with the same
    choice and scores; the start lines say which trains where, the summary says how long the pair
    took, and none of the candidates' checkpoints is left behind."""
    out = {"1": auto_one[0], "2": tmp_path / "j2.safetensors"}
    r = CliRunner().invoke(
        app, ["train", str(table), "-o", str(out["2"]), *SMALL, "--config", str(auto_toml), "--jobs", "2"]
    )
    assert r.exit_code == 0, r.output
    for jobs, stderr in (("1", auto_one[1]), ("2", r.stderr)):
        text = " ".join(stderr.split())
        beside = "the line's candidate trains at the same time in a second process" in text
        assert beside is (jobs == "2")
        assert ("With the warm-up's line (2 of 2)" in text) and (
            ("trained at the same time in a second process" in text) is (jobs == "2")
        )
    assert same_weights(out["1"], out["2"])
    one, two = load_bundle(out["1"]), load_bundle(out["2"])
    assert one.summary["trend_line_auto"] == two.summary["trend_line_auto"]
    assert one.summary["trend_line_val_rmse"] == two.summary["trend_line_val_rmse"]
    assert "trend_line_wall_seconds" not in one.summary
    assert 0 < two.summary["trend_line_wall_seconds"]
    left = [p.name for folder in (tmp_path, out["1"].parent) for p in folder.iterdir() if ".ckpt" in p.name]
    assert left == []


@pytest.mark.parametrize(
    ("flag", "env", "message"),
    [
        ("-1", "1", "--jobs must be 0 (auto) or at least 1, got -1"),
        ("0", "two", "$DURABILITY_JOBS must be a whole number of at least 1, got 'two'"),
    ],
)
def test_a_bad_jobs_is_one_error_line(table, tmp_path, monkeypatch, flag, env, message):
    monkeypatch.setenv("DURABILITY_JOBS", env)
    out = tmp_path / "m.safetensors"
    r = CliRunner().invoke(app, ["train", str(table), "-o", str(out), "--jobs", flag])
    assert r.exit_code == 2 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_jobs_left_at_auto_follows_durability_jobs(monkeypatch):
    from durability_cli.aside import resolve_jobs, usable_cpus

    monkeypatch.setenv("DURABILITY_JOBS", "3")
    assert resolve_jobs(0, 1) == 3 and resolve_jobs(1, 1) == 1
    monkeypatch.delenv("DURABILITY_JOBS")
    assert resolve_jobs(0, 1) == usable_cpus()
    assert resolve_jobs(0, 2) == max(1, usable_cpus() // 2)  # --threads 2 each
    assert resolve_jobs(0, 10**6) == 1


def test_stopped_while_waiting_for_the_second_process_it_resumes_to_the_same_model(
    table, tmp_path, uninterrupted
):
    """Interrupted once the first candidate is done, while this process shows the second's
    progress: the second process is stopped at its epoch (or has finished), the error names the
    checkpoint to resume from, and resuming in one process (in Python), from what the two left,
    gives the model of an uninterrupted run."""
    import durability_cli as dur
    from durability_cli.training import TrainingInterrupted

    small = dict(hidden=8, layers=1, batch_size=2, epochs=28, patience=100, seed=3, trend_line="auto")
    whole = load_bundle(uninterrupted)
    ckpt = tmp_path / "run.ckpt"

    def stop_at_the_second(info):
        if info.get("line_candidate") == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as stopped:
        dur.train(str(table), jobs=2, checkpoint=ckpt, on_start=stop_at_the_second, **small)
    assert stopped.value.cli_message().endswith(f"continue with --resume {ckpt}")  # (resume=, in Python)
    assert Path(f"{ckpt}.without-line").exists()
    assert Path(f"{ckpt}.line").exists() or Path(f"{ckpt}.with-line").exists()
    resumed = dur.train(str(table), jobs=1, checkpoint=ckpt, resume=ckpt, **small).bundle
    for a, b in zip(whole.members, resumed.members, strict=True):
        x, y = a.model.state_dict(), b.model.state_dict()
        assert all(bool((x[k] == y[k]).all()) for k in x)
    assert resumed.summary["trend_line_auto"] == whole.summary["trend_line_auto"]
