"""The Runs tab's data from a real sweep: statuses, differing config values, returned scalars."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from pyexp_testing import run_experiment, write_run
from pyexp.viewer.catalog import Catalog
from pyexp.viewer.runs_table import RunsIndex, numeric_columns, parallel_coordinates, table, to_csv


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = run_experiment(tmp_path_factory.mktemp("runs"))
    write_run(out, "loose", "2024-01-01_00-00-00", "logger-only", {"lr": 0.7}, steps=5)
    return out


def rows_by_config(out: Path, run_prefix: str = "") -> tuple[list[str], dict[str, dict]]:
    catalog = Catalog(out)
    for name in catalog.runs:
        catalog.load(name, summaries=False)
    rows = [r for r in RunsIndex(out).rows(catalog.runs) if r.name.startswith(run_prefix)]
    columns, records = table(rows, {r.name: catalog.stats(r.name) for r in rows})
    return columns, {r["config"]: r for r in records}


def test_every_config_with_its_status_error_and_returned_scalars(sweep_out: Path) -> None:
    columns, rows = rows_by_config(sweep_out)
    assert {"net_lr0.1", "net_lr0.2", "net_lr0.9", "net_lr0.05", "net_lr0.3", "logger-only"} == set(rows)
    assert rows["net_lr0.1"]["status"] == "done" and rows["net_lr0.1"]["error"] == ""
    assert rows["net_lr0.9"]["status"] == "failed"
    assert "ValueError" in rows["net_lr0.9"]["error"] and "too large" in rows["net_lr0.9"]["error"]
    assert rows["net_lr0.3"]["status"] == "pending"  # never ran: no logs, still listed
    assert rows["logger-only"]["status"] == ""  # a Logger folder outside any experiment run
    assert rows["net_lr0.1"]["run"].startswith("sweep/") and rows["net_lr0.1"]["run"].count("/") == 1
    assert "depth" in columns  # the logger-only folder has none: that differs too
    # only values that differ between configs get a column; the returned numbers do too
    columns, _ = rows_by_config(sweep_out, "sweep/")
    assert "lr" in columns and "depth" not in columns and "opt.name" not in columns
    assert rows["net_lr0.2"]["result.accuracy"] == pytest.approx(0.9)
    assert rows["net_lr0.2"]["result.epochs"] == 30 and "result.note" not in columns
    assert rows["net_lr0.9"]["result.accuracy"] is None
    # last / min / max of each logged scalar
    assert rows["net_lr0.1"]["loss (last)"] == pytest.approx(0.1 + 2)
    assert rows["net_lr0.1"]["loss (max)"] == pytest.approx(0.1 * 30 + 2)
    assert rows["net_lr0.1"]["loss (min)"] == pytest.approx(0.1 + 2)
    assert rows["net_lr0.3"]["loss (last)"] is None


def test_a_config_whose_claim_is_held_is_running(sweep_out: Path) -> None:
    from pyexp.store import Claim

    pending = next(p for p in sweep_out.glob("sweep/*/net_lr0.3-*"))
    claim = Claim.acquire(pending)
    assert claim is not None
    try:
        _, rows = rows_by_config(sweep_out)
        assert rows["net_lr0.3"]["status"] == "running"
    finally:
        claim.release()
    _, rows = rows_by_config(sweep_out)
    assert rows["net_lr0.3"]["status"] == "pending"


def test_csv_and_parallel_coordinates(sweep_out: Path) -> None:
    columns, rows = rows_by_config(sweep_out)
    records = list(rows.values())
    text = to_csv(columns, records)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(records) and parsed[0].keys() >= {"run", "config", "status", "lr", "error"}
    failed = next(r for r in parsed if r["config"] == "net_lr0.9")
    assert failed["status"] == "failed" and "too large" in failed["error"]
    metrics = numeric_columns(columns, records)
    assert "result.accuracy" in metrics and "loss (last)" in metrics and "status" not in metrics
    figure = parallel_coordinates(["lr"], "result.accuracy", records)
    trace = figure["data"][0]
    assert trace["type"] == "parcoords"
    assert [d["label"] for d in trace["dimensions"]] == ["lr", "result.accuracy"]
    assert len(trace["dimensions"][0]["values"]) == 3  # the done configs: the others returned nothing


def test_the_table_reaches_the_page_with_its_rows(sweep_out: Path) -> None:
    """A table widget is never put on the page empty and filled afterwards: the browser's table
    drops rows that arrive while it is being built, so that left the table empty for good."""
    import panel as pn

    from pyexp_testing import wait_until
    from pyexp.viewer.runsview import RunsView

    catalog = Catalog(sweep_out)
    view = RunsView(catalog, on_select=lambda names: None)
    arrived: list[int] = []

    def added(event: object) -> None:
        arrived.extend(len(o.value) for o in event.new  # type: ignore[attr-defined]
                       if isinstance(o, pn.widgets.Tabulator)
                       and not any(o is p for p in event.old))  # type: ignore[attr-defined]

    view.layout.param.watch(added, "objects")
    view.update("", "", [], opening=True)
    assert arrived == [6] and "loss (last)" not in view.table.value.columns  # not read yet
    first = view.table
    first.sorters = [{"field": "lr", "dir": "desc"}]
    # the background read brings the last/min/max columns: a new table, with its rows, same sort
    wait_until(lambda: all(catalog.stats(n) is not None for n in catalog.runs), 60, "statistics")
    view.update("", "", [])
    assert arrived == [6, 6] and view.table is not first
    assert "loss (last)" in view.table.value.columns and view.table.sorters == first.sorters
    # a new status (same columns) goes to the table shown
    from pyexp.store import Claim

    second = view.table
    claim = Claim.acquire(next(sweep_out.glob("sweep/*/net_lr0.3-*")))
    assert claim is not None
    try:
        view.update("", "", [])
    finally:
        claim.release()
    assert view.table is second and arrived == [6, 6]
    assert "running" in list(second.value["status"])
