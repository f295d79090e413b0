"""One scalar chart: a Plotly figure drawn by plotly.js from a plain dict, one model per chart.

Panel's Plotly pane gives every trace its own data source model (ten runs on twenty charts are
two hundred models to build, send and render); this component sends the figure as one
property, its arrays as binary buffers, and lets plotly.js (loaded by Panel's plotly extension)
``react`` to changes, so a zoom survives a live update (``layout.uirevision``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import panel
import param
from panel.custom import JSComponent

_ESM = r"""
// Charts are drawn one per browser task, so the browser shows the first chart as soon as it
// is drawn instead of after every chart of the page (twenty plotly.js draws take a while).
const queue = window.__pyexpChartQueue || (window.__pyexpChartQueue = { jobs: [], busy: false });
function pump() {
  const job = queue.jobs.shift();
  try {
    if (job) job();
  } finally {
    if (queue.jobs.length) setTimeout(pump, 0); else queue.busy = false;
  }
}
function later(job) {
  if (queue.busy) {
    if (!queue.jobs.includes(job)) queue.jobs.push(job);
    return;
  }
  queue.busy = true;  // the first chart now, the others after it was shown
  try {
    job();
  } finally {
    setTimeout(pump, 0);
  }
}

export function render({ model, el }) {
  const root = document.createElement("div");
  root.style.width = "100%";
  root.style.height = "100%";
  root.style.display = "flex";
  root.style.flexDirection = "column";
  let box = null;
  if (model.log_toggle) {
    // The log scale is a view setting: applied here, no round trip to the server.
    const label = document.createElement("label");
    label.className = "pyexp-log";
    label.style.font = "12px sans-serif";
    label.style.userSelect = "none";
    box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !!model.log;
    box.addEventListener("change", () => { model.log = box.checked; draw(); });
    label.append(box, " log scale");
    root.appendChild(label);
  }
  const div = document.createElement("div");
  div.className = "pyexp-plot";
  div.style.width = "100%";
  div.style.flex = "1 1 auto";
  div.style.minHeight = "0";
  root.appendChild(div);
  el.appendChild(root);
  let drawn = false;
  let removed = false;
  const paint = () => {
    const fig = model.figure || {};
    if (removed || !fig.data) return;
    let layout = fig.layout || {};
    if (model.log_toggle) {
      layout = { ...layout, yaxis: { ...(layout.yaxis || {}), type: model.log ? "log" : "linear" } };
    }
    window.Plotly.react(div, fig.data, layout, model.config || {});
    drawn = true;
  };
  const draw = () => {
    if (!window.Plotly) { setTimeout(draw, 30); return; }
    later(paint);
  };
  const fit = () => { if (drawn && window.Plotly && div.offsetWidth) window.Plotly.Plots.resize(div); };
  model.on("figure", draw);
  model.on("log", () => { if (box) box.checked = !!model.log; draw(); });
  model.on("after_layout", fit);
  model.on("resize", fit);
  // Report whether the chart is on screen (or close): the server sends figures only to
  // charts someone can see, as TensorBoard draws only the cards in view.
  const seen = new IntersectionObserver((entries) => {
    const on = entries.some((e) => e.isIntersecting);
    if (on !== model.in_view) model.in_view = on;
  }, { rootMargin: "300px" });
  seen.observe(el);
  model.on("remove", () => { removed = true; seen.disconnect(); if (window.Plotly) window.Plotly.purge(div); });
  draw();
}
"""


def _plotly_css() -> str:
    """plotly.js's own rules (it adds them to the page's head, which a shadow root does not
    see), as Panel ships them for its Plotly pane."""
    try:
        return (Path(panel.__file__).parent / "dist" / "css" / "models" / "plotly.css").read_text()
    except OSError:  # an unusual Panel build: the essentials
        return (".js-plotly-plot .plotly .main-svg { position: absolute; top: 0; left: 0; "
                "pointer-events: none; } .js-plotly-plot .plotly .modebar { position: absolute; "
                "top: 2px; right: 2px; } .js-plotly-plot .plotly .svg-container "
                "{ position: relative; }")


class PlotlyChart(JSComponent):
    """A Plotly figure given as ``{"data": [...], "layout": {...}}`` (numpy arrays allowed)."""

    figure = param.Dict(default={}, doc="The figure: traces under 'data', the layout under 'layout'.")
    config = param.Dict(default={}, doc="plotly.js config (displaylogo, responsive, ...).")
    log_toggle = param.Boolean(default=False, doc="Show a 'log scale' checkbox above the chart.")
    log = param.Boolean(default=False, doc="Whether the y axis is logarithmic (with log_toggle).")
    in_view = param.Boolean(default=True, doc="Whether the chart is on (or near) the screen; "
                            "the browser keeps it up to date.")

    _esm = _ESM
    _stylesheets = [_plotly_css()]


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
