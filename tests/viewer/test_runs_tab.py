"""The Runs tab in a real headless Chromium, over a real sweep (done, failed and pending configs)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyexp_testing import (
    ARGS,
    CHROMIUM,
    SHOTS,
    Site,
    chart,
    deep_text,
    offline_page,
    open_tab,
    open_viewer,
    run_experiment,
    traces,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("viewer-runs-tab")]

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("no system Chromium at /usr/bin/chromium")
    served = Site(run_experiment(tmp_path_factory.mktemp("runs-tab")))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    page = offline_page(browser)
    try:
        open_viewer(page, site.url)
        open_tab(page, "Runs")
        try:
            wait_for(lambda: rows(page).count() == 5, "a row per config")
        except AssertionError as exc:  # say what the page showed instead
            raise AssertionError(f"{exc}; the table shows {rows(page).count()} rows, the "
                                 f"summary says {deep_text(page.locator('.pyexp-runs-summary'))!r}"
                                 ) from None
        yield page
        assert page.external == []
    finally:
        page.close()


def rows(page: Any) -> Any:
    return page.locator(".pyexp-runs-table .tabulator-row")


def column(page: Any, field: str) -> list[str]:
    return page.locator(f".pyexp-runs-table .tabulator-row .tabulator-cell[tabulator-field='{field}']"
                        ).all_inner_texts()


def row_of(page: Any, config: str) -> Any:
    return rows(page).filter(has=page.locator(".tabulator-cell[tabulator-field='config']",
                                              has_text=config))


def test_every_config_with_its_status_and_the_error_on_hover(page) -> None:
    configs = column(page, "config")
    assert sorted(configs) == ["net_lr0.05", "net_lr0.1", "net_lr0.2", "net_lr0.3", "net_lr0.9"]
    status = dict(zip(configs, column(page, "status")))
    assert status == {"net_lr0.05": "done", "net_lr0.1": "done", "net_lr0.2": "done",
                      "net_lr0.3": "pending", "net_lr0.9": "failed"}
    headers = page.locator(".pyexp-runs-table .tabulator-col-title").all_inner_texts()
    assert {"run", "config", "status", "lr", "result.accuracy", "loss (last)", "loss (min)",
            "loss (max)"} <= set(headers)
    assert "depth" not in headers  # the same in every config
    assert all(r.startswith("sweep/") for r in column(page, "run"))
    summary = deep_text(page.locator(".pyexp-runs-summary"))
    assert "5 configs" in summary and "3 done" in summary and "1 failed" in summary
    row_of(page, "net_lr0.9").locator(".tabulator-cell[tabulator-field='status']").hover()
    tip = page.locator(".tabulator-tooltip")
    tip.wait_for()
    assert "ValueError" in tip.inner_text() and "too large" in tip.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)


def test_sorting_by_a_column(page) -> None:
    header = page.locator(".pyexp-runs-table .tabulator-col[tabulator-field='lr']")
    header.locator(".tabulator-col-title").click()
    wait_for(lambda: [float(v) for v in column(page, "lr")] == [0.05, 0.1, 0.2, 0.3, 0.9],
             "ascending lr")
    header.locator(".tabulator-col-title").click()
    wait_for(lambda: [float(v) for v in column(page, "lr")] == [0.9, 0.3, 0.2, 0.1, 0.05],
             "descending lr")


def test_the_sidebar_filters_filter_the_table(page) -> None:
    box = page.locator(".pyexp-config-filter input")
    box.fill("lr<0.15")
    box.press("Enter")
    wait_for(lambda: sorted(column(page, "config")) == ["net_lr0.05", "net_lr0.1"], "two rows")
    box.fill("")
    box.press("Enter")
    wait_for(lambda: len(column(page, "config")) == 5, "every row back")
    name = page.locator(".pyexp-filter input")
    name.fill(r"lr0\.[39]")
    name.press("Enter")
    wait_for(lambda: sorted(column(page, "config")) == ["net_lr0.3", "net_lr0.9"], "by name")


def test_selecting_rows_selects_runs_for_the_charts_and_back(page) -> None:
    checked = page.locator(".pyexp-runs .pyexp-run input:checked")
    wait_for(lambda: checked.count() == 4, "the default selection (every run with logs)")
    page.locator(".pyexp-runs .pyexp-run-group-check").first.uncheck()
    wait_for(lambda: checked.count() == 0, "nothing selected")
    wait_for(lambda: page.locator(".pyexp-runs-table .tabulator-row.tabulator-selected").count() == 0,
             "no row ticked")
    row_of(page, "net_lr0.2").locator(".tabulator-cell input[type='checkbox']").check()
    row_of(page, "net_lr0.9").locator(".tabulator-cell input[type='checkbox']").check()
    wait_for(lambda: checked.count() == 2, "two runs selected in the sidebar")
    assert {c.get_attribute("title").split("/")[-1].split("-")[0] for c in
            page.locator(".pyexp-runs .pyexp-run").filter(has=page.locator("input:checked")).all()} \
        == {"net_lr0.2", "net_lr0.9"}
    open_tab(page, "Scalars")
    wait_for(lambda: sorted(t["name"].split("-")[0] for t in traces(chart(page, "loss")))
             == ["net_lr0.2", "net_lr0.9"], "their lines")
    page.locator(".pyexp-runs .pyexp-run", has_text="net_lr0.1-").locator("input").check()
    open_tab(page, "Runs")
    wait_for(lambda: page.locator(".pyexp-runs-table .tabulator-row.tabulator-selected").count() == 3,
             "the sidebar's pick ticked in the table")


def test_csv_export_is_the_table_as_shown(page, tmp_path: Path) -> None:
    page.locator(".pyexp-runs-table .tabulator-col[tabulator-field='lr'] .tabulator-col-title").click()
    wait_for(lambda: column(page, "lr")[0] == "0.05", "sorted by lr")
    with page.expect_download() as info:
        page.locator(".pyexp-csv").click()
    target = tmp_path / "runs.csv"
    info.value.save_as(target)
    assert info.value.suggested_filename == "runs.csv"
    table = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["config"] for r in table] == ["net_lr0.05", "net_lr0.1", "net_lr0.2", "net_lr0.3",
                                            "net_lr0.9"]
    failed = table[-1]
    assert failed["status"] == "failed" and "too large" in failed["error"]
    assert float(table[0]["result.accuracy"]) == pytest.approx(1 - 0.05 / 2)
    assert float(table[1]["loss (max)"]) == pytest.approx(0.1 * 30 + 2, rel=1e-6)


def test_parallel_coordinates_of_configs_against_a_metric(page) -> None:
    plot = page.locator(".pyexp-parcoords .js-plotly-plot")
    plot.wait_for()
    labels = lambda: plot.evaluate("el => el.data[0].dimensions.map(d => d.label)")  # noqa: E731
    wait_for(lambda: labels()[0] == "lr", "an axis per config key")
    metric = page.locator(".pyexp-metric select")
    options = metric.locator("option").all_inner_texts()
    assert "result.accuracy" in options and "loss (last)" in options
    metric.select_option("loss (last)")
    wait_for(lambda: labels() == ["lr", "loss (last)"], "the chosen metric as the last axis")
    assert plot.evaluate("el => el.data[0].type") == "parcoords"
    assert plot.evaluate("el => el.data[0].dimensions[0].values.length") == 4  # configs with logs


def test_a_config_being_run_shows_as_running(page, site: Site) -> None:
    from pyexp.store import Claim

    pending = next(site.root.glob("sweep/*/net_lr0.3-*"))
    claim = Claim.acquire(pending)
    assert claim is not None
    try:
        wait_for(lambda: dict(zip(column(page, "config"), column(page, "status")))["net_lr0.3"]
                 == "running", "running")
    finally:
        claim.release()
    wait_for(lambda: dict(zip(column(page, "config"), column(page, "status")))["net_lr0.3"]
             == "pending", "pending again")
