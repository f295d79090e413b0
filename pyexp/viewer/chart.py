"""One scalar chart: a Plotly figure drawn by plotly.js from a plain dict, one model per chart.

Panel's Plotly pane gives every trace its own data source model (ten runs on twenty charts are
two hundred models to build, send and render); this component sends the figure as one
property, its arrays as binary buffers, and lets plotly.js (loaded by Panel's plotly extension)
``react`` to changes, so a zoom survives a live update (``layout.uirevision``).
"""

from __future__ import annotations

from typing import Any

import param
from panel.custom import JSComponent

_ESM = r"""
export function render({ model, el }) {
  const div = document.createElement("div");
  div.className = "pyexp-plot";
  div.style.width = "100%";
  div.style.height = "100%";
  el.appendChild(div);
  let drawn = false;
  const draw = () => {
    const fig = model.figure || {};
    if (!window.Plotly) { setTimeout(draw, 30); return; }
    if (!fig.data) return;
    window.Plotly.react(div, fig.data, fig.layout || {}, model.config || {});
    drawn = true;
  };
  const fit = () => { if (drawn && window.Plotly && div.offsetWidth) window.Plotly.Plots.resize(div); };
  model.on("figure", draw);
  model.on("after_layout", fit);
  model.on("resize", fit);
  model.on("remove", () => { if (window.Plotly) window.Plotly.purge(div); });
  draw();
}
"""


class PlotlyChart(JSComponent):
    """A Plotly figure given as ``{"data": [...], "layout": {...}}`` (numpy arrays allowed)."""

    figure = param.Dict(default={}, doc="The figure: traces under 'data', the layout under 'layout'.")
    config = param.Dict(default={}, doc="plotly.js config (displaylogo, responsive, ...).")

    _esm = _ESM


def for_browser(figure: dict[str, Any]) -> dict[str, Any]:
    """The figure with every array as float64 (BokehJS has no 64-bit integer arrays)."""
    import numpy as np

    data = []
    for trace in figure.get("data", []):
        trace = dict(trace)
        for key, value in trace.items():
            if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
                trace[key] = value.astype(np.float64)
        data.append(trace)
    return {"data": data, "layout": figure.get("layout", {})}
