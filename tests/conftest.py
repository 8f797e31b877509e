"""Small shared fixtures: a CLI runner and a writer of tiny CSV files."""

from __future__ import annotations

import textwrap

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
