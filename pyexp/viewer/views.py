"""The three tabs of the viewer: Scalars, Text, Figures.

Each view keeps its widgets per tag and updates them in place, so a live refresh changes the
data of a chart without rebuilding the page (and Plotly's ``uirevision`` keeps the user's zoom).
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn

from .catalog import Catalog
from .data import group_tags, value_at
from .chart import PlotlyChart, for_browser

#: Charts a page draws before the browser reports which ones are on screen.
FIRST_CHARTS = 6
_GRID = {"gridcolor": "#ebebeb", "linecolor": "#bbb", "zerolinecolor": "#ccc"}
_AXIS_TITLES = {"step": "step", "relative": "seconds since start", "wall": "wall time"}


def short_names(runs: list[str]) -> dict[str, str]:
    """Run names without the path prefix they all share (what a legend needs)."""
    parts = [r.split("/") for r in runs]
    common = 0
    for column in zip(*[p[:-1] for p in parts]):
        if len(set(column)) != 1:
            break
        common += 1
    return {r: "/".join(p[common:]) or r for r, p in zip(runs, parts)}


def scalar_figure(tag: str, lines: list[tuple[str, str, Any]], *, smoothing: float,
                  x_mode: str, log: bool) -> dict[str, Any]:
    """A Plotly figure (as a dict) of one tag: ``lines`` are ``(run, colour, Series or None)``."""
    names = short_names([run for run, _, _ in lines])
    data = []
    for run, color, series in lines:
        if series is None:
            continue
        hover = (f"<b>{html.escape(names[run])}</b><br>step %{{customdata}}<br>"
                 "%{y}<extra></extra>")
        raw = {"type": "scatter", "mode": "lines", "x": series.x, "y": series.y,
               "customdata": series.iterations, "name": names[run], "legendgroup": run,
               "line": {"color": color, "width": 1.5}, "hovertemplate": hover,
               "meta": {"run": run, "kind": "raw"}}
        data.append(raw)
        if smoothing > 0:
            raw.update(opacity=0.25, showlegend=False)
            data.append({"type": "scatter", "mode": "lines", "x": series.x_smooth,
                         "y": series.y_smooth, "name": names[run], "legendgroup": run,
                         "line": {"color": color, "width": 2},
                         "hovertemplate": f"<b>{html.escape(names[run])}</b> (smoothed)"
                                          "<br>x %{x}<br>%{y}<extra></extra>",
                         "meta": {"run": run, "kind": "smoothed"}})
    layout = {"title": {"text": html.escape(tag), "font": {"size": 14}},
              "uirevision": tag, "hovermode": "closest", "showlegend": False,
              "margin": {"l": 50, "r": 10, "t": 36, "b": 40},
              "xaxis": {"title": {"text": _AXIS_TITLES[x_mode]}, **_GRID,
                        "type": "date" if x_mode == "wall" else "linear"},
              "yaxis": {"type": "log" if log else "linear", "exponentformat": "e", **_GRID},
              # Plain colours, not a named template: validating a template costs ~0.1 s a chart.
              "plot_bgcolor": "white", "paper_bgcolor": "white"}
    return {"data": data, "layout": layout}


class _Sections:
    """Collapsible cards grouped by tag prefix; rebuilt only when the set of tags changes."""

    def __init__(self, empty: str, columns: int = 1) -> None:
        self.columns = columns
        self.layout = pn.Column(sizing_mode="stretch_width")
        self._tags: tuple[str, ...] | None = None
        self._empty = empty
        self._cards: dict[str, Any] = {}

    def arrange(self, tags: set[str], item: Any) -> None:
        key = tuple(sorted(tags))
        if key == self._tags:
            return
        self._tags = key
        if not key:
            self.layout.objects = [pn.pane.Alert(self._empty, alert_type="light")]
            return
        cards = []
        for prefix, members in group_tags(tags).items():
            title = f"{prefix or 'ungrouped'} ({len(members)})"
            old = self._cards.get(prefix)
            collapsed = old.collapsed if old is not None else False
            items = [item(tag) for tag in members]
            if self.columns > 1:
                items = [pn.GridBox(*items, ncols=self.columns, sizing_mode="stretch_width")]
            card = pn.Card(*items, title=title, collapsed=collapsed,
                           sizing_mode="stretch_width", css_classes=["pyexp-section"])
            self._cards[prefix] = card
            cards.append(card)
        self.layout.objects = cards


class ScalarsView:
    """One Plotly chart per scalar tag, every selected run on it."""

    def __init__(self, catalog: Catalog, max_points: int = 1000) -> None:
        self.catalog = catalog
        self.max_points = max_points
        self.sections = _Sections("No scalars logged by the selected runs yet.", columns=2)
        self._boxes: dict[str, Any] = {}
        self._stale: set[str] = set()
        self.settings: dict[str, Any] = {"smoothing": 0.0, "x_mode": "step"}

    def _box(self, tag: str) -> Any:
        if tag not in self._boxes:
            # Until the browser says where it is, a chart counts as in view if it is among the
            # first ones of the page.
            chart = PlotlyChart(height=340, sizing_mode="stretch_width", log_toggle=True,
                                in_view=len(self._boxes) < FIRST_CHARTS,
                                config={"displaylogo": False, "responsive": True},
                                css_classes=["pyexp-scalar", "pyexp-chart"], name=tag)
            chart.param.watch(lambda e, t=tag: e.new and t in self._stale and self._redraw_tag(t),
                              "in_view")
            self._boxes[tag] = chart
        return self._boxes[tag]

    def update(self, runs: list[str], colors: dict[str, str], changed: set[str] | None = None) -> None:
        """Redraw the charts of ``runs`` (only tags touched by ``changed`` runs, if given)."""
        self._runs, self._colors = runs, colors
        tags_by_run = {r: self.catalog.scalar_tags(r) for r in runs}
        tags = set().union(*tags_by_run.values()) if tags_by_run else set()
        self.sections.arrange(tags, self._box)
        if changed is None:
            touched = tags
        else:
            touched = set().union(set(), *(tags_by_run.get(r, set()) for r in changed))
        for tag in sorted(touched):
            self._redraw_tag(tag)

    def _series(self, run: str, tag: str) -> Any:
        s = self.settings
        return self.catalog.series(run, tag, smoothing=s["smoothing"], x_mode=s["x_mode"],
                                   max_points=self.max_points)

    def figure(self, tag: str) -> dict[str, Any]:
        """The Plotly figure (as a dict) of ``tag`` for the current runs and settings."""
        lines = [(run, self._colors.get(run, "#1f77b4"), self._series(run, tag)) for run in self._runs]
        log = self._boxes[tag].log if tag in self._boxes else False
        return scalar_figure(tag, lines, smoothing=self.settings["smoothing"],
                             x_mode=self.settings["x_mode"], log=log)

    def _redraw_tag(self, tag: str) -> None:
        chart = self._boxes.get(tag)
        if chart is None or not hasattr(self, "_runs"):
            return
        if not chart.in_view:
            self._stale.add(tag)  # drawn when it is scrolled to
            return
        self._stale.discard(tag)
        chart.figure = for_browser(self.figure(tag))

    def redraw_all(self) -> None:
        """Redraw every chart (after a change of smoothing or x axis)."""
        for tag in list(self._boxes):
            self._redraw_tag(tag)


class _SliderTagView:
    """A tag with an iteration slider and one column per run (the Text and Figures tabs)."""

    kind = ""

    def __init__(self, catalog: Catalog, empty: str) -> None:
        self.catalog = catalog
        self.sections = _Sections(empty)
        self._boxes: dict[str, Any] = {}
        self._sliders: dict[str, Any] = {}
        self._rows: dict[str, Any] = {}
        self._runs: list[str] = []
        self._quiet = False
        self._shown: dict[str, list[tuple[str, int]]] = {}

    def logged(self, run: str) -> dict[str, list[int]]:
        """Iterations at which each tag of this kind was logged by ``run``."""
        raise NotImplementedError

    def cell(self, run: str, tag: str, iteration: int) -> Any:
        raise NotImplementedError

    def _box(self, tag: str) -> Any:
        if tag not in self._boxes:
            slider = pn.widgets.DiscreteSlider(name="iteration", options=[0], value=0,
                                               css_classes=[f"pyexp-{self.kind}-slider"],
                                               width=360)
            slider.param.watch(lambda _e, t=tag: self._quiet or self._render(t), "value")
            row = pn.FlexBox(sizing_mode="stretch_width", css_classes=[f"pyexp-{self.kind}-row"])
            self._sliders[tag], self._rows[tag] = slider, row
            self._boxes[tag] = pn.Column(pn.pane.HTML(f"<b>{html.escape(tag)}</b>"), slider, row,
                                         sizing_mode="stretch_width",
                                         css_classes=[f"pyexp-{self.kind}"])
        return self._boxes[tag]

    def update(self, runs: list[str], changed: set[str] | None = None) -> None:
        """Show ``runs`` (re-render only the tags touched by ``changed`` runs, if given)."""
        self._runs = runs
        logged = {r: self.logged(r) for r in runs}
        tags = set().union(*logged.values()) if logged else set()
        self.sections.arrange(tags, self._box)
        for tag in sorted(tags):
            if changed is not None and not any(tag in logged.get(r, {}) for r in changed):
                continue
            its = sorted(set().union(*(logged[r].get(tag, []) for r in runs)))
            slider = self._sliders[tag]
            follow = slider.value == slider.options[-1] if slider.options else True
            options = its or [0]
            value = options[-1] if follow or slider.value not in options else slider.value
            self._quiet = True
            try:
                slider.options = options
                slider.value = value
            finally:
                self._quiet = False
            slider.visible = len(options) > 1
            self._render(tag)

    def _render(self, tag: str) -> None:
        iteration = self._sliders[tag].value
        # What each column shows; unchanged columns are not rebuilt, so a live refresh does not
        # reset a figure the user is rotating.
        plan = []
        for run in self._runs:
            its = self.logged(run).get(tag)
            if its is not None:
                before = [it for it in its if it <= iteration]
                plan.append((run, before[-1] if before else -1))
        if self._shown.get(tag) == plan:
            return
        self._shown[tag] = plan
        cells = []
        for run, _ in plan:
            try:
                cells.append(self.cell(run, tag, iteration))
            except Exception as exc:  # noqa: BLE001 - one unreadable record must not blank the tab
                cells.append(pn.pane.Alert(f"{html.escape(run)}: cannot show {html.escape(tag)} "
                                           f"({type(exc).__name__}: {html.escape(str(exc))[:200]})",
                                           alert_type="warning"))
        self._rows[tag].objects = cells


class TextView(_SliderTagView):
    """Logged text per tag; the slider picks the iteration (the latest at or before it)."""

    kind = "text"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog, "No text logged by the selected runs yet.")

    def logged(self, run: str) -> dict[str, list[int]]:
        return {tag: [it for it, _ in pairs] for tag, pairs in self.catalog.text(run).items()}

    def cell(self, run: str, tag: str, iteration: int) -> Any:
        hit = value_at(self.catalog.text(run).get(tag, []), iteration)
        body = "<i>nothing logged yet</i>" if hit is None else \
            f"<small>it {hit[0]}</small><pre class='pyexp-text-body'>{html.escape(hit[1])}</pre>"
        return pn.pane.HTML(f"<div class='pyexp-text-cell' title='{html.escape(run)}'>"
                            f"<b>{html.escape(run)}</b><br>{body}</div>",
                            width=380, styles={"overflow": "auto", "max-height": "420px"})


class FiguresView(_SliderTagView):
    """Logged figures: the PNG for ``interactive=False``, a live canvas for ``interactive=True``."""

    kind = "figure"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog, "No figures logged by the selected runs yet.")
        self._live: dict[tuple[str, str, int], Any] = {}

    def logged(self, run: str) -> dict[str, list[int]]:
        return self.catalog.figures(run)

    def cell(self, run: str, tag: str, iteration: int) -> Any:
        its = [it for it in self.catalog.figures(run).get(tag, []) if it <= iteration]
        title = pn.pane.HTML(f"<b title='{html.escape(run)}'>{html.escape(run)}</b>")
        if not its:
            return pn.Column(title, pn.pane.HTML("<i>not logged yet</i>"))
        it = its[-1]
        title.object += f" <small>it {it}</small>"
        reader = self.catalog.figure_reader(run)
        notice = None
        key = (run, tag, it)
        if key in self._live or reader.figure_interactive(tag, it):
            if key not in self._live:
                try:
                    from .mplcanvas import MplFigure

                    self._live = dict(list(self._live.items())[-15:])
                    self._live[key] = MplFigure(reader.load_figure(tag, it),
                                                css_classes=["pyexp-mpl-figure"])
                except ImportError:
                    notice = "matplotlib is not installed: showing the static image " \
                             '(pip install "pyexp[viewer]")'
                except Exception as exc:  # noqa: BLE001 - e.g. the pickle needs a missing class
                    notice = f"cannot load the interactive figure ({type(exc).__name__}: " \
                             f"{html.escape(str(exc))[:200]}); showing the static image"
            if key in self._live:
                return pn.Column(title, self._live[key])
        png = reader.load_figure_png(tag, it)
        parts = [title]
        if notice:
            parts.append(pn.pane.Alert(notice, alert_type="warning"))
        parts.append(pn.pane.PNG(png, width=480, css_classes=["pyexp-png"]) if png
                     else pn.pane.HTML("<i>no image stored for this figure</i>"))
        return pn.Column(*parts)
