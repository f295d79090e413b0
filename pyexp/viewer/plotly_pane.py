"""A Plotly pane that takes plain figure dicts and never imports the plotly Python package.

Panel's Plotly pane turns a dict into ``plotly.graph_objects.Figure`` first, which validates
every property: ~1-2 s of lazy imports for the first chart of a process and tens of
milliseconds per chart afterwards. The viewer builds its figures itself (they are valid by
construction), so this pane hands them to the browser as they are; numpy arrays still travel
as binary buffers.
"""

from __future__ import annotations

from typing import Any

import panel as pn


class _Figure:
    """The two attributes Panel's pane reads from a figure object."""

    __slots__ = ("_data", "_layout")

    def __init__(self, data: list[dict[str, Any]], layout: dict[str, Any]) -> None:
        self._data = data
        self._layout = layout


class FastPlotly(pn.pane.Plotly):
    """``pn.pane.Plotly`` for ``{"data": [...], "layout": {...}}`` dicts, without plotly.py."""

    def _to_figure(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return _Figure(list(obj.get("data", [])), dict(obj.get("layout", {})))
        return super()._to_figure(obj)
