"""Fixtures for every test folder; helpers live in ``pyexp_testing`` (the one helpers module)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from pyexp_testing import STRIPPED_PREFIXES, Script


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's PYEXP_* / RAY_* variables, in process or in its children."""
    for key in list(os.environ):
        if key.startswith(STRIPPED_PREFIXES):
            monkeypatch.delenv(key)


@pytest.fixture
def script(tmp_path: Path):
    """``script(source, name="main.py")`` writes a dedented script and returns a :class:`Script`."""

    def make(source: str, name: str = "main.py") -> Script:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return Script(path)

    return make
