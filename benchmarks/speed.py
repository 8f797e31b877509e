"""Speed and memory suite: each figure next to a floor measured in the same run.

- training: a free-running epoch (teacher_forcing=0) vs a teacher-forced epoch (=1, the fused
  path) of the same model on the same specimens, with variable and with equal series lengths;
- forecast: N specimens x H steps, deterministic, vs the bare fused RNN over the same batch and
  rows (the floor) and vs stepping the bare RNN H times; Monte Carlo throughput; one specimen's
  latency;
- loading: schema.load_dataset + to_series + to_tensors vs pyarrow's readers, Parquet and CSV,
  each in its own process (time and peak resident memory);
- start-up: ``durability --help`` and ``durability schema`` vs ``python -c pass``.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import PYTHON, ROOT, THREAD_ENV, header, run_python, say, timed
from benchmarks.workloads import dataset, random_walk_table, tiny_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.data import to_series, to_tensors
from durability_cli.forecasting import ForecastConfig, forecast, last_observed, rollout
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import DATASET_INFO, make_split
from durability_cli.training import free_run_rmse, split_specimens, train

FULL = {
    "train_specimens": 32,
    "train_epochs": 4,
    "forecast_specimens": 10_000,
    "forecast_warmup": 20,
    "forecast_steps": 100,
    "mc_samples": 100,
    "mc_specimens_mean": 10_000,
    "mc_specimens_sample": 500,
    "latency_steps": 1000,
    "load_specimens": 10_000,
    "load_rows": 1_000,
    "load_repeat": 5,
    "startup_repeat": 5,
}
QUICK = FULL | {
    "train_specimens": 16,
    "train_epochs": 3,
    "forecast_specimens": 1_000,
    "mc_specimens_mean": 1_000,
    "mc_specimens_sample": 100,
    "load_specimens": 1_000,
    "load_rows": 1_000,
    "startup_repeat": 3,
}
CACHE = Path(tempfile.gettempdir()) / "durability-bench"
# Specimens per call for the "chunked" variants: on CPU, torch's LSTM slows down per specimen once
# a batch's gate activations outgrow the caches (measured: ~2x slower per specimen at 10,000).
CACHE_CHUNK = 2048


# -- training ------------------------------------------------------------------------------------
def training_epochs(s: dict) -> dict:
    """Epoch seconds of train() with teacher_forcing 1.0 and 0.0, same data, same model."""
    info = DATASET_INFO["battery"]
    split = make_split("battery", s["train_specimens"], 2, seed=0)
    schema = Schema("specimen_id", "time", info.target, info.covariates)
    variable = split["train"]
    shortest = int(variable.groupby("specimen_id").size().min())
    equal = variable[variable.groupby("specimen_id").cumcount() < shortest]
    out = {"dataset": "battery", "specimens": s["train_specimens"], "epochs": s["train_epochs"], "cases": {}}
    for label, frame in (("variable_lengths", variable), ("equal_lengths", equal)):
        ds = validate(frame, schema, source=label)
        lengths = frame.groupby("specimen_id").size()
        case = {"rows": len(frame), "length_min": int(lengths.min()), "length_max": int(lengths.max())}
        for mode, p in (("teacher_forced", 1.0), ("free_running", 0.0)):
            logs = []
            cfg = TrainConfig(
                epochs=s["train_epochs"], teacher_forcing=p, val_context=info.context, ensemble=1
            )
            bundle = train(ds, ModelConfig(), cfg, on_epoch=lambda log, logs=logs: logs.append(log.seconds))
            steady = logs[1:]  # the first epoch pays one-off costs
            # the free-running validation at the end of every epoch is the same in both modes
            series = to_series(ds)
            _, val_idx = split_specimens(len(series.ids), cfg.val_fraction, cfg.seed)
            val_t = to_tensors(series.take(val_idx), bundle.scaler)
            val = timed(lambda b=bundle, v=val_t: free_run_rmse(b.model, v, b.scaler, info.context), repeat=3)
            case[mode] = {
                "epoch_seconds": logs,
                "median": float(np.median(steady)),
                "min": float(np.min(steady)),
                "validation_seconds": val["median"],
            }
        tf, fr = case["teacher_forced"], case["free_running"]
        case["ratio"] = fr["median"] / tf["median"]
        case["ratio_min"] = fr["min"] / tf["min"]
        net_tf = max(tf["median"] - tf["validation_seconds"], 1e-9)
        case["ratio_without_validation"] = (fr["median"] - fr["validation_seconds"]) / net_tf
        out["cases"][label] = case
        say(f"[speed] training {label}: free {fr['median']:.3f} s vs forced {tf['median']:.3f} s per epoch")
    out["batch"] = training_batch_floors(bundle.model, TrainConfig().batch_size, shortest, info.context)
    return out


def training_batch_floors(model, batch: int, rows: int, warmup: int, repeat: int = 5) -> dict:
    """Forward + backward of one training batch, in milliseconds: the model free-running after a
    measured warm-up and fully teacher-forced, and its bare RNN alone over the same rows, fused
    in one call and stepped one row at a time (the same cell functions the model's step loop
    uses for a small batch) after the same fused warm-up. The stepped bare RNN is the floor of
    any free run: each step's input waits for the previous output, so no fused kernel applies."""
    model.train()
    g = torch.Generator().manual_seed(0)
    C = model.rnn.input_size - (model.cfg.lags + 2 + model.n_static)
    x, dt = torch.randn(batch, rows, C, generator=g), 0.1 * torch.randn(batch, rows, generator=g)
    y = torch.randn(batch, rows, generator=g).cumsum(1) * 0.01
    inp = torch.randn(batch, rows, model.rnn.input_size, generator=g)

    def model_pass(feed):
        r = model(x, dt, y, feed)
        (r.mean.pow(2).mean() + (r.scale.log().mean() if r.scale is not None else 0)).backward()

    def bare_fused():
        h, _ = model.rnn(inp)
        h.sum().backward()

    def bare_stepped():
        h, state = model.rnn(inp[:, :warmup])
        outs, state = [h], model._cell_state(state, batch, inp)
        for t in range(warmup, rows):
            h, state = model._cell_step(inp[:, t], state)
            outs.append(h)
        torch.cat(outs, dim=1).sum().backward()

    free = torch.zeros(batch, rows, dtype=torch.bool)
    free[:, :warmup] = True
    forced = torch.ones(batch, rows, dtype=torch.bool)
    cases = {
        "model_free_running": lambda: model_pass(free),
        "model_teacher_forced": lambda: model_pass(forced),
        "bare_rnn_stepped": bare_stepped,
        "bare_rnn_fused": bare_fused,
    }
    out = {"batch": batch, "rows": rows, "warmup": warmup}
    for name, fn in cases.items():
        out[name] = {
            k: v * 1e3 if k != "runs" else [r * 1e3 for r in v] for k, v in timed(fn, repeat, 1).items()
        }
    model.zero_grad()
    floor = out["bare_rnn_stepped"]["min"]
    out["free_over_forced"] = out["model_free_running"]["min"] / out["model_teacher_forced"]["min"]
    out["free_over_stepped_floor"] = out["model_free_running"]["min"] / floor
    out["stepped_floor_over_fused"] = floor / out["bare_rnn_fused"]["min"]
    say(
        f"[speed] training batch: free {out['model_free_running']['min']:.1f} ms, stepped floor {floor:.1f} ms, "
        f"fused floor {out['bare_rnn_fused']['min']:.1f} ms"
    )
    return out


# -- forecasting ---------------------------------------------------------------------------------
def _profile(fn, top: int = 12) -> list[dict]:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, name), (_, nc, tt, ct, _) in stats.stats.items():
        rows.append(
            {"function": f"{Path(file).name}:{line}({name})", "calls": nc, "tottime": tt, "cumtime": ct}
        )
    rows.sort(key=lambda r: -r["tottime"])
    return rows[:top]


@torch.no_grad()
def rnn_floors(model, batch: int, rows: int, warmup: int, repeat: int = 3) -> dict:
    """The bare RNN over [batch, rows, F] inputs: fused in one call, and warm-up fused then one
    call per remaining step (what any free run must at least do)."""
    x = torch.randn(batch, rows, model.rnn.input_size)

    def fused():
        model.rnn(x)

    def stepped():
        _, state = model.rnn(x[:, :warmup])
        for t in range(warmup, rows - 1):
            _, state = model.rnn(x[:, t : t + 1], state)

    def stepped_without_onednn():  # the library's step loop switches oneDNN off the same way
        before = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        try:
            stepped()
        finally:
            torch.backends.mkldnn.enabled = before

    def fused_chunked():
        for lo in range(0, batch, CACHE_CHUNK):
            model.rnn(x[lo : lo + CACHE_CHUNK])

    on, off = timed(stepped, repeat), timed(stepped_without_onednn, repeat)
    # the stepwise reference is the faster of the two back ends
    out = {"fused": timed(fused, repeat), "stepwise": min(on, off, key=lambda t: t["min"])}
    out["stepwise"] = out["stepwise"] | {"onednn_min": on["min"], "no_onednn_min": off["min"]}
    if batch > CACHE_CHUNK:
        out["fused_chunked"] = timed(fused_chunked, repeat)
    return out


def forecast_speed(s: dict) -> dict:
    bundle = tiny_bundle()
    N, W, H = s["forecast_specimens"], s["forecast_warmup"], s["forecast_steps"]
    ds = dataset(random_walk_table(N, W + H, warmup=W))
    series = to_series(ds)
    last = last_observed(series)
    cfg = ForecastConfig(samples=0)
    full = timed(lambda: forecast(bundle, ds, cfg), repeat=3, warmup=1)
    roll = timed(lambda: rollout(bundle, series, last, ForecastConfig(samples=0)), repeat=3)
    chunked_cfg = ForecastConfig(samples=0, rollout_batch=CACHE_CHUNK)
    chunked = timed(lambda: forecast(bundle, ds, chunked_cfg), repeat=3)
    floors = rnn_floors(bundle.model, N, W + H, W)
    out = {
        "specimens": N,
        "warmup_rows": W,
        "steps": H,
        "parameters": sum(p.numel() for p in bundle.model.parameters()),
        "forecast_seconds": full,
        "rollout_seconds": roll,
        "rnn_fused_seconds": floors["fused"],
        "rnn_stepwise_seconds": floors["stepwise"],
        "ratio_forecast_to_fused": full["min"] / floors["fused"]["min"],
        "ratio_rollout_to_fused": roll["min"] / floors["fused"]["min"],
        "ratio_forecast_to_stepwise": full["min"] / floors["stepwise"]["min"],
        "chunk_specimens": CACHE_CHUNK,
        "forecast_chunked_seconds": chunked,
        "rnn_fused_chunked_seconds": floors.get("fused_chunked"),
        "profile": _profile(lambda: forecast(bundle, ds, cfg)),
    }
    say(
        f"[speed] forecast {N} x {H}: {full['min']:.2f} s; fused floor {floors['fused']['min']:.2f} s, "
        f"stepwise floor {floors['stepwise']['min']:.2f} s"
    )
    return out


def monte_carlo(s: dict) -> dict:
    """Throughput with S sample paths: the default (mean-feedback) model draws paths around its
    mean path; a --feedback sample model feeds each path's own draws back (DeepAR style)."""
    W, H, S = s["forecast_warmup"], s["forecast_steps"], s["mc_samples"]
    out = {"samples": S, "steps": H}
    for label, feedback, N in (
        ("mean_feedback", "mean", s["mc_specimens_mean"]),
        ("sample_feedback", "sample", s["mc_specimens_sample"]),
    ):
        bundle = tiny_bundle(feedback=feedback)
        ds = dataset(random_walk_table(N, W + H, warmup=W))
        cfg = ForecastConfig(samples=S, quantiles=(0.1, 0.5, 0.9))
        # the profiled call doubles as the warm-up of the timed one
        profile = _profile(lambda b=bundle, d=ds, c=cfg: forecast(b, d, c), top=8)
        t = timed(lambda b=bundle, d=ds, c=cfg: forecast(b, d, c), repeat=1)
        det = timed(lambda b=bundle, d=ds: forecast(b, d, ForecastConfig(samples=0)), repeat=1)
        cells = N * S * H
        out[label] = {
            "specimens": N,
            "seconds": t["min"],
            "deterministic_seconds": det["min"],
            "specimen_sample_steps_per_second": cells / t["min"],
            "profile": profile,
        }
        say(f"[speed] Monte Carlo {label}: {N} x {S} x {H} in {t['min']:.2f} s")
    return out


def latency(s: dict) -> dict:
    """One specimen, ``latency_steps`` steps after a 20-row warm-up."""
    bundle = tiny_bundle()
    W, H = s["forecast_warmup"], s["latency_steps"]
    ds = dataset(random_walk_table(1, W + H, warmup=W))
    series = to_series(ds)
    last = last_observed(series)
    full = timed(lambda: forecast(bundle, ds, ForecastConfig(samples=0)), repeat=5, warmup=1)
    roll = timed(lambda: rollout(bundle, series, last, ForecastConfig(samples=0)), repeat=5)
    floors = rnn_floors(bundle.model, 1, W + H, W, repeat=5)
    out = {
        "steps": H,
        "forecast_seconds": full,
        "rollout_seconds": roll,
        "rnn_fused_seconds": floors["fused"],
        "rnn_stepwise_seconds": floors["stepwise"],
        "ms_per_step": 1000 * full["min"] / H,
        "rnn_ms_per_step": 1000 * floors["stepwise"]["min"] / H,
        "ratio_forecast_to_stepwise": full["min"] / floors["stepwise"]["min"],
        "profile": _profile(lambda: forecast(bundle, ds, ForecastConfig(samples=0)), top=10),
    }
    say(
        f"[speed] latency 1 x {H}: {full['min'] * 1000:.0f} ms (stepwise RNN {floors['stepwise']['min'] * 1000:.0f} ms)"
    )
    return out


# -- loading -------------------------------------------------------------------------------------
def _load_files(n_specimens: int, n_rows: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    CACHE.mkdir(parents=True, exist_ok=True)
    stem = CACHE / f"load_{n_specimens}x{n_rows}"
    files = {"parquet": stem.with_suffix(".parquet"), "csv": stem.with_suffix(".csv")}
    if not all(p.exists() for p in files.values()):
        say(f"[speed] writing {n_specimens * n_rows:,} rows to {stem}.parquet/.csv (cached) ...")
        table = pa.Table.from_pandas(random_walk_table(n_specimens, n_rows, seed=2), preserve_index=False)
        pq.write_table(table, files["parquet"])
        pacsv.write_csv(table, files["csv"])
    return files


def loading(s: dict) -> dict:
    n, rows = s["load_specimens"], s["load_rows"]
    files = _load_files(n, rows)
    out = {"rows": n * rows, "specimens": n, "files": {}}
    probe = str(ROOT / "benchmarks" / "load_probe.py")
    out["interpreter_peak_mib"] = run_python([probe, "none"])["peak_mib"]
    for fmt, path in files.items():
        entry = {"bytes": path.stat().st_size}
        # A fresh process per run, the two kinds alternating so that both see the same page cache
        # and neighbours; the fastest run of each (this shared machine varies 2-4x run to run).
        runs = {"pyarrow": [], "durability": []}
        for _ in range(s["load_repeat"]):
            for kind in runs:
                runs[kind].append(run_python([probe, kind, str(path)]))
        for kind, rs in runs.items():
            entry[kind] = min(rs, key=lambda r: r["seconds"])
            entry[kind]["all_seconds"] = [r["seconds"] for r in rs]
            say(
                f"[speed] load {fmt} {kind}: {entry[kind]['seconds']:.2f} s, {entry[kind]['peak_mib']:.0f} MiB peak"
            )
        d, a = entry["durability"], entry["pyarrow"]
        entry["time_ratio"] = d["seconds"] / a["seconds"]
        entry["memory_ratio"] = d["peak_mib"] / a["peak_mib"]
        # the memory the load itself added, above what the process held after its imports
        d_add = d["peak_mib"] - d["peak_mib_before"]
        a_add = a["peak_mib"] - a["peak_mib_before"]
        entry["added_memory_ratio"] = d_add / a_add if a_add > 0 else None
        out["files"][fmt] = entry
    return out


# -- start-up ------------------------------------------------------------------------------------
def startup(s: dict) -> dict:
    exe = str(Path(PYTHON).parent / "durability")
    sample = str(ROOT / "sample_data" / "coating.csv")
    commands = {
        "python -c pass": [PYTHON, "-c", "pass"],
        "durability --help": [exe, "--help"],
        "durability schema sample_data/coating.csv": [exe, "schema", sample],
        "python -c 'import torch'": [PYTHON, "-c", "import torch"],
    }
    env = os.environ | THREAD_ENV | {"COLUMNS": "100"}
    out = {}
    for label, cmd in commands.items():

        def go(cmd=cmd):
            subprocess.run(cmd, capture_output=True, check=True, env=env)

        out[label] = timed(go, repeat=s["startup_repeat"], warmup=1)
        say(f"[speed] {label}: {out[label]['median']:.3f} s")
    out["slowest_imports_for_help"] = _import_times([exe, "--help"], env)
    return out


def _import_times(cmd: list[str], env: dict) -> list[dict]:
    """The top-level packages that ``-X importtime`` charges the most cumulative time to."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", *cmd], capture_output=True, text=True, env=env, check=False
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]  # nested imports are indented by two more spaces per level
        if not name.startswith(" "):
            rows.append({"module": name.strip(), "cumulative_ms": int(parts[1]) / 1000})
    rows.sort(key=lambda r: -r["cumulative_ms"])
    return rows[:8]


def run(quick: bool) -> dict:
    s = QUICK if quick else FULL
    out = header("speed", quick) | {"settings": s}
    t0 = time.perf_counter()
    out["training"] = training_epochs(s)
    out["forecast"] = forecast_speed(s)
    out["monte_carlo"] = monte_carlo(s)
    out["latency"] = latency(s)
    out["loading"] = loading(s)
    out["startup"] = startup(s)
    out["suite_seconds"] = time.perf_counter() - t0
    return out
