"""Fixtures for every test folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pyexp_testing import Script


@pytest.fixture
def script(tmp_path: Path):
    """``script(source, name="main.py")`` writes a dedented script and returns a :class:`Script`."""

    def make(source: str, name: str = "main.py") -> Script:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return Script(path)

    return make
