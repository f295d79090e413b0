"""The Runs tab: a sortable table of every config, a parallel-coordinates view, CSV export."""

from __future__ import annotations

import io
import threading
from typing import Any, Callable

import panel as pn
from panel.io import hold
from panel.io.model import JSCode

from .catalog import Catalog
from .data import ViewerError, filter_runs
from .chart import PlotlyChart
from .runs_table import FIXED_COLUMNS, RunsIndex, numeric_columns, parallel_coordinates, table, to_csv

# A cell's full text on hover (names cut by the column width); a status shows its error.
_TOOLTIP = JSCode("""(e, cell) => { const d = cell.getRow().getData();
  if (cell.getField() === "status" && d.error) return d.error;
  const v = cell.getValue(); return v === null || v === undefined ? "" : String(v); }""")
_STATUS_COLORS = {"done": "#2ca02c", "failed": "#d62728", "running": "#1f77b4", "pending": "#7f7f7f"}
_STATUS_FORMAT = JSCode("""(cell) => { const v = cell.getValue() || "";
  const c = %s[v] || "#444"; cell.getElement().dataset.status = v;
  return `<span style="color:${c};font-weight:600">${v}</span>`; }""" % _STATUS_COLORS)


class RunsView:
    """One row per config below the folder; selecting rows selects those runs for the charts.

    Args:
        catalog: The served runs.
        on_select: Called with the run names the user selected in the table.
    """

    def __init__(self, catalog: Catalog, on_select: Callable[[list[str]], None]) -> None:
        self.catalog = catalog
        self.index = RunsIndex(catalog.root)
        self._on_select = on_select
        self._records: list[dict[str, Any]] = []
        self._columns: list[str] = []
        self._quiet = False
        self.table: Any = None
        self.summary: Any = None
        # Filled when the tab is first opened: the table's widget needs pandas, which a page
        # that only shows charts should not wait for.
        self.layout = pn.Column(sizing_mode="stretch_width", css_classes=["pyexp-runs-tab"])

    def _build(self) -> None:
        """The tab's widgets except the table (made by :meth:`_show` together with its rows)."""
        self.summary = pn.pane.HTML("", css_classes=["pyexp-runs-summary"])
        self.download = pn.widgets.FileDownload(
            callback=self._csv_file, filename="runs.csv", label="Export CSV", embed=False,
            button_type="light", width=140, css_classes=["pyexp-csv"])
        self.metric = pn.widgets.Select(name="Metric (parallel coordinates)", options=[],
                                        width=320, css_classes=["pyexp-metric"])
        self.metric.param.watch(lambda _e: self._draw_parcoords(), "value")
        self.parcoords = PlotlyChart(height=420, sizing_mode="stretch_width",
                                     config={"displaylogo": False, "responsive": True},
                                     css_classes=["pyexp-parcoords"])

    def _new_table(self, frame: Any, height: int) -> Any:
        """A table widget holding ``frame`` from the start (its first render shows the rows)."""
        sorters = list(self.table.sorters) if self.table is not None else []
        table = pn.widgets.Tabulator(
            frame, selectable="checkbox", disabled=True, show_index=False, pagination=None,
            height=height, sizing_mode="stretch_width", layout="fit_data_table",
            header_filters=False, css_classes=["pyexp-runs-table"], sorters=sorters,
            hidden_columns=["name", "error"], formatters={"status": _STATUS_FORMAT},
            frozen_columns=["run", "config"],
            configuration={"columnDefaults": {"tooltip": _TOOLTIP, "maxWidth": 320}})
        table.param.watch(self._on_table_selection, "selection")
        return table

    # ----------------------------------------------------------------- data
    def update(self, name_regex: str, config_query: str, selected: list[str], *,
               opening: bool = False) -> None:
        """Re-read statuses and statistics; show the configs the sidebar's filters let through.

        Args:
            name_regex: The sidebar's run filter.
            config_query: The sidebar's config filter.
            selected: The runs selected in the sidebar (their rows are ticked).
            opening: The tab is being shown right now (the browser is about to draw the table).
        """
        if self.summary is None:
            self._build()
        with hold():
            self._update(name_regex, config_query, selected, opening)
        self._load_statistics()

    def _update(self, name_regex: str, config_query: str, selected: list[str], opening: bool) -> None:
        rows = self.index.rows(self.catalog.runs)
        configs = {row.name: {"name": row.config_name, **row.config} for row in rows}
        try:
            shown = set(filter_runs([row.name for row in rows], configs, name_regex, config_query))
        except ViewerError:
            shown = {row.name for row in rows}  # the sidebar already says what is wrong
        rows = [row for row in rows if row.name in shown]
        columns, records = table(rows, {row.name: self.catalog.stats(row.name) for row in rows})
        counts = {s: sum(r["status"] == s for r in records) for s in _STATUS_COLORS}
        self.summary.object = (f"<b>{len(records)} configs</b>: " + ", ".join(
            f"<span class='pyexp-count-{s}'>{n} {s}</span>" for s, n in counts.items() if n))
        if records != self._records or columns != self._columns:
            self._show(columns, records, fresh=opening)
            # Remembered once shown: a failed update is retried by the next refresh.
            self._records, self._columns = records, columns
            self._update_metric(columns, records)
        self.select(selected)

    def _show(self, columns: list[str], records: list[dict[str, Any]], fresh: bool = False) -> None:
        """Put ``records`` in the table: new rows of the same columns go to the table shown;
        new columns, or a tab being opened (``fresh``), get a new table widget.

        The browser's table drops rows sent while it is still being built (Panel's Tabulator
        ignores a data change until its first layout), and a widget added to the page, then
        filled, reaches the browser as two messages: the table could stay empty for good. So a
        table only ever reaches the page with its rows, and a table being drawn (a new column
        set, the tab just opened) is replaced rather than refilled.
        """
        import pandas as pd

        frame = pd.DataFrame.from_records(records, columns=[*columns, "name", "error"])
        height = min(440, 42 + 30 * max(len(records), 1))
        self._quiet = True
        try:
            if self.table is not None and columns == self._columns and not fresh:
                self.table.param.update(value=frame, height=height)
                return
            old, self.table = self.table, self._new_table(frame, height)
            if old is None:
                self.layout.objects = [pn.Row(self.summary, pn.layout.HSpacer(), self.download,
                                              sizing_mode="stretch_width"),
                                       self.table, self.metric, self.parcoords]
            else:
                self.layout.objects = [self.table if o is old else o for o in self.layout.objects]
        finally:
            self._quiet = False

    def _update_metric(self, columns: list[str], records: list[dict[str, Any]]) -> None:
        metrics = [c for c in numeric_columns(columns, records) if c not in self._config_keys()]
        value = self.metric.value if self.metric.value in metrics else (metrics[0] if metrics else None)
        self.metric.param.update(options=metrics, value=value)
        self._draw_parcoords()

    def _config_keys(self) -> list[str]:
        return [c for c in self._columns if c not in FIXED_COLUMNS and not c.startswith("result.")
                and not c.endswith((" (last)", " (min)", " (max)"))]

    def _draw_parcoords(self) -> None:
        metric = self.metric.value
        if not metric or not self._records:
            self.parcoords.figure = {}
            self.parcoords.visible = False
            return
        self.parcoords.visible = True
        self.parcoords.figure = parallel_coordinates(self._config_keys(), metric, self._records)

    def _load_statistics(self) -> None:
        """Read the runs not read yet, in the background, for their last/min/max columns."""
        missing = [r["name"] for r in self._records
                   if r["name"] in set(self.catalog.runs) and self.catalog.stats(r["name"]) is None]
        if missing:
            start_statistics(self.catalog, missing)

    # ----------------------------------------------------------------- selection and export
    def select(self, names: list[str]) -> None:
        """Tick the rows of ``names`` (what the sidebar selected)."""
        if self.table is None:
            return
        wanted = set(names)
        rows = [i for i, r in enumerate(self._records) if r["name"] in wanted]
        if rows != list(self.table.selection):
            self._quiet = True
            try:
                self.table.selection = rows
            finally:
                self._quiet = False

    def _on_table_selection(self, event: Any) -> None:
        if self._quiet:
            return
        names = [self._records[i]["name"] for i in event.new if 0 <= i < len(self._records)]
        self._on_select(names)

    def _sorted_records(self) -> list[dict[str, Any]]:
        records = list(self._records)
        for sorter in reversed(self.table.sorters if self.table is not None else []):
            field, reverse = sorter.get("field"), sorter.get("dir") == "desc"
            present = [r for r in records if r.get(field) is not None]
            absent = [r for r in records if r.get(field) is None]
            present.sort(key=lambda r: (isinstance(r[field], str), r[field]), reverse=reverse)
            records = present + absent
        return records

    def csv(self) -> str:
        """The table as shown (filtered, in its current sort order) as CSV text."""
        return to_csv(self._columns, self._sorted_records())

    def _csv_file(self) -> io.StringIO:
        return io.StringIO(self.csv())


_STATS_THREADS: dict[int, threading.Thread] = {}
_STATS_LOCK = threading.Lock()


def start_statistics(catalog: Catalog, names: list[str]) -> None:
    """Read ``names`` for their statistics on one background thread per catalog."""
    with _STATS_LOCK:
        running = _STATS_THREADS.get(id(catalog))
        if running is not None and running.is_alive():
            return

        def work() -> None:
            for name in names:
                if catalog.stats(name) is None:
                    catalog.load(name, summaries=False)

        thread = threading.Thread(target=work, name="pyexp-viewer-statistics", daemon=True)
        _STATS_THREADS[id(catalog)] = thread
        thread.start()
