"""Physics oracles: the best any forecaster can do from a specimen's warm-up alone.

Each oracle knows its set's generator (durability_cli/synthetic.py): the equations, every
condition the table records, the noise level and the priors of the hidden per-specimen factors,
but not the factors themselves. From the noisy warm-up it weighs a grid over the hidden factors
by their posterior (Gaussian noise of the set's sigma, the generator's priors) and forecasts the
posterior mean path: the point forecast with the least expected squared error. Its RMSE is the
floor of the task given the warm-up; what lies between it and the noise floor is what the warm-up
cannot tell about the specimen.

It does not use how long a test series is (a series that stops early broke early: knowing that
would be knowing the future).

    python benchmarks/oracles.py                         # coating, ageing, crack; splits 0, 1, 2
    python benchmarks/oracles.py --sets crack --splits 0 --n-train 32 --n-test 16

Results: results/oracles.json (per set and split: the oracle's RMSE against the noisy and the
clean test values, the noise floor, the mean posterior sd of the hidden factors).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, code_version  # noqa: E402
from durability_cli.metrics import first_crossing_matrix  # noqa: E402
from durability_cli.synthetic import DATASET_INFO, _arrhenius, coating_rate, make_split  # noqa: E402

SETS = ("coating", "ageing", "crack")


def _log_grid(sd: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A lognormal factor's grid over +-4 sd (log-spaced) and its log prior weights."""
    u = np.linspace(-4 * sd, 4 * sd, n)
    return np.exp(u), -(u**2) / (2 * sd**2)


def posterior_mean(paths: np.ndarray, log_prior: np.ndarray, y: np.ndarray, warm: np.ndarray, sigma: float):
    """Posterior weights over the grid's paths [G, T] given the measured warm-up values y[warm]
    (NaN-free), and the posterior mean path [T]."""
    resid = paths[:, warm] - y[warm][None, :]
    cost = (resid**2).sum(axis=1) / (2 * sigma**2) - log_prior
    w = np.exp(-(cost - cost.min()))
    w /= w.sum()
    return w, w @ paths


def _uniform(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(lo, hi, n), np.zeros(n)


def _grid2(a, b):
    """The outer grid of two factors: values [G] each and the summed log prior [G]."""
    (av, ap), (bv, bp) = a, b
    return np.repeat(av, len(bv)), np.tile(bv, len(av)), (ap[:, None] + bp[None, :]).ravel()


def coating_paths(g: pd.DataFrame):
    """Strength s = s0 / (1 + lot D(t)) over a grid of (lot, s0); D from the table's conditions."""
    temp, rh, t = (g[c].to_numpy(np.float64) for c in ("temperature", "humidity", "time"))
    rate = coating_rate(g["material"].iloc[0], temp, rh)
    dose = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(t))])
    lot, s0, lp = _grid2(_log_grid(0.15, 201), _uniform(0.97, 1.03, 31))
    return s0[:, None] / (1.0 + lot[:, None] * dose[None, :]), lp, {"lot": lot}


def ageing_paths(g: pd.DataFrame):
    """Property p = p0 exp(-batch D(t)) over a grid of (batch, p0); D the Peck dose per week."""
    temp, rh = (g[c].to_numpy(np.float64) for c in ("temperature", "humidity"))
    rate = 0.012 * (rh / 70.0) ** 2.7 * _arrhenius(temp, 0.7, ref_c=25.0)
    dose = np.concatenate([[0.0], np.cumsum(rate[:-1])])
    batch, p0, lp = _grid2(_log_grid(0.35, 201), _uniform(0.98, 1.02, 21))
    return p0[:, None] * np.exp(-batch[:, None] * dose[None, :]), lp, {"batch": batch}


def crack_paths(g: pd.DataFrame):
    """Remaining ligament 1 - 2a/W over a grid of (Paris coefficient, initial crack): the
    generator's RK4 (4 sub-steps a row) on the table's stress range and R ratio."""
    width, exponent, substeps = 0.05, 3.0, 4
    t = g["time"].to_numpy(np.float64)
    load = g["stress_range"].to_numpy(np.float64) / np.sqrt(1.0 - g["r_ratio"].to_numpy(np.float64))
    c_rel, x0, lp = _grid2(_log_grid(0.2, 81), _uniform(0.005, 0.05, 91))
    c = 2e-11 * c_rel

    def growth(x, s):
        x = np.minimum(x, 0.95)
        dk = s * np.sqrt(np.pi * x * width / 2 / np.cos(np.pi * x / 2))
        return 1000.0 * 2.0 / width * c * dk**exponent

    h = (t[1] - t[0]) / substeps if len(t) > 1 else 0.0
    x, cracked = x0.copy(), np.empty((len(x0), len(t)))
    for i in range(len(t)):
        cracked[:, i] = x
        for _ in range(substeps):
            k1 = growth(x, load[i])
            k2 = growth(x + 0.5 * h * k1, load[i])
            k3 = growth(x + 0.5 * h * k2, load[i])
            k4 = growth(x + h * k3, load[i])
            x = np.minimum(x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), 1.0)
    return 1.0 - cracked, lp, {"paris_c": c_rel}


PATHS = {"coating": coating_paths, "ageing": ageing_paths, "crack": crack_paths}


def _first_crossing(paths: np.ndarray, t: np.ndarray, start: int, threshold: float) -> np.ndarray:
    """Per path [G, T], the time it first falls to ``threshold`` after row ``start - 1``, linear
    between rows (metrics.first_crossing_matrix; +inf: not within the rows; NaN: already at or
    below it at ``start - 1``)."""
    v = paths[:, start - 1 :]
    cross = first_crossing_matrix(t[start - 1 :], v, threshold)
    return np.where(v[:, 0] <= threshold, np.nan, np.where(np.isnan(cross), np.inf, cross))


def oracle_forecast(name: str, test: pd.DataFrame, warmup: pd.Series, sigma: float, draws: int = 1000):
    """The oracle for every row of ``test`` (warm-up rows included): the posterior mean, the
    posterior predictive p10 and p90 (``draws`` paths drawn from the grid's posterior, measurement
    noise added), per specimen the p10 / p50 / p90 of its end of life (the first fall of a drawn
    clean path to the set's threshold after the warm-up) and, per hidden factor, the mean over
    specimens of its posterior sd (log scale)."""
    info = DATASET_INFO[name]
    rng = np.random.default_rng(0)
    mean, q10, q90 = (np.full(len(test), np.nan) for _ in range(3))
    spread: dict[str, list[float]] = {}
    eol = []
    for sid, idx in test.groupby("specimen_id", sort=False).indices.items():
        g = test.iloc[idx]
        w = int(warmup[sid])
        y = g[info.target].to_numpy(np.float64)
        warm = (np.arange(len(g)) < w) & np.isfinite(y)
        paths, lp, factors = PATHS[name](g)
        weights, mean[idx] = posterior_mean(paths, lp, y, warm, sigma)
        drawn = paths[rng.choice(len(paths), size=draws, p=weights)]
        noisy = drawn + sigma * rng.standard_normal(drawn.shape)
        q10[idx], q90[idx] = np.quantile(noisy, [0.1, 0.9], axis=0)
        for k, v in factors.items():
            lv = np.log(v)
            m = weights @ lv
            spread.setdefault(k, []).append(float(np.sqrt(max(weights @ (lv - m) ** 2, 0.0))))
        if info.eol_threshold is not None and w < len(g):
            cross = _first_crossing(drawn, g["time"].to_numpy(np.float64), w, info.eol_threshold)
            past = bool(np.isnan(cross).mean() > 0.5)
            qs = np.quantile(np.nan_to_num(cross, nan=-np.inf), [0.1, 0.5, 0.9], method="inverted_cdf")
            qs = [np.nan if not np.isfinite(q) else float(q) for q in qs]
            eol.append(
                {
                    "specimen_id": sid,
                    "status": "already past" if past else "",
                    "eol_p10": qs[0],
                    "eol_p50": qs[1],
                    "eol_p90": qs[2],
                }
            )
    factors_sd = {f"{k}_posterior_log_sd": float(np.mean(v)) for k, v in spread.items()}
    return mean, q10, q90, (pd.DataFrame(eol) if eol else None), factors_sd


def measure(name: str, split_seed: int, n_train: int, n_test: int, warmup: int | None = None) -> dict:
    """The oracle on one split, scored as the accuracy suite scores a forecaster (its rows after
    the warm-up: RMSE against the noisy and the clean values, the 80 % band, end of life and its
    80 % interval)."""
    from benchmarks.accuracy import eol_interval, eol_truth, forecast_rows, in_warmup, score

    split = make_split(name, n_train, n_test, seed=split_seed)
    info, test, clean = split["info"], split["test"], split["test_clean"]
    w = pd.Series(warmup or info.context, index=test["specimen_id"].unique(), dtype=int)
    mean, q10, q90, eol, spread = oracle_forecast(name, test, w, info.noise)
    after = ~in_warmup(test, w)
    rows = forecast_rows(test, clean, w, info.target).assign(
        y_pred=mean[after], **{"q0.1": q10[after], "q0.9": q90[after]}
    )
    scores = score(rows, info.eol_threshold, probabilistic=True)
    if eol is not None:
        scores |= eol_interval(eol, eol_truth(clean, w, info.target, info.eol_threshold))
    return (
        {"set": name, "split": split_seed, "n_train": n_train, "n_test": n_test, "warmup": int(w.iloc[0])}
        | scores
        | spread
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--splits", default="0,1,2", help="make_split seeds (benchmarks/latent.py uses its seed)")
    ap.add_argument("--n-train", type=int, default=32)
    ap.add_argument("--n-test", type=int, default=16)
    ap.add_argument("--warmups", default="", help="warm-up rows to try (comma-separated); default: the set's")
    ap.add_argument("--out", default=str(RESULTS / "oracles.json"))
    a = ap.parse_args(argv)
    runs = []
    for name in a.sets.split(","):
        for s in (int(x) for x in a.splits.split(",")):
            for w in [int(x) for x in a.warmups.split(",") if x] or [None]:
                r = measure(name, s, a.n_train, a.n_test, w)
                runs.append(r)
                print(
                    f"{name} split {s} warm-up {r['warmup']}: rmse {r['rmse']:.4f} "
                    f"(noise floor {r['noise_floor']:.4f}), 80% coverage {r['coverage80']:.3f}, "
                    f"end-of-life interval coverage {r.get('eol_coverage80', float('nan')):.3f} "
                    f"(n {r.get('eol_interval_n')}), "
                    + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if k.endswith("posterior_log_sd")),
                    file=sys.stderr,
                    flush=True,
                )
    out = {
        "command": "python benchmarks/oracles.py " + " ".join(argv or sys.argv[1:]),
        "code": code_version(),
        "runs": runs,
    }
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
