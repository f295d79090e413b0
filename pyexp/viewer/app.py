"""The viewer page: a sidebar to find and select runs, and the Scalars / Text / Figures tabs.

Also a Panel script: ``panel serve pyexp/viewer/app.py --args DIR``.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

import panel as pn

# Absolute imports: `panel serve` runs this file as a script, outside its package.
from pyexp.viewer.catalog import Catalog, shared_catalog
from pyexp.viewer.data import (
    ViewerError,
    filter_runs,
    resolve_run,
    run_colors,
    varying_keys,
)
from pyexp.viewer.views import FiguresView, ScalarsView, TextView, scalar_figure, short_names

#: Runs selected when a page opens: those of the newest timestamp folder, at most this many.
DEFAULT_SELECTION = 10



def _default_selection(runs: list[str]) -> list[str]:
    if not runs:
        return []

    def stamp(run: str) -> str:
        parts = run.split("/")
        return parts[-2] if len(parts) > 1 else ""

    newest = max(stamp(r) for r in runs)
    return [r for r in runs if stamp(r) == newest][:DEFAULT_SELECTION]


class ViewerApp:
    """One browser session of the viewer.

    Args:
        root: Folder whose runs are shown (only files inside it are ever read).
        refresh_seconds: How often new data and new runs are looked for (0: never).
        query: URL query arguments (``filter``, ``config``, ``run``); default: the session's.
    """

    def __init__(self, root: str | Path, refresh_seconds: float = 1.0,
                 query: dict[str, list[str]] | None = None) -> None:
        self.catalog: Catalog = shared_catalog(root)
        self.root = self.catalog.root
        query = _session_query() if query is None else query
        self.scalars = ScalarsView(self.catalog)
        self.text = TextView(self.catalog)
        self.figures = FiguresView(self.catalog)

        self.name_filter = pn.widgets.TextInput(name="Filter runs (regex)", placeholder="e.g. lr0\\.1",
                                                value=_first(query, "filter"),
                                                css_classes=["pyexp-filter"])
        self.config_filter = pn.widgets.TextInput(
            name="Filter by config", placeholder="e.g. lr=0.01, model.depth>=2",
            value=_first(query, "config"), css_classes=["pyexp-config-filter"])
        self.color_by = pn.widgets.Select(name="Colour by", options=["run"], value="run",
                                          css_classes=["pyexp-color-by"])
        self.selector = pn.widgets.MultiSelect(name="Runs", options=[], size=12,
                                               css_classes=["pyexp-runs"])
        self.select_all = pn.widgets.Button(name="Select shown", button_type="light")
        self.select_none = pn.widgets.Button(name="Clear", button_type="light")
        self.smoothing = pn.widgets.FloatSlider(name="Smoothing", start=0.0, end=0.99, step=0.01,
                                                value=0.0, css_classes=["pyexp-smoothing"])
        self.x_mode = pn.widgets.RadioButtonGroup(
            name="x axis", options={"Step": "step", "Relative": "relative", "Wall": "wall"},
            value="step", css_classes=["pyexp-xmode"])
        self.notice = pn.pane.Alert("", alert_type="warning", visible=False,
                                    css_classes=["pyexp-notice"])
        self.legend = pn.pane.HTML("", css_classes=["pyexp-legend"], sizing_mode="stretch_width")
        self.tabs = pn.Tabs(("Scalars", self.scalars.sections.layout),
                            ("Text", self.text.sections.layout),
                            ("Figures", self.figures.sections.layout),
                            sizing_mode="stretch_width", dynamic=False)
        self._refused: list[str] = []
        self._stale = {1: True, 2: True}
        self._updating = False
        self._user_picked = False
        self._known_runs: list[str] = []
        self._filter_errors: list[str] = []
        self._runs: list[str] = []
        self._loading = False
        doc = pn.state.curdoc
        self._first_page = doc is not None and doc.session_context is not None
        self._served = doc is not None and doc.session_context is not None
        self._seen: dict[str, int] = {}

        wanted = [n for v in query.get("run", []) for n in v.split(",") if n]
        self._apply_filters(initial=wanted or None)

        for w in (self.name_filter, self.config_filter):
            w.param.watch(lambda _e: self._apply_filters(), "value")
        self.color_by.param.watch(lambda _e: self._on_selection(), "value")
        self.selector.param.watch(self._on_pick, "value")
        self.select_all.on_click(lambda _e: self._set_selection(list(self.selector.options)))
        self.select_none.on_click(lambda _e: self._set_selection([]))
        self.smoothing.param.watch(lambda _e: self._on_settings(), "value_throttled")
        self.x_mode.param.watch(lambda _e: self._on_settings(), "value")
        self.tabs.param.watch(lambda _e: self._render_tab(), "active")
        self._refresh_seconds = refresh_seconds

    # ----------------------------------------------------------------- layout
    def panel(self) -> Any:
        """The page as a Panel layout (starts the live refresh when served)."""
        sidebar = pn.Column(
            pn.pane.HTML(f"<h3 style='margin:4px 0'>pyexp viewer</h3>"
                         f"<small>{html.escape(str(self.root))}</small>"),
            self.name_filter, self.config_filter, self.color_by, self.selector,
            pn.Row(self.select_all, self.select_none), self.legend,
            pn.layout.Divider(), self.smoothing, self.x_mode, width=320,
            css_classes=["pyexp-sidebar"])
        page = pn.Row(sidebar, pn.Column(self.notice, self.tabs, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
        if self._refresh_seconds and pn.state.curdoc is not None:
            pn.state.add_periodic_callback(self.tick, period=int(self._refresh_seconds * 1000))
        return page

    # ----------------------------------------------------------------- selection
    def _apply_filters(self, initial: list[str] | None = None) -> None:
        runs = self._known_runs = self.catalog.runs
        errors = []
        try:
            shown = filter_runs(runs, self.catalog.configs(), self.name_filter.value,
                                self.config_filter.value)
        except ViewerError as exc:
            shown, errors = runs, [str(exc)]
        keys = varying_keys(self.catalog.configs())
        self.color_by.options = ["run", *keys]
        if initial is not None:
            selected = []
            for name in initial:
                try:
                    resolve_run(self.root, name)
                except ViewerError as exc:
                    self._refused.append(str(exc))
                    continue
                if name in runs:
                    selected.append(name)
        elif self._user_picked:
            selected = [r for r in self.selector.value if r in shown]
        else:
            selected = _default_selection(shown)
        self._updating = True
        try:
            self.selector.options = shown
            self.selector.value = [r for r in selected if r in shown]
        finally:
            self._updating = False
        self._filter_errors = errors
        self._on_selection()

    def _on_pick(self, _event: Any) -> None:
        if not self._updating:
            self._user_picked = True
            self._on_selection()

    def _set_selection(self, runs: list[str]) -> None:
        self._user_picked = True
        self.selector.value = runs

    def _show_notice(self, errors: list[str], loading: int = 0) -> None:
        lines = list(self._refused) + self._filter_errors + errors
        if loading:
            lines.append(f"loading {loading} more run(s)...")
        if not self.catalog.runs:
            lines.insert(0, f"No runs found under {self.root}. A run is a folder with a .pyexp "
                            "marker, written by pyexp.Logger (or an experiment with a logger "
                            "parameter); this page updates when one appears.")
        bad = [f"{r}: {e}" for r, e in self.catalog.errors.items() if r in self.selector.value]
        lines += [f"could not read {b}" for b in bad[:5]]
        self.notice.object = "<br>".join(html.escape(line) for line in lines)
        self.notice.visible = bool(lines)

    @property
    def selected(self) -> list[str]:
        """Names of the selected runs, in list order."""
        return [r for r in self.selector.options if r in set(self.selector.value)]

    def _on_selection(self) -> None:
        selected = self.selected
        pending = [r for r in selected if self.catalog.version(r) < 0]
        if self._served and pending:
            # Read one run now (a first chart with the page), the others on a worker thread
            # after the page loaded, so large logs fill in instead of delaying the first chart.
            if len(pending) == len(selected):
                self.catalog.safe(pending.pop(0), lambda _reader: None)
            if pending and not self._loading:
                self._loading = True
                pn.state.onload(self._load_rest)
        runs = [r for r in selected if not self._served or self.catalog.version(r) >= 0]
        if self._first_page and len(runs) > 1 and not self._loading:
            # Even with every run in memory, drawing ten runs' lines takes the browser seconds:
            # send one run with the page and the rest once it is shown.
            runs = runs[:1]
            self._loading = True
            pn.state.onload(self._load_rest)
        self._first_page = False
        self._runs = runs
        colors = run_colors(selected, self.catalog.configs(selected), self.color_by.value)
        names = short_names(selected)
        self.legend.object = "".join(
            f"<div title='{html.escape(r)}' style='font:12px sans-serif;white-space:nowrap'>"
            f"<span style='display:inline-block;width:10px;height:10px;margin-right:4px;"
            f"background:{colors[r]}'>"
            f"</span>{html.escape(names[r])}</div>" for r in selected)
        self._colors = colors
        self.scalars.update(runs, colors)
        self._seen = {r: self.catalog.version(r) for r in runs}
        self._stale = {1: True, 2: True}
        self._render_tab()
        self._show_notice([], loading=len(selected) - len(runs))

    async def _load_rest(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        tried: set[str] = set()
        try:
            self._on_selection()
            while True:
                pending = [r for r in self.selected
                           if self.catalog.version(r) < 0 and r not in tried]
                if not pending:
                    break
                tried.add(pending[0])
                await loop.run_in_executor(None, self.catalog.safe, pending[0], lambda _r: None)
                self._on_selection()
        finally:
            self._loading = False

    def _on_settings(self) -> None:
        self.scalars.settings.update(smoothing=float(self.smoothing.value),
                                     x_mode=self.x_mode.value)
        self.scalars.redraw_all()

    def _render_tab(self, changed: set[str] | None = None) -> None:
        active = self.tabs.active
        if active == 0:
            return
        view = self.text if active == 1 else self.figures
        if self._stale.get(active):
            view.update(self._runs)
            self._stale[active] = False
        elif changed:
            view.update(self._runs, changed)

    # ----------------------------------------------------------------- live updates
    def tick(self) -> None:
        """Look for new runs and new data of the selected runs; redraw what changed."""
        # The catalog is shared by all sessions: compare with what this session has seen,
        # not with what the refresh calls report (another session may have read it first).
        self.catalog.refresh_runs()
        if self.catalog.runs != self._known_runs:
            before = set(self.selector.options)
            self._apply_filters()
            fresh = [r for r in self.selector.options if r not in before]
            if fresh and not self._user_picked:
                self._updating = True
                try:
                    self.selector.value = _default_selection(list(self.selector.options))
                finally:
                    self._updating = False
                self._on_selection()
        runs = self._runs
        self.catalog.refresh(runs)
        changed = {r for r in runs if self.catalog.version(r) != self._seen.get(r)}
        if changed:
            self._seen.update((r, self.catalog.version(r)) for r in changed)
            self.scalars.update(runs, self._colors, changed)
            self._stale = {k: True for k in self._stale}
            if self.tabs.active:
                self._stale[self.tabs.active] = False
                self._render_tab(changed)


def _first(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


def _session_query() -> dict[str, list[str]]:
    args = getattr(pn.state, "session_args", None) or {}
    return {k: [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in vals]
            for k, vals in args.items()}


def warm_up() -> None:
    """Import what the first page needs before serving it (plotly loads its classes lazily,
    ~1-2 s on first use), so the first visitor does not wait for it."""
    import numpy as np

    from pyexp.viewer.data import Series

    series = Series(*(np.arange(3.0),) * 5, n_points=3)
    figure = scalar_figure("warm-up", [("a/b", "#000", series)], smoothing=0.5, x_mode="step",
                           log=False)
    pn.pane.Plotly(figure).get_root()


def preload(root: str | Path) -> None:
    """Start reading the first run a first page will show, on a daemon thread, while the server
    starts and the browser fetches the page's JavaScript. Only one: reading more here would
    compete (for the GIL) with serving that first page; the page loads the others itself."""
    import threading

    catalog = shared_catalog(root)

    def read() -> None:
        for name in _default_selection(catalog.runs)[:1]:
            catalog.safe(name, lambda _reader: None)

    threading.Thread(target=read, name="pyexp-viewer-preload", daemon=True).start()


def create_app(root: str | Path, refresh_seconds: float = 1.0) -> Any:
    """Build the viewer page for one session (what the server calls per browser tab)."""
    pn.extension("plotly")
    return ViewerApp(root, refresh_seconds=refresh_seconds).panel()


if __name__.startswith("bokeh"):  # `panel serve pyexp/viewer/app.py --args DIR`
    create_app(sys.argv[1] if len(sys.argv) > 1 else ".").servable(title="pyexp viewer")
