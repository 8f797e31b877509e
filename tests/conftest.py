"""Small shared fixtures: a CLI runner and a writer of tiny CSV files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner


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
    """``coating_slice(n_specimens, n_rows) -> Path``: the first specimens of
    sample_data/coating.csv cut to their first rows, written once per session (read-only)."""
    import pandas as pd

    sample = Path(__file__).resolve().parents[1] / "sample_data" / "coating.csv"
    made: dict[tuple[int, int], Path] = {}

    def make(n_specimens: int, n_rows: int) -> Path:
        if (n_specimens, n_rows) not in made:
            df = pd.read_csv(sample)
            keep = sorted(df.specimen_id.unique())[:n_specimens]
            df = df[df.specimen_id.isin(keep) & (df.groupby("specimen_id").cumcount() < n_rows)]
            path = tmp_path_factory.mktemp("coating") / f"coating_{n_specimens}x{n_rows}.csv"
            df.to_csv(path, index=False)
            made[n_specimens, n_rows] = path
        return made[n_specimens, n_rows]

    return make
