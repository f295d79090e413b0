"""The viewer page: a sidebar to find and select runs, and the Scalars / Text / Figures / Runs tabs.

Served by ``python -m pyexp.viewer DIR`` and by ``panel serve pyexp/viewer/page --args DIR``
(see ``page/``); this file is also a Panel script of its own, which prepares the server only
when its first page is asked for.
"""

from __future__ import annotations

import html
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import panel as pn
from panel.io.state import set_curdoc

# Absolute imports: `panel serve` runs this file as a script, outside its package.
from pyexp.viewer._memory import tune_allocator
from pyexp.viewer.catalog import Catalog, shared_catalog
from pyexp.viewer.data import ViewerError, filter_runs, resolve_run, run_colors, varying_keys
from pyexp.viewer.runlist import RunList, run_items
from pyexp.viewer.runsview import RunsView
from pyexp.viewer.views import FiguresView, ScalarsView, TextView, short_names

#: Runs selected when a page opens: those of the newest timestamp folder, at most this many.
DEFAULT_SELECTION = 10
#: Seconds between two refreshes of the Runs table (it re-reads every config's status).
RUNS_TABLE_SECONDS = 3.0
#: Seconds between two redraws while the selected runs are read one after the other.
FILL_IN_SECONDS = 0.4
_SCALARS, _TEXT, _FIGURES, _RUNS = range(4)
#: Folders whose server was prepared (allocator, default runs read, warm-up) in this process.
_PREPARED: set[Path] = set()
_PREPARED_LOCK = threading.Lock()


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
        warm: Whether the server was prepared before this page was asked for (the title's
            ``data-warm``); default: whether it is now.
    """

    def __init__(self, root: str | Path, refresh_seconds: float = 1.0,
                 query: dict[str, list[str]] | None = None, warm: bool | None = None) -> None:
        self.catalog: Catalog = shared_catalog(root)
        self.root = self.catalog.root
        self.warm = self.root in _PREPARED if warm is None else warm
        query = _session_query() if query is None else query
        self.scalars = ScalarsView(self.catalog)
        self.text = TextView(self.catalog)
        self.figures = FiguresView(self.catalog)
        self.runs_view = RunsView(self.catalog, self._set_selection)

        self.name_filter = pn.widgets.TextInput(name="Filter runs (regex)", placeholder="e.g. lr0\\.1",
                                                value=_first(query, "filter"),
                                                css_classes=["pyexp-filter"])
        self.config_filter = pn.widgets.TextInput(
            name="Filter by config", placeholder="e.g. lr=0.01, model.depth>=2",
            value=_first(query, "config"), css_classes=["pyexp-config-filter"])
        self.color_by = pn.widgets.Select(name="Colour by", options=["run"], value="run",
                                          css_classes=["pyexp-color-by"])
        self.selector = RunList(sizing_mode="stretch_width", css_classes=["pyexp-runs"])
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
                            ("Runs", self.runs_view.layout),
                            sizing_mode="stretch_width", dynamic=True)
        self._refused: list[str] = []
        self._stale = {_TEXT: True, _FIGURES: True}
        self._updating = False
        self._user_picked = False
        self._known_runs: list[str] = []
        self._filter_errors: list[str] = []
        self._runs: list[str] = []
        self._colors: dict[str, str] = {}
        self._loading = False
        self._table_shown = 0.0
        doc = pn.state.curdoc
        self._served = doc is not None and doc.session_context is not None
        self._first_page = self._served
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
        self.tabs.param.watch(lambda _e: self._render_tab(opening=True), "active")
        self._refresh_seconds = refresh_seconds

    # ----------------------------------------------------------------- layout
    def panel(self) -> Any:
        """The page as a Panel layout (starts the live refresh when served)."""
        warm = "true" if self.warm else "false"
        sidebar = pn.Column(
            pn.pane.HTML(f"<h3 style='margin:4px 0' class='pyexp-title' data-warm='{warm}'>"
                         f"pyexp viewer</h3>"
                         f"<small title='{html.escape(str(self.root))}'>{html.escape(str(self.root))}</small>"),
            self.name_filter, self.config_filter, self.color_by,
            pn.pane.HTML("<b style='font:13px sans-serif'>Runs</b>", margin=(0, 10)), self.selector,
            pn.Row(self.select_all, self.select_none), self.legend,
            pn.pane.HTML("<hr style='border:0;border-top:1px solid #ddd;margin:4px 0'>",
                         sizing_mode="stretch_width"), self.smoothing, self.x_mode, width=340,
            css_classes=["pyexp-sidebar"])
        page = pn.Row(sidebar, pn.Column(self.notice, self.tabs, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
        if self._refresh_seconds and pn.state.curdoc is not None:
            # Started once the browser is connected: Panel keeps re-trying to start a periodic
            # callback on every tick until then, which would hold a core while the page loads.
            period = int(self._refresh_seconds * 1000)
            pn.state.onload(lambda: pn.state.add_periodic_callback(self.tick, period=period))
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
        self.color_by.options = ["run", *varying_keys(self.catalog.configs())]
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
            keep = set(shown)
            self.selector.param.update(items=run_items(shown),
                                       value=[r for r in selected if r in keep])
        finally:
            self._updating = False
        self._filter_errors = errors
        self._on_selection()
        if self.tabs.active == _RUNS:
            self._update_table()

    def _on_pick(self, _event: Any) -> None:
        if not self._updating:
            self._user_picked = True
            self._on_selection()

    def _set_selection(self, runs: list[str]) -> None:
        self._user_picked = True
        listed = set(self.selector.options)
        self.selector.value = [r for r in runs if r in listed]

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
        chosen = set(self.selector.value)
        return [r for r in self.selector.options if r in chosen]

    def _on_selection(self) -> None:
        selected = self.selected
        pending = [r for r in selected if self.catalog.version(r) < 0]
        if self._served and pending and len(pending) == len(selected):
            # One run now, for a first chart with the page; the others fill in after it loaded.
            self.catalog.load(pending.pop(0))
        runs = [r for r in selected if not self._served or self.catalog.version(r) >= 0]
        if self._first_page and len(runs) > 1:
            # Drawing ten runs' lines costs the browser seconds: the page comes with one.
            runs = runs[:1]
        self._first_page = False
        if self._served and len(runs) < len(selected) and not self._loading:
            self._loading = True
            pn.state.onload(self._fill_in)
        self._draw(selected, runs)

    def _draw(self, selected: list[str], runs: list[str]) -> None:
        self._runs = runs
        colors = run_colors(selected, self.catalog.configs(selected), self.color_by.value)
        names = short_names(selected)
        self.legend.object = "".join(
            f"<div title='{html.escape(r)}' style='font:12px sans-serif;white-space:nowrap;"
            f"overflow:hidden;text-overflow:ellipsis'><span style='display:inline-block;"
            f"width:10px;height:10px;margin-right:4px;background:{colors[r]}'></span>"
            f"{html.escape(names[r])}</div>" for r in selected)
        self._colors = colors
        self.scalars.update(runs, colors)
        self._seen = {r: self.catalog.version(r) for r in runs}
        self._stale = {_TEXT: True, _FIGURES: True}
        self._render_tab()
        self.runs_view.select(selected)
        self._show_notice([], loading=len(selected) - len(runs))

    async def _fill_in(self) -> None:
        """Read the selected runs not read yet, one after the other, redrawing as they come."""
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            drawn = time.monotonic()
            while True:
                selected = self.selected
                pending = [r for r in selected if self.catalog.version(r) < 0]
                ready = [r for r in selected if self.catalog.version(r) >= 0]
                if not pending or (ready != self._runs and time.monotonic() - drawn > FILL_IN_SECONDS):
                    self._draw(selected, ready)
                    drawn = time.monotonic()
                if not pending:
                    break
                await loop.run_in_executor(None, self.catalog.load, pending[0])
        finally:
            self._loading = False

    def _on_settings(self) -> None:
        self.scalars.settings.update(smoothing=float(self.smoothing.value),
                                     x_mode=self.x_mode.value)
        self.scalars.redraw_all()

    def _render_tab(self, changed: set[str] | None = None, opening: bool = False) -> None:
        active = self.tabs.active
        if active == _RUNS:
            self._update_table(opening=opening)
            return
        if active == _SCALARS:
            return
        view = self.text if active == _TEXT else self.figures
        if self._stale.get(active):
            view.update(self._runs)
            self._stale[active] = False
        elif changed:
            view.update(self._runs, changed)

    def _update_table(self, opening: bool = False) -> None:
        self._table_shown = time.monotonic()
        self.runs_view.update(self.name_filter.value, self.config_filter.value, self.selected,
                              opening=opening)

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
            if self.tabs.active in (_TEXT, _FIGURES):
                self._stale[self.tabs.active] = False
                self._render_tab(changed)
        if self.tabs.active == _RUNS and time.monotonic() - self._table_shown > RUNS_TABLE_SECONDS:
            self._update_table()


def _first(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


def _session_query() -> dict[str, list[str]]:
    args = getattr(pn.state, "session_args", None) or {}
    return {k: [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in vals]
            for k, vals in args.items()}


def warm_up(root: str | Path) -> None:
    """Make every kind of thing a page is made of once before serving, so the first visitor
    does not pay for first-use imports, Panel's set-up and model building (a server prepared
    only by its first visit builds that page at once: nothing to gain there)."""
    import numpy as np
    from bokeh.resources import Resources
    from bokeh.server.views.static_handler import StaticHandler

    from pyexp.viewer.series import Series
    from pyexp.viewer.views import scalar_figure
    from pyexp.viewer.chart import PlotlyChart, for_browser

    pn.extension("plotly", "tabulator")  # its first call goes over every Panel class
    # The BokehJS file names in the page carry a hash of each file's contents.
    Resources(mode="server", root_url="/", path_versioner=StaticHandler.append_version).js_files
    # Every widget and layout of a page (one that shows no run, so nothing is read)...
    ViewerApp(root, refresh_seconds=0, query={"filter": ["(?!)"]}).panel().get_root()
    # ...and a chart.
    series = Series(*(np.arange(3.0),) * 5, n_points=3)
    figure = scalar_figure("warm-up", [("a/b", "#000", series)], smoothing=0.5, x_mode="step",
                           log=False)
    PlotlyChart(figure=for_browser(figure)).get_root()


def preload(root: str | Path) -> None:
    """Read the runs a first page will show, on a daemon thread, from the server's start.

    The first one first: the page comes with its lines; it fills the others in as they are
    read. Read before a browser comes, they cost it nothing; even read while it starts the
    page, they are drawn far sooner than read once it has loaded (``bench_viewer.py``: all ten
    in 2.1 s instead of 3.0 s), for a first chart at most a tenth of a second later.
    """
    catalog = shared_catalog(root)

    def read() -> None:
        for name in _default_selection(catalog.runs):
            catalog.load(name)

    threading.Thread(target=read, name="pyexp-viewer-preload", daemon=True).start()


def prepare(root: str | Path, warm: bool = True) -> None:
    """Everything a server does once for a folder (again: nothing), before its first page if
    it can.

    Args:
        root: The served folder.
        warm: Also :func:`warm_up`; pointless while the first page is being built anyway (it
            would only build the same kinds of things twice).
    """
    key = Path(root).resolve()
    with _PREPARED_LOCK:
        if key in _PREPARED:
            return
        _PREPARED.add(key)
    tune_allocator()
    preload(key)
    if warm:
        warm_up(key)


def create_app(root: str | Path, refresh_seconds: float = 1.0,
               setup: Callable[[], None] | None = None) -> Any:
    """Build the viewer page for one session (what the server calls per browser tab).

    Served, the page goes out as an empty frame and is built on the server's next tick, while
    the browser fetches and starts the page's JavaScript (about a second): the browser pulls
    the finished page when it connects, so building it (and ``setup``) delays nobody.
    """
    pn.extension("plotly", "tabulator")
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        if setup is not None:
            setup()
        return ViewerApp(root, refresh_seconds=refresh_seconds).panel()
    query = _session_query()
    warm = Path(root).resolve() in _PREPARED
    frame = pn.Row(sizing_mode="stretch_width")
    built = False

    def build() -> None:
        nonlocal built
        if built:
            return
        with set_curdoc(doc):
            if "dist_url" not in doc.template_variables and not pn.state.loaded:
                # Panel fills this in as it sends the HTML, and components made before it
                # would point their stylesheets at its CDN: build right after. (A session
                # made by a websocket, its first having expired unused, has no HTML: it is
                # built once the browser has it.)
                doc.add_timeout_callback(build, 5)
                return
            built = True
            try:
                if setup is not None:
                    setup()
                page = ViewerApp(root, refresh_seconds=refresh_seconds, query=query,
                                 warm=warm).panel()
            except Exception as exc:  # noqa: BLE001 - shown on the page, not lost in a log
                traceback.print_exc()
                page = pn.pane.Alert(f"pyexp viewer: could not build the page: "
                                     f"{type(exc).__name__}: {html.escape(str(exc))}",
                                     alert_type="danger")
            frame.objects = [page]

    doc.add_next_tick_callback(build)
    pn.state.onload(build)
    return frame


def served_root() -> Path:
    """The folder given to ``panel serve ... --args DIR`` (its scripts see it as ``sys.argv[1]``)."""
    return Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()


def serve_page() -> None:
    """What ``panel serve`` runs per session: the page (preparing the server if nothing did)."""
    root = served_root()
    create_app(root, setup=lambda: prepare(root, warm=False)).servable(title="pyexp viewer")


if __name__.startswith("bokeh"):  # `panel serve pyexp/viewer/app.py --args DIR`
    # Bokeh runs this file afresh for every session; the package's own module keeps state.
    from pyexp.viewer.app import serve_page as _serve_page

    _serve_page()
