"""What ``train`` does after each member's last epoch, timed as ratios in one process.

Two steps run once per member of every candidate, whatever the table's size, and on the small
tables of the test suite and of many users they cost more than the epochs:

- the scale head's refit (durability_cli/scale_refit.py): ``fit_head``, the gradient written out,
  against ``autograd_fit``, the same Adam steps through autograd and torch.optim.Adam (what it
  replaced), on the features of one free run of a model trained on the sample; both fits from
  the same head, and how far apart they land;
- the mixed-effects path's choice (``mixed_effects.choose``): one default ``train`` (an ensemble
  of 5, ``--trend-line auto``, ``--jobs 1``) with the choice kept per split
  (``training._PATHS_SEEN``) and with every run fitting its own: calls, seconds, and whether the two
  files hold the same path.

    python benchmarks/after_training.py [--data sample_data/coating.csv] [--repeat 5]

Writes results/after-training.json.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, header, one_thread, say, timed, write_result  # noqa: E402


def autograd_fit(head, features, errors, latent: bool):
    """scale_refit.fit_head as autograd and torch.optim.Adam take its steps (the code it replaced,
    and the reference tests/test_scale_refit.py holds it to)."""
    import torch

    from durability_cli import scale_refit

    log_spread = torch.zeros((), requires_grad=True) if latent else None
    opt = torch.optim.Adam(list(head.parameters()) + ([log_spread] if latent else []), lr=scale_refit.LR)
    for _ in range(scale_refit.STEPS):
        sd = scale_refit.band_scale(head, features, log_spread.exp() if latent else None)
        loss = (torch.log(sd) + 0.5 * (errors / sd) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return log_spread


def refit_cost(path: str, repeat: int) -> dict:
    from durability_cli import scale_refit
    from durability_cli.config import ModelConfig, TrainConfig
    from durability_cli.data import to_series, to_tensors
    from durability_cli.schema import load_dataset
    from durability_cli.training import scored_rows, train, warmup_feed, warmup_tensor

    ds = load_dataset(path)
    context = 20
    bundle = train(
        ds,
        ModelConfig(hidden=32, layers=1, trend_line=False),
        TrainConfig(epochs=3, val_context=context, ensemble=1, refit_scale=False),
    )
    t = to_tensors(to_series(ds), bundle.scaler)
    ctx = warmup_tensor(t, context)
    features, errors = scale_refit.free_run_features(
        bundle.model, t, warmup_feed(t, ctx), scored_rows(t, ctx)
    )
    heads = {}

    def run(name, fn):
        def once():
            heads[name] = copy.deepcopy(bundle.model.scale_head)
            fn(heads[name], features, errors, False)

        return once

    written = timed(run("written", scale_refit.fit_head), repeat=repeat, warmup=1)
    reference = timed(run("autograd", autograd_fit), repeat=repeat, warmup=1)
    a, b = heads["written"], heads["autograd"]
    apart = max(
        float((a.weight - b.weight).abs().max().detach()), float((a.bias - b.bias).abs().max().detach())
    )
    moved = float((b.weight - bundle.model.scale_head.weight).abs().max().detach())
    return {
        "rows": int(errors.numel()),
        "features": int(features.shape[1]),
        "steps": scale_refit.STEPS,
        "written_seconds": written,
        "autograd_seconds": reference,
        "ratio": written["median"] / reference["median"],
        "max_abs_difference": apart,
        "max_abs_move_of_the_reference": moved,
    }


def path_cost(path: str) -> dict:
    from durability_cli import mixed_effects, training
    from durability_cli.api import train as api_train

    real, default = mixed_effects.choose, training._PATHS_KEPT
    out = {}
    for name, kept in (("kept per split", default), ("fitted by every run", 0)):
        calls, seconds = [0], [0.0]

        def counted(*a, _calls=calls, _seconds=seconds, **k):
            t0 = time.perf_counter()
            _calls[0] += 1
            try:
                return real(*a, **k)
            finally:
                _seconds[0] += time.perf_counter() - t0

        mixed_effects.choose, training._PATHS_KEPT = counted, kept
        training._PATHS_SEEN.clear()
        try:
            t0 = time.perf_counter()
            model = api_train(path, static=["material"], epochs=3, jobs=1, trend_line="auto")
            total = time.perf_counter() - t0
        finally:
            mixed_effects.choose, training._PATHS_KEPT = real, default
        out[name] = {
            "choose_calls": calls[0],
            "choose_seconds": seconds[0],
            "train_seconds": total,
            "members": len(model.bundle.members),
            "path": model.bundle.summary.get(mixed_effects.NAME),
        }
    a, b = out["kept per split"], out["fitted by every run"]
    out["same_path"] = a.pop("path") == b.pop("path")
    out["choose_ratio"] = a["choose_seconds"] / b["choose_seconds"] if b["choose_seconds"] else None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "sample_data" / "coating.csv"), help="the table to train on")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each fit (their median is kept)")
    args = ap.parse_args(argv)
    one_thread()
    payload = header("after-training", quick=False)
    data = Path(args.data).resolve()
    payload["data"] = str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else data.name
    payload["refit"] = refit = refit_cost(args.data, args.repeat)
    say(
        f"scale refit on {refit['rows']} rows: written {refit['written_seconds']['median']:.3f} s, autograd "
        f"{refit['autograd_seconds']['median']:.3f} s ({refit['ratio']:.2f} x), heads "
        f"{refit['max_abs_difference']:.2g} apart (the fit moved a weight by {refit['max_abs_move_of_the_reference']:.2g})"
    )
    payload["path"] = paths = path_cost(args.data)
    for name in ("kept per split", "fitted by every run"):
        p = paths[name]
        say(
            f"path, {name}: {p['choose_calls']} choices, {p['choose_seconds']:.2f} s of a {p['train_seconds']:.1f} s "
            f"train ({p['members']} members)"
        )
    say(f"the same path in both files: {paths['same_path']}")
    print(write_result("after-training", False, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
