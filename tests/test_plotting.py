"""Figures: valid PNG and SVG files, the right panels, clear errors, and atomic writes."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from durability_cli import plotting
from durability_cli.errors import InputError

COLUMNS = dict(id_col="specimen_id", time_col="time", target="durability")


def tables(n_specimens: int = 3, *, datetime: bool = False):
    """history, forecast, truth, eol for specimens S1..Sn: 8 measured rows, then 4 forecast rows."""
    rng = np.random.default_rng(0)
    history, forecast, truth, eol = [], [], [], []
    for i in range(n_specimens):
        sid = f"S{i + 1}"
        steps = np.arange(12)
        time = steps * 10.0
        if datetime:
            time = pd.Timestamp("2024-01-01") + pd.to_timedelta(steps * 7, unit="D")
        clean = 1.0 - (0.04 + 0.01 * i) * steps
        measured = np.where(steps < 8, clean + rng.normal(0, 0.01, 12), np.nan)
        history.append(
            pd.DataFrame({"specimen_id": sid, "time": time, "durability": measured, "temperature": 20.0})
        )
        mean = clean[8:]
        spread = 0.02 * np.arange(1, 5)
        forecast.append(
            pd.DataFrame(
                {
                    "specimen_id": sid,
                    "time": time[8:],
                    "durability_mean": mean,
                    "durability_p10": mean - spread,
                    "durability_p25": mean - spread / 2,
                    "durability_p50": mean,
                    "durability_p75": mean + spread / 2,
                    "durability_p90": mean + spread,
                    "extrapolated": [False, False, True, True],
                }
            )
        )
        truth.append(pd.DataFrame({"specimen_id": sid, "time": time[8:], "durability": clean[8:]}))
        eol.append(
            {
                "specimen_id": sid,
                "eol_time": time[9],
                "eol_p10": time[8],
                "eol_p90": time[11],
                "status": "crosses",
            }
        )
    return pd.concat(history), pd.concat(forecast), pd.concat(truth), pd.DataFrame(eol)


def training_history():
    return [
        dict(
            epoch=e,
            train_loss=1.0 / e,
            val_rmse=[0.3, 0.2, 0.15, 0.16, 0.18][e - 1],
            teacher_forcing=max(0.0, 1 - e / 4),
            best=e <= 3,
            fed_measured=0.5,
            seconds=0.1,
        )
        for e in range(1, 6)
    ]


ERRORS = {
    "model": [0.01, 0.02, 0.03, 0.04],
    "persistence": [0.02, 0.05, 0.08, 0.1],
    "linear": [0.015, 0.04, 0.09, 0.2],
    "exponential": [0.012, 0.03, 0.05, 0.07],
}


# The library draws Figures; these write them the way the CLI does, so the tests see files.
def plot_forecasts(history, forecast, path, **options):
    return plotting.save_figure(plotting.plot_forecasts(history, forecast, **options), path)


def plot_horizon_errors(by_step, path, **options):
    return plotting.save_figure(plotting.plot_horizon_errors(by_step, **options), path)


def plot_training_history(history, path):
    return plotting.save_figure(plotting.plot_training_history(history), path)


def draw(kind: str, path, **extra):
    """Draw one of the three figures with the tiny data above."""
    if kind == "forecast":
        history, forecast, truth, eol = tables()
        return plot_forecasts(
            history, forecast, path, **COLUMNS, truth=truth, threshold=0.8, eol=eol, **extra
        )
    if kind == "horizon":
        return plot_horizon_errors(ERRORS, path, unit="durability", **extra)
    return plot_training_history(training_history(), path, **extra)


KINDS = ["forecast", "horizon", "training"]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def panels(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


@pytest.mark.parametrize("kind", KINDS)
def test_writes_png(tmp_path, kind):
    path = tmp_path / "figure.png"
    assert draw(kind, path) == path
    width, height = png_size(path)
    assert 600 <= width <= 4000 and 400 <= height <= 4000
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("kind", KINDS)
def test_writes_svg(tmp_path, kind):
    path = tmp_path / "figure.SVG"  # the extension is case-insensitive
    assert draw(kind, path) == path
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml") and "<svg" in text


def test_svg_is_reproducible(tmp_path):
    first = draw("horizon", tmp_path / "a.svg").read_bytes()
    assert draw("horizon", tmp_path / "b.svg").read_bytes() == first


@pytest.mark.parametrize("kind", KINDS)
def test_unsupported_format(tmp_path, kind):
    path = tmp_path / "plot.jpg"
    with pytest.raises(InputError) as err:
        draw(kind, path)
    assert str(err.value) == f"{path}: unsupported picture format; use .png or .svg"
    assert list(tmp_path.iterdir()) == []


def test_one_panel_per_specimen_spread_over_the_forecasts_in_table_order(tmp_path, figures):
    history, forecast, truth, eol = tables(5)
    plot_forecasts(history, forecast, tmp_path / "f.png", **COLUMNS, max_specimens=4, title="Run 7")
    (fig,) = figures
    # spread from the lowest forecast at the horizon (S5, the fastest) to the highest (S1), in the
    # table's order: the first four by id often shared one condition and hid every failure
    assert [ax.get_title() for ax in panels(fig)] == ["S1", "S2", "S4", "S5"]
    assert len(fig.axes) == 4  # a 2 x 2 grid
    assert (
        fig.get_suptitle()
        == "Run 7 (4 of 5 specimens: from the lowest forecast at the horizon to the highest)"
    )


def test_chosen_specimens_and_end_of_life_in_titles(tmp_path, figures):
    history, forecast, truth, eol = tables(5)
    eol.loc[eol["specimen_id"] == "S5", ["eol_time", "status"]] = [np.nan, "not within horizon"]
    plot_forecasts(
        history, forecast, tmp_path / "f.png", **COLUMNS, eol=eol, threshold=0.8, specimens=["S5", "S2"]
    )
    (fig,) = figures
    assert [ax.get_title() for ax in panels(fig)] == ["S5: not within horizon", "S2: end of life ≈ 90"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "measured",
        "80 % interval (p10-p90)",
        "50 % interval (p25-p75)",
        "forecast median",
        "extrapolated (outside the training range)",
        "end-of-life threshold",
        "end-of-life interval (p10-p90)",
        "predicted end of life (mean path)",
    ]
    # a table with the paths' median: a line at the median where the mean path does not cross says
    # so (the title said "not within horizon" beside a drawn end-of-life line)
    eol["eol_p50"] = eol["eol_time"]
    eol.loc[eol["specimen_id"] == "S5", "eol_p50"] = 95.0
    plot_forecasts(
        history, forecast, tmp_path / "g.png", **COLUMNS, eol=eol, threshold=0.8, specimens=["S5", "S2"]
    )
    assert [ax.get_title() for ax in panels(figures[1])] == [
        "S5: median end of life ≈ 95 (the mean path does not cross)",
        "S2: end of life ≈ 90",
    ]
    # where the paths' median crosses elsewhere than the mean path, the title gives eol_time (the
    # number --eol-out writes) and the median drawn (it gave the median alone: 129.3 in the title,
    # 127.853 in the table)
    eol.loc[eol["specimen_id"] == "S2", "eol_p50"] = 92.5
    plot_forecasts(history, forecast, tmp_path / "h.png", **COLUMNS, eol=eol, threshold=0.8, specimens=["S2"])
    assert [ax.get_title() for ax in panels(figures[2])] == [
        "S2: end of life ≈ 90 (median of the paths 92.5)"
    ]


def test_integer_ids_and_shuffled_rows(tmp_path, figures):
    history, forecast, _, _ = tables(3)
    history["specimen_id"] = history["specimen_id"].str[1:].astype(int)
    forecast["specimen_id"] = forecast["specimen_id"].str[1:].astype(int)
    forecast = forecast.sample(frac=1.0, random_state=0)
    plot_forecasts(history, forecast, tmp_path / "f.png", **COLUMNS, specimens=["2"])
    (ax,) = panels(figures[0])
    assert ax.get_title() == "2"
    (median,) = [line for line in ax.get_lines() if line.get_label() == "forecast median"]
    assert list(median.get_xdata()) == [80.0, 90.0, 100.0, 110.0]


def test_unknown_specimen(tmp_path):
    history, forecast, _, _ = tables()
    with pytest.raises(InputError) as err:
        plot_forecasts(history, forecast, tmp_path / "f.png", **COLUMNS, specimens=["S1", "S9"])
    assert str(err.value) == (
        "specimen 'S9' is not in the data (specimens: S1, S2, S3); check the id in column 'specimen_id'"
    )
    assert list(tmp_path.iterdir()) == []


def test_datetime_times(tmp_path):
    history, forecast, truth, eol = tables(2, datetime=True)
    path = plot_forecasts(
        history, forecast, tmp_path / "f.png", **COLUMNS, truth=truth, threshold=0.8, eol=eol
    )
    assert png_size(path)[0] > 600


def test_mean_only_forecast_without_id_column(tmp_path, figures):
    """A single-series forecast (no id column, no quantiles) draws its mean."""
    history, forecast, _, _ = tables(1)
    forecast = forecast[["time", "durability_mean"]]
    plot_forecasts(history, forecast, tmp_path / "f.svg", **COLUMNS)
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert legend == ["measured", "forecast mean"]


def test_missing_column_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"the previous picture")
    history, forecast, _, _ = tables()
    with pytest.raises(InputError) as err:
        plot_forecasts(history, forecast.drop(columns="durability_mean"), path, **COLUMNS)
    assert str(err.value).startswith("the forecast table has no column 'durability_mean'; it has ")
    assert path.read_bytes() == b"the previous picture"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("kind", KINDS)
def test_failure_while_saving_leaves_existing_file_untouched(tmp_path, monkeypatch, kind):
    path = tmp_path / "f.png"
    path.write_bytes(b"the previous picture")

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as out:
            out.write(b"\x89PNG half a picture")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        draw(kind, path)
    assert path.read_bytes() == b"the previous picture"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "errors, scale",
    [
        (ERRORS, "linear"),
        ({"model": [0.001, 0.01, 0.5], "persistence": [0.002, 0.05, 1.0]}, "log"),  # 3 decades
    ],
)
def test_horizon_errors_scale_and_emphasis(tmp_path, figures, errors, scale):
    plot_horizon_errors(errors, tmp_path / "h.png", metric="MAE")
    (ax,) = figures[0].axes
    assert ax.get_yscale() == scale
    assert ax.get_ylabel() == "MAE"
    widths = {line.get_label(): line.get_linewidth() for line in ax.get_lines()}
    assert all(widths["model"] > width for name, width in widths.items() if name != "model")


def test_training_history_marks_the_best_epoch(tmp_path, figures):
    plot_training_history(training_history(), tmp_path / "t.png")
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert legend[-1] == "best epoch 3 (RMSE 0.15): weights kept"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: plot_horizon_errors({}, p), "no errors to draw: by_step is empty"),
        (
            lambda p: plot_training_history([], p),
            "no training history to draw: the model file records no epochs",
        ),
        (
            lambda p: plot_training_history([{"epoch": 1, "train_loss": 0.1}], p),
            "training history entry 0 has no val_rmse, teacher_forcing, best; "
            "re-train the model with this version of durability",
        ),
    ],
)
def test_empty_or_incomplete_input(tmp_path, call, message):
    with pytest.raises(InputError) as err:
        call(tmp_path / "x.png")
    assert str(err.value) == message


def test_the_horizon_errors_title_names_the_compared_models():
    """evaluate -m A -m B draws every model: the title names the compared ones and says
    "baselines" only when there are baselines."""
    errors = {"model": [0.1, 0.2], "trend": [0.1, 0.3], "persistence": [0.2, 0.4], "linear": [0.3, 0.5]}
    title = panels(plotting.plot_horizon_errors(errors, unit="durability"))[0].get_title()
    assert title == "RMSE by forecast horizon: model vs trend, baselines"
    alone = plotting.plot_horizon_errors({"model": [0.1, 0.2]}, unit="durability")
    assert panels(alone)[0].get_title() == "RMSE by forecast horizon"
