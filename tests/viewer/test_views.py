"""The tabs' Panel objects built in-process (no server): figure fallbacks, text per iteration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyexp_testing import write_run

pn = pytest.importorskip("panel")


@pytest.fixture
def catalog(tmp_path: Path):
    from pyexp.viewer.catalog import Catalog

    write_run(tmp_path, "exp", "2024-01-25_14-30-00", "a", {"lr": 0.1}, steps=20, figures=True)
    return Catalog(tmp_path)


def kinds(obj) -> list[str]:
    return [type(o).__name__ for o in obj.select()]


def test_interactive_figure_is_a_live_canvas_and_static_one_a_png(catalog) -> None:
    from pyexp.viewer.views import FiguresView

    run = catalog.runs[0]
    view = FiguresView(catalog)
    assert "MplFigure" in kinds(view.cell(run, "landscape", 10))
    static = kinds(view.cell(run, "curve", 10))
    assert "PNG" in static and "MplFigure" not in static


def test_interactive_figure_falls_back_to_png_with_a_notice(catalog, monkeypatch) -> None:
    from pyexp.viewer.views import FiguresView

    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_webagg_core", None)
    monkeypatch.delitem(sys.modules, "pyexp.viewer.mplcanvas", raising=False)
    cell = FiguresView(catalog).cell(catalog.runs[0], "landscape", 10)
    alerts = [o for o in cell.select(pn.pane.Alert)]
    assert "PNG" in kinds(cell) and alerts
    assert "matplotlib is not installed: showing the static image" in alerts[0].object


def test_text_cell_shows_the_latest_text_at_or_before_the_iteration(catalog) -> None:
    from pyexp.viewer.views import TextView

    view = TextView(catalog)
    run = catalog.runs[0]
    assert "hello at 10" in view.cell(run, "sample", 15).object
    assert "hello at 0" in view.cell(run, "sample", 9).object
