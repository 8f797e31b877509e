"""Physics-based synthetic datasets for the sample data, the tests and the benchmarks.

Each generator returns two long tables with identical rows, ``(noisy, clean)``: one row per
specimen per time step, with ``specimen_id``, ``time``, static and condition columns and the target.
``clean`` holds the noise-free target on every row; ``noisy`` adds i.i.d. Gaussian measurement
noise of standard deviation ``noise`` on every row (not clipped), and may hide a few measurements
(NaN) when ``missing_fraction`` > 0. The convention of docs/BENCHMARK_PROTOCOL.md holds throughout:
the target at row t is the state at the *start* of step t, the conditions at row t are those
*during* step t (from ``time[t]`` to ``time[t + 1]``), and row 0 is the initial state. The physics
integrates over the actual step length, so irregular sampling is exact, not approximated.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives identical tables.
Specimens are simulated together as ``[N, T]`` arrays (N specimens, T rows, padded to the
longest) and the padding is dropped when the long table is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

BOLTZMANN_EV = 8.617333e-5  # Boltzmann constant, eV/K
KELVIN = 273.15  # 0 °C in kelvin
GRAVITY = 9.81  # m/s²


@dataclass(frozen=True)
class DatasetInfo:
    """What a benchmark needs to know about a generated dataset (see BENCHMARK_PROTOCOL.md)."""

    name: str
    target: str  # the durability column
    covariates: tuple[str, ...]  # numeric conditions known at every step
    static: tuple[str, ...]  # constant per specimen (pass with --static)
    noise: float  # std of the Gaussian measurement noise on the target
    eol_threshold: float | None  # end of life when the target falls to or below it; None = no EOL
    context: int  # recommended warm-up rows per specimen
    time_unit: str
    physics: str  # one paragraph: what the generator simulates
    direction: str = "below"  # end of life is reached from above
    id_col: str = "specimen_id"
    time_col: str = "time"


# ----------------------------------------------------------------------------- shared helpers


def _arrhenius(temperature_c: np.ndarray, ea_ev: float | np.ndarray, ref_c: float) -> np.ndarray:
    """exp(-Ea/kB (1/T - 1/T_ref)): 1 at the reference temperature, > 1 when hotter (Ea > 0)."""
    inv = 1.0 / (temperature_c + KELVIN) - 1.0 / (ref_c + KELVIN)
    return np.exp(-ea_ev / BOLTZMANN_EV * inv)


def _blocks(rng: np.random.Generator, shape: tuple[int, int], mean_rows: float) -> np.ndarray:
    """Row index of the start of the loading block each row belongs to; blocks last ~mean_rows."""
    new_block = rng.random(shape) < 1.0 / mean_rows
    new_block[:, 0] = True
    start = np.where(new_block, np.arange(shape[1]), 0)
    return np.maximum.accumulate(start, axis=1)  # [N, T]


def _per_block(rng, block_start, low, high) -> np.ndarray:
    """A uniform draw per block (held constant over the block's rows)."""
    fresh = rng.uniform(low, high, size=block_start.shape)
    return np.take_along_axis(fresh, block_start, axis=1)  # [N, T]


def _round_sig(x: np.ndarray, digits: int = 2) -> np.ndarray:
    """Round to `digits` significant figures, as a lab would pick an inspection interval."""
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(x))))
    return np.round(x * scale) / scale


def _long_tables(
    rng: np.random.Generator,
    prefix: str,
    lengths: np.ndarray,
    time: np.ndarray,
    static: dict[str, np.ndarray],
    conditions: dict[str, np.ndarray],
    target: str,
    clean: np.ndarray,
    noise: float,
    missing_fraction: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """[N, T] arrays -> (noisy, clean) long tables. Noise and hidden rows are drawn last, so the
    clean table does not depend on `noise` or `missing_fraction`."""
    n, t_max = clean.shape
    mask = np.arange(t_max) < lengths[:, None]  # [N, T] rows that exist
    width = max(3, len(str(n)))
    ids = np.array([f"{prefix}{i + 1:0{width}d}" for i in range(n)], dtype=object)
    columns = {"specimen_id": np.repeat(ids, lengths), "time": time[mask]}
    columns |= {name: np.repeat(values, lengths) for name, values in static.items()}
    columns |= {name: values[mask] for name, values in conditions.items()}
    clean_table = pd.DataFrame(columns | {target: clean[mask]})

    measured = clean[mask] + noise * rng.standard_normal(int(mask.sum()))
    # A few specimens lose 2-5 measurements strictly inside the series: never in the first three
    # rows (the shortest warm-up) and never the last row (trailing NaN rows mean "future").
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for i in rng.choice(n, size=round(missing_fraction * n), replace=False):
        inside = np.arange(3, lengths[i] - 1)
        rows = rng.choice(inside, size=min(rng.integers(2, 6), len(inside)), replace=False)
        measured[offsets[i] + rows] = np.nan
    noisy_table = pd.DataFrame(columns | {target: measured})
    return noisy_table, clean_table


# ----------------------------------------------------------------------------- coating

# Peck model per material: activation energy Ea (eV), humidity exponent n, and the rate r_ref
# (1/day) at 40 °C / 70 %RH, i.e. the Peck prefactor A = r_ref / (70^n exp(-Ea / kB 313.15 K)).
_COATING_MATERIALS = {"A": (0.65, 2.5, 0.004), "B": (0.78, 2.0, 0.003)}
_COATING_STEPS = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 14.0])  # measurement intervals, days

COATING_PHYSICS = (
    "Polymer coating, retained strength s (1.0 = new). Damage rate from the Peck model "
    "r = A * RH^n * exp(-Ea / (kB * T)) (T in kelvin, RH in %; material A: Ea 0.65 eV, n 2.5; "
    "B: Ea 0.78 eV, n 2.0), times a hidden per-specimen lot factor (lognormal, sd 0.15). "
    "Second-order decay ds/dt = -r * s^2 / s0, so s = s0 / (1 + D) with D the accumulated dose "
    "(integral of r dt), exact for piecewise-constant conditions. Exposure: outdoor seasonal "
    "(sinusoid + weather), chamber cycling (square wave) or steady chamber; each specimen is "
    "measured at a fixed interval chosen for its severity (0.25-14 days), with random gaps "
    "(1-5 intervals) on about a quarter of the specimens."
)


def coating_rate(material, temperature_c, humidity) -> np.ndarray:
    """The coating set's damage rate (1/day) before the lot factor: Peck's law r_ref (RH / 70)^n
    times Arrhenius about 40 °C, with each ``material``'s (Ea, n, r_ref) from _COATING_MATERIALS.
    ``material`` is a label ("A" / "B") or an array of them that broadcasts against the
    temperature (°C) and humidity (%RH): the one law the generator, the oracle and the what-if
    benchmark compute."""
    labels = np.asarray(material, dtype=object)
    ea, n_rh, r_ref = (
        np.vectorize(lambda m, k=k: _COATING_MATERIALS[m][k], otypes=[np.float64])(labels) for k in range(3)
    )
    rate = r_ref * (np.asarray(humidity, dtype=np.float64) / 70.0) ** n_rh
    return rate * _arrhenius(np.asarray(temperature_c, dtype=np.float64), ea, ref_c=40.0)


def make_coating(
    n_specimens: int = 48,
    seed: int = 0,
    noise: float = 0.01,
    missing_fraction: float = 0.2,
    irregular_fraction: float = 0.25,
    hidden: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Retained strength of polymer coatings under temperature and humidity (Peck model).

    Columns: specimen_id ("C001"), time (days), material ("A"/"B"), temperature (°C),
    humidity (%RH), durability (retained strength, starts at s0 in [0.97, 1.03]).
    100-300 rows per specimen. See COATING_PHYSICS for the equations. ``hidden`` adds the
    hidden per-specimen factors as columns (lot, s0), for oracle benchmarks; the other values
    are the same either way.
    """
    rng = np.random.default_rng(seed)
    n, t_max = n_specimens, 300
    lengths = rng.integers(100, t_max + 1, size=n)
    material = rng.choice(np.array(["A", "B"], dtype=object), size=n)
    s0 = rng.uniform(0.97, 1.03, n)
    lot = rng.lognormal(0.0, 0.15, n)
    kind = rng.choice(3, size=n, p=[0.35, 0.3, 0.35])  # 0 outdoor, 1 chamber cycling, 2 steady

    def peck(temp_c, rh):  # damage rate, 1/day, [N, T]
        return coating_rate(material[:, None], temp_c, rh)

    # Exposure parameters, [N, 1] each, drawn for every specimen; `kind` picks which apply.
    outdoor, cycling = kind[:, None] == 0, kind[:, None] == 1
    t_mean, t_amp = rng.uniform(10, 26, (n, 1)), rng.uniform(4, 11, (n, 1))  # °C
    rh_mean, rh_amp = rng.uniform(55, 80, (n, 1)), rng.uniform(5, 15, (n, 1))  # %RH
    phase = rng.uniform(0, 2 * np.pi, (n, 1))  # season at the start of the test
    cold_t, cold_rh = rng.uniform(25, 40, (n, 1)), rng.uniform(30, 50, (n, 1))
    hot_t, hot_rh = rng.uniform(55, 70, (n, 1)), rng.uniform(75, 92, (n, 1))
    half_period = rng.integers(3, 13, (n, 1))  # chamber half-cycle, in measurement intervals
    steady_t, steady_rh = rng.uniform(35, 70, (n, 1)), rng.uniform(40, 90, (n, 1))

    def profile(season, hot):  # [N, T] temperature and humidity, without sensor noise
        temp = np.where(cycling, np.where(hot, hot_t, cold_t), steady_t)
        rh = np.where(cycling, np.where(hot, hot_rh, cold_rh), steady_rh)
        sin = np.sin(season + phase)  # outdoors, summer is hot and relatively dry
        temp = np.where(outdoor, t_mean + t_amp * sin, temp)
        rh = np.where(outdoor, rh_mean - rh_amp * sin, rh)
        return temp, rh

    # The lab picks a measurement interval so the test covers most of the specimen's life: the
    # planned dose (log-uniform 0.4-4.5) over the profile's mean rate across one cycle.
    cycle = np.arange(64) * np.ones((n, 1))
    nominal = peck(*profile(2 * np.pi * cycle / 64, cycle >= 32)).mean(axis=1)
    gaps = np.ones((n, t_max))  # intervals between rows; > 1 where measurements were skipped
    irregular = rng.choice(n, size=round(irregular_fraction * n), replace=False)
    gaps[irregular] = rng.choice(5, size=(len(irregular), t_max), p=[0.4] + [0.15] * 4) + 1
    span = np.where(np.arange(t_max) < lengths[:, None] - 1, gaps, 0.0).sum(axis=1)
    wanted = np.exp(rng.uniform(np.log(0.4), np.log(4.5), n)) / (nominal * span)
    interval = _COATING_STEPS[np.abs(np.log(wanted[:, None] / _COATING_STEPS)).argmin(axis=1)]
    step = interval[:, None] * gaps  # [N, T] days from row t to row t + 1
    time = np.concatenate([np.zeros((n, 1)), np.cumsum(step, axis=1)[:, :-1]], axis=1)

    temp, rh = profile(2 * np.pi * time / 365.25, (time // (half_period * interval[:, None])) % 2)
    temp = temp + rng.normal(0, np.where(outdoor, 1.5, 0.3), (n, t_max))  # weather / chamber
    rh = rh + rng.normal(0, np.where(outdoor, 4.0, 1.0), (n, t_max))
    temp, rh = np.round(temp, 1), np.round(np.clip(rh, 5.0, 100.0), 1)  # as the logger records

    dose_step = lot[:, None] * peck(temp, rh) * step  # [N, T] dose received during each step
    dose = np.concatenate([np.zeros((n, 1)), np.cumsum(dose_step, axis=1)[:, :-1]], axis=1)
    strength = s0[:, None] / (1.0 + dose)
    return _long_tables(
        rng, "C", lengths, time, {"material": material} | ({"lot": lot, "s0": s0} if hidden else {}),
        {"temperature": temp, "humidity": rh}, "durability", strength, noise, missing_fraction,
    )  # fmt: skip


# ----------------------------------------------------------------------------- ball

BALL_PHYSICS = (
    "Thrown balls: height z (m) of a point mass with gravity 9.81 m/s² and quadratic air drag "
    "a = -c |v - w| (v - w), c the `drag` coefficient (1/m, per ball) and w the horizontal `wind` "
    "(m/s, slowly varying, constant within a row). Launch speed (10-24 m/s), angle (25-65°) and "
    "height (1-2 m) are random and not given: a forecaster infers them from the first rows. "
    "RK4 with 10 sub-steps per 0.05 s row; the series ends at the last row above the ground."
)


def make_ball(
    n_specimens: int = 60, seed: int = 0, noise: float = 0.02, missing_fraction: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Heights of thrown balls with quadratic drag in a varying horizontal wind.

    Columns: specimen_id ("B001"), time (s, step 0.05), wind (m/s), drag (1/m), height (m).
    Roughly 20-80 rows per ball. See BALL_PHYSICS.
    """
    rng = np.random.default_rng(seed)
    n, t_max, dt, substeps = n_specimens, 200, 0.05, 10
    speed, angle = rng.uniform(10, 24, n), np.radians(rng.uniform(25, 65, n))
    z0 = rng.uniform(1.0, 2.0, n)
    drag = np.round(rng.uniform(0.002, 0.03, n), 4)
    # Wind: a per-ball mean plus AR(1) gusts with a correlation time of ~0.5 s.
    gust = rng.normal(0.0, 0.45, (n, t_max))
    for t in range(1, t_max):
        gust[:, t] += 0.9 * gust[:, t - 1]
    wind = np.round(rng.uniform(-6, 6, n)[:, None] + gust, 2)

    def accel(vx, vz, w):
        rel_x = vx - w
        speed_rel = np.sqrt(rel_x**2 + vz**2)
        return -drag * speed_rel * rel_x, -GRAVITY - drag * speed_rel * vz

    state = np.stack([z0, speed * np.cos(angle), speed * np.sin(angle)])  # [3, N]: z, vx, vz

    def deriv(s, w):
        return np.stack([s[2], *accel(s[1], s[2], w)])

    height = np.empty((n, t_max))
    h = dt / substeps
    for t in range(t_max):
        height[:, t] = state[0]
        for _ in range(substeps):
            k1 = deriv(state, wind[:, t])
            k2 = deriv(state + 0.5 * h * k1, wind[:, t])
            k3 = deriv(state + 0.5 * h * k2, wind[:, t])
            k4 = deriv(state + h * k3, wind[:, t])
            state = state + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    below = height < 0.0
    lengths = np.where(below.any(axis=1), below.argmax(axis=1), t_max)
    time = np.round(np.arange(t_max) * dt, 2) * np.ones((n, 1))
    drag_rows = drag[:, None] * np.ones((1, t_max))
    return _long_tables(
        rng, "B", lengths, time, {}, {"wind": wind, "drag": drag_rows}, "height", height,
        noise, missing_fraction,
    )  # fmt: skip


# ----------------------------------------------------------------------------- battery

_BATTERY_INTERVALS = np.array([2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100])

BATTERY_PHYSICS = (
    "Li-ion state of health (capacity / nominal), loss = SEI + active material + lithium plating. "
    "SEI grows as the square root of charge throughput with Arrhenius speed-up "
    "(d(L_sei^2) = k_sei(T)^2 DoD dN, Ea 0.55 eV); active-material loss "
    "dL_am = k_am(T) C^0.5 DoD^1.5 dN (Ea 0.3 eV). Once the total loss passes a hidden per-cell "
    "knee (0.12-0.16), pore clogging makes lithium plate: dP = (dL_sei + dL_am) * "
    "20 C^0.5 e^(+0.25 eV/kB (1/T - 1/298 K)) * (loss - knee), a runaway that is faster when cold "
    "and at high C-rate: the knee. Hidden cell-to-cell spread 10 % on each mechanism. Usage "
    "(temperature, C-rate, DoD) changes in blocks of ~40 rows; the capacity-check interval "
    "(2-100 cycles) is planned per cell so the test spans ~1.7x the nominal knee life; "
    "200-400 rows, the test stops before SOH falls below 0.65. Euler, 10 sub-steps per row."
)


def make_battery(
    n_specimens: int = 60, seed: int = 0, noise: float = 0.003, missing_fraction: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Capacity fade of Li-ion cells: SEI (sqrt of throughput), cycling wear, and a plating knee.

    Columns: specimen_id ("L001"), time (cycle number), temperature (°C), c_rate (1/h),
    dod (depth of discharge, 0-1), durability (state of health, ~1.0 -> ~0.7).
    See BATTERY_PHYSICS.
    """
    rng = np.random.default_rng(seed)
    n, t_max, substeps = n_specimens, 400, 10
    lengths = rng.integers(200, t_max + 1, size=n)
    soh0 = rng.uniform(0.99, 1.01, n)
    knee = rng.uniform(0.12, 0.16, n)  # total loss at which plating starts
    cell = rng.lognormal(0.0, 0.1, (3, n, 1))  # hidden cell-to-cell spread of each mechanism
    block = _blocks(rng, (n, t_max), mean_rows=40)
    temp = rng.uniform(10, 40, (n, 1)) + _per_block(rng, block, -8, 8)
    temp = np.round(np.clip(temp, 0, 50), 1)
    c_rate = np.round(rng.uniform(0.5, 2.0, (n, 1)) * _per_block(rng, block, 0.6, 1.5), 2)
    dod = rng.uniform(0.4, 0.9, (n, 1)) + _per_block(rng, block, -0.2, 0.2)
    dod = np.round(np.clip(dod, 0.1, 1.0), 2)

    k_sei = 3e-3 * _arrhenius(temp, 0.55, ref_c=25.0)  # [N, T] loss per sqrt(full cycle)
    k_am = 3e-5 * _arrhenius(temp, 0.3, ref_c=25.0) * c_rate**0.5 * dod**1.5  # per cycle
    k_plate = 20.0 * _arrhenius(temp, -0.25, ref_c=25.0) * c_rate**0.5  # gain per unit excess

    # The lab knows its usage schedule: it picks the interval between capacity checks so the
    # test covers ~1.7x the cycles the nominal cell (no hidden spread) needs to reach the knee.
    planned = np.arange(t_max) < lengths[:, None]
    a = np.sqrt((k_sei**2 * dod * planned).sum(axis=1) / lengths)  # loss = a sqrt(N) + b N
    b = (k_am * planned).sum(axis=1) / lengths
    sqrt_knee = (-a + np.sqrt(a**2 + 4 * b * 0.14)) / (2 * b)
    wanted = 1.7 * sqrt_knee**2 / lengths
    cycles = _BATTERY_INTERVALS[np.abs(np.log(wanted[:, None] / _BATTERY_INTERVALS)).argmin(axis=1)]

    k_sei, k_am, k_plate = cell[0] * k_sei, cell[1] * k_am, cell[2] * k_plate
    sei2, active, plating = np.zeros(n), np.zeros(n), np.zeros(n)
    soh = np.empty((n, t_max))
    h = cycles / substeps
    for t in range(t_max):
        soh[:, t] = soh0 - np.sqrt(sei2) - active - plating
        for _ in range(substeps):
            excess = np.maximum(0.0, np.sqrt(sei2) + active + plating - knee)
            sei2_next = sei2 + h * k_sei[:, t] ** 2 * dod[:, t]
            d_wear = np.sqrt(sei2_next) - np.sqrt(sei2) + h * k_am[:, t]
            plating = plating + d_wear * k_plate[:, t] * excess
            active = active + h * k_am[:, t]
            sei2 = sei2_next
    worn = soh < 0.65
    lengths = np.where(worn.any(axis=1), np.minimum(worn.argmax(axis=1), lengths), lengths)
    time = cycles[:, None] * np.arange(t_max).astype(float)
    return _long_tables(
        rng, "L", lengths, time, {}, {"temperature": temp, "c_rate": c_rate, "dod": dod},
        "durability", soh, noise, missing_fraction,
    )  # fmt: skip


# ----------------------------------------------------------------------------- crack

CRACK_PHYSICS = (
    "Fatigue crack through the middle of a plate of width W = 50 mm (M(T) specimen, crack length "
    "2a). Paris law with a Walker mean-stress correction: da/dN = C (dK / sqrt(1 - R))^3, "
    "dK = dS sqrt(pi a) sqrt(sec(pi a / W)) (dK in MPa sqrt(m), a in m; C = 2e-11 with hidden "
    "lognormal scatter 0.2). Durability = remaining ligament 1 - 2a/W, starting at 0.95-0.995. "
    "Block loading: stress range dS (MPa) and R ratio change every ~25 rows. The inspection "
    "interval (kilocycles) is planned per specimen from its nominal life under its load "
    "spectrum (120-450 rows per life); RK4 with 4 sub-steps per row. A series stops before the "
    "ligament falls below 0.2, or after 400 rows (a run-out)."
)


def make_crack(
    n_specimens: int = 60,
    seed: int = 0,
    noise: float = 0.005,
    missing_fraction: float = 0.0,
    hidden: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fatigue crack growth (Paris law) under block loading; durability = remaining ligament.

    Columns: specimen_id ("K001"), time (kilocycles), stress_range (MPa), r_ratio (min/max stress),
    durability (1 - 2a/W). See CRACK_PHYSICS. ``hidden`` adds the hidden per-specimen factors as
    columns (paris_c, the growth coefficient, and cracked0, the initial crack 2a0/W).
    """
    rng = np.random.default_rng(seed)
    n, t_max, width, exponent, substeps = n_specimens, 400, 0.05, 3.0, 4
    cracked0 = rng.uniform(0.005, 0.05, n)  # 2a0 / W
    paris_c = 2e-11 * rng.lognormal(0.0, 0.2, n)
    block = _blocks(rng, (n, t_max), mean_rows=25)
    stress = np.round(rng.uniform(60, 140, (n, 1)) * _per_block(rng, block, 0.75, 1.25))
    r_ratio = np.round(_per_block(rng, block, 0.0, 0.5) / 0.05) * 0.05
    effective = stress / np.sqrt(1.0 - r_ratio)  # [N, T] Walker-equivalent stress range, MPa

    def growth(x, load, c):  # d(2a/W) per kilocycle for cracked fraction x
        x = np.minimum(x, 0.95)
        dk = load * np.sqrt(np.pi * x * width / 2 / np.cos(np.pi * x / 2))
        return 1000.0 * 2.0 / width * c * dk**exponent

    # The lab plans the interval from the nominal life (C without scatter) under the spectrum's
    # equivalent stress range, integrated numerically from the initial crack to 80 % cracked.
    s_eq = np.mean(effective**exponent, axis=1) ** (1 / exponent)
    x = np.exp(np.linspace(np.log(cracked0), np.log(0.8), 256, axis=1))  # [N, 256]
    dn = 1.0 / growth(x, s_eq[:, None], 2e-11)
    life = np.sum(0.5 * (dn[:, 1:] + dn[:, :-1]) * np.diff(x, axis=1), axis=1)  # kilocycles
    interval = _round_sig(life / rng.uniform(120, 450, n))  # kilocycles per row

    cracked = np.empty((n, t_max))
    x, h = cracked0.copy(), interval / substeps
    for t in range(t_max):
        cracked[:, t] = x
        for _ in range(substeps):
            k1 = growth(x, effective[:, t], paris_c)
            k2 = growth(x + 0.5 * h * k1, effective[:, t], paris_c)
            k3 = growth(x + 0.5 * h * k2, effective[:, t], paris_c)
            k4 = growth(x + h * k3, effective[:, t], paris_c)
            x = np.minimum(x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), 1.0)
    ligament = 1.0 - cracked
    broken = ligament < 0.2
    lengths = np.where(broken.any(axis=1), broken.argmax(axis=1), t_max)
    time = np.round(interval[:, None] * np.arange(t_max), 6)
    return _long_tables(
        rng, "K", lengths, time, {"paris_c": paris_c / 2e-11, "cracked0": cracked0} if hidden else {},
        {"stress_range": stress, "r_ratio": r_ratio},
        "durability", ligament, noise, missing_fraction,
    )  # fmt: skip


# ----------------------------------------------------------------------------- ageing

AGEING_PHYSICS = (
    "Outdoor ageing of a sealant, retained property p (1.0 = new), measured weekly for four "
    "years (208 rows). First-order decay dp/dt = -r p with the Peck rate r = A RH^2.7 "
    "exp(-0.7 eV / (kB T)) (r = 0.012 per week at 25 °C, 70 %RH), times a hidden per-specimen "
    "batch factor (lognormal, sd 0.35: batches age 0.5x to 2x as fast); p = p0 exp(-D), D the "
    "accumulated dose. Sites differ in mean temperature (5-25 °C) and humidity (50-85 %RH), with "
    "a seasonal swing and weekly weather. The batch factor is the one thing a forecaster must "
    "read off each specimen's warm-up."
)


def make_ageing(
    n_specimens: int = 60,
    seed: int = 0,
    noise: float = 0.01,
    missing_fraction: float = 0.0,
    hidden: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weekly outdoor ageing under seasonal temperature and humidity, with a hidden batch factor.

    Columns: specimen_id ("A001"), time (weeks), temperature (°C), humidity (%RH), durability
    (retained property, starts at p0 in [0.98, 1.02]). 208 rows per specimen. See AGEING_PHYSICS.
    ``hidden`` adds the hidden factors as columns (batch_factor, p0).
    """
    rng = np.random.default_rng(seed)
    n, t_max = n_specimens, 208
    lengths = np.full(n, t_max)
    p0 = rng.uniform(0.98, 1.02, n)
    batch = rng.lognormal(0.0, 0.35, n)
    t_mean, rh_mean = rng.uniform(5, 25, (n, 1)), rng.uniform(50, 85, (n, 1))
    t_amp, rh_amp = rng.uniform(5, 12, (n, 1)), rng.uniform(5, 15, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    week = np.arange(t_max)[None, :]
    season = np.sin(2 * np.pi * week / 52.18 + phase)
    temp = np.round(t_mean + t_amp * season + rng.normal(0, 2.0, (n, t_max)), 1)
    rh = np.round(np.clip(rh_mean - rh_amp * season + rng.normal(0, 5.0, (n, t_max)), 10, 100), 1)
    rate = 0.012 * (rh / 70.0) ** 2.7 * _arrhenius(temp, 0.7, ref_c=25.0)  # per week
    dose_step = batch[:, None] * rate
    dose = np.concatenate([np.zeros((n, 1)), np.cumsum(dose_step, axis=1)[:, :-1]], axis=1)
    prop = p0[:, None] * np.exp(-dose)
    time = np.broadcast_to(week.astype(float), (n, t_max))
    return _long_tables(
        rng, "A", lengths, time, {"batch_factor": batch, "p0": p0} if hidden else {},
        {"temperature": temp, "humidity": rh}, "durability", prop, noise, missing_fraction,
    )  # fmt: skip


# ----------------------------------------------------------------------------- registry

DATASETS: dict[str, Callable[..., tuple[pd.DataFrame, pd.DataFrame]]] = {
    "coating": make_coating,
    "ball": make_ball,
    "battery": make_battery,
    "crack": make_crack,
    "ageing": make_ageing,
}

DATASET_INFO: dict[str, DatasetInfo] = {
    "coating": DatasetInfo(
        name="coating",
        target="durability",
        covariates=("temperature", "humidity"),
        static=("material",),
        noise=0.01,
        eol_threshold=0.6,
        context=20,
        time_unit="days",
        physics=COATING_PHYSICS,
    ),
    "ball": DatasetInfo(
        name="ball",
        target="height",
        covariates=("wind", "drag"),
        static=(),
        noise=0.02,
        eol_threshold=None,  # a trajectory has no end of life; score the path itself
        context=3,  # three heights fix launch height, vertical speed and the start of the arc
        time_unit="seconds",
        physics=BALL_PHYSICS,
    ),
    "battery": DatasetInfo(
        name="battery",
        target="durability",
        covariates=("temperature", "c_rate", "dod"),
        static=(),
        noise=0.003,
        eol_threshold=0.8,  # the usual 80 % state-of-health end of life
        context=40,
        time_unit="cycles",
        physics=BATTERY_PHYSICS,
    ),
    "crack": DatasetInfo(
        name="crack",
        target="durability",
        covariates=("stress_range", "r_ratio"),
        static=(),
        noise=0.005,
        eol_threshold=0.5,
        context=20,
        time_unit="kilocycles",
        physics=CRACK_PHYSICS,
    ),
    "ageing": DatasetInfo(
        name="ageing",
        target="durability",
        covariates=("temperature", "humidity"),
        static=(),
        noise=0.01,
        eol_threshold=0.5,
        context=52,  # one year of weekly measurements, then three years to forecast
        time_unit="weeks",
        physics=AGEING_PHYSICS,
    ),
}


def make_split(
    name: str,
    n_train: int,
    n_test: int,
    seed: int = 0,
    noise: float | None = None,
    missing: bool = False,
    hidden: bool = False,
) -> dict:
    """Train and test tables with disjoint specimens, for the benchmarks.

    Generates n_train + n_test specimens in one call and splits them by id: the first n_train
    are "train", the rest "test". Returns {"train", "test", "test_clean", "info"}; info.noise is
    the noise actually used. Series are complete (no hidden measurements) unless `missing`.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    info = DATASET_INFO[name]
    noise = info.noise if noise is None else noise
    options = ({} if missing else {"missing_fraction": 0.0}) | ({"hidden": True} if hidden else {})
    noisy, clean = DATASETS[name](n_specimens=n_train + n_test, seed=seed, noise=noise, **options)
    ids = noisy["specimen_id"].unique()
    is_test = noisy["specimen_id"].isin(ids[n_train:]).to_numpy()
    return {
        "train": noisy[~is_test].reset_index(drop=True),
        "test": noisy[is_test].reset_index(drop=True),
        "test_clean": clean[is_test].reset_index(drop=True),
        "info": dataclasses.replace(info, noise=noise),
    }
