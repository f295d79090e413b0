"""The viewer in a real headless Chromium: one server per module, every request kept offline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyexp_testing import (
    CHROMIUM,
    ARGS,
    STAMP,
    SHOTS,
    Site,
    chart,
    clean_env,
    deep_text,
    free_port,
    offline_page,
    open_tab,
    open_viewer,
    proc_stat,
    traces,
    wait_for,
    write_many_tags,
    write_run,
)

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("no system Chromium at /usr/bin/chromium")
    base = tmp_path_factory.mktemp("viewer")
    root = base / "out"
    for i, lr in enumerate((0.1, 0.01)):
        write_run(root, "mnist", STAMP, f"lr{lr}", {"lr": lr, "model": {"depth": 2 + i}}, figures=True)
    write_run(root, "mnist", "2024-01-24_09-00-00", "live", {"lr": 0.3}, steps=20)
    write_many_tags(root, "2023-01-01_00-00-00", 16)
    secret = write_run(base / "outside", "secret", STAMP, "hidden", {"lr": 9.0}, steps=5)
    (root / "mnist" / "escape").symlink_to(secret, target_is_directory=True)
    empty = base / "empty"
    empty.mkdir()
    # `panel serve pyexp/viewer/page --args DIR` (and the earlier single-file entry) start in
    # the background while the viewer's own entry point (start_background) waits for its port.
    viewer = Path(__file__).resolve().parents[2] / "pyexp" / "viewer"
    panel_serves, urls = [], {}
    for entry, path in (("page", "page"), ("app.py", "app")):
        port = free_port()
        panel_serves.append(subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", str(viewer / entry), "--port", str(port),
             "--address", "127.0.0.1", "--args", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env()))
        urls[entry] = f"http://127.0.0.1:{port}/{path}"
    served = []
    try:
        served += [Site(root), Site(empty)]
        yield {"main": served[0], "empty": served[1], "secret": secret, "panel_serve": urls}
    finally:
        for site in served:
            site.stop()
        for proc in panel_serves:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def browser(sites: dict[str, Any]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = offline_page(browser)
    yield page
    page.close()


@pytest.fixture(scope="module")
def main_page(browser: Any, sites: dict[str, Any]) -> Iterator[Any]:
    """One page on the main site, shared by the tests that only look and toggle (page loads
    are the slow part); each test works on its own chart or tab."""
    page = offline_page(browser)
    open_viewer(page, sites["main"].url)
    yield page
    page.close()


# --------------------------------------------------------------------------- scalars
def test_a_chart_per_tag_with_every_selected_run_and_nothing_from_a_cdn(main_page) -> None:
    page = main_page
    titles = sorted(page.locator(".pyexp-chart .gtitle").evaluate_all(
        "els => els.map(e => e.textContent)"))
    assert titles == ["loss", "train/acc", "train/lr"]
    # the page comes with one run's lines and fills in the others right after
    loss = wait_for(lambda: (t := traces(chart(page, "loss"))) and len(t) == 2 and t, "both runs")
    assert all(len(t["x"]) == 50 for t in loss)
    assert sorted(t["name"].split("-")[0] for t in loss) == ["lr0.01", "lr0.1"]
    assert page.get_by_text("train (2)").count() == 1
    assert page.get_by_text("ungrouped (1)").count() == 1
    listed = deep_text(page.locator(".pyexp-runs"))
    assert f"mnist/{STAMP} (2)" in listed and "lr0.1-" in listed
    assert "escape" not in listed  # symlink out of DIR
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "scalars.png"), full_page=True)
    assert page.external == []


def test_log_toggle_flips_the_axis_type(main_page) -> None:
    page = main_page
    box = chart(page, "loss")
    plot = box.locator(".js-plotly-plot")
    assert plot.evaluate("el => el._fullLayout.yaxis.type") == "linear"
    box.locator(".pyexp-log input").check()
    wait_for(lambda: plot.evaluate("el => el._fullLayout.yaxis.type") == "log", "a log y axis")
    assert chart(page, "train/acc").locator(".js-plotly-plot").evaluate(
        "el => el._fullLayout.yaxis.type") == "linear"
    box.locator(".pyexp-log input").uncheck()
    wait_for(lambda: plot.evaluate("el => el._fullLayout.yaxis.type") == "linear", "linear again")


def test_smoothing_adds_a_smoothed_trace_and_fades_the_raw_one(main_page) -> None:
    page = main_page
    box = chart(page, "train/acc")
    # the page fills in the second run's lines right after the first: wait for both
    before = wait_for(lambda: (t := traces(box)) and len(t) == 2 and t, "both runs")
    handle = page.locator(".pyexp-smoothing .noUi-handle")
    handle.focus()
    handle.press("End")
    wait_for(lambda: len(traces(box)) == 4, "smoothed traces")
    after = traces(box)
    smoothed = [t for t in after if t["kind"] == "smoothed"]
    raw = [t for t in after if t["kind"] == "raw"]
    assert len(smoothed) == 2 and [t["y"] for t in raw] == [t["y"] for t in before]
    assert all(s["y"] != r["y"] for s, r in zip(smoothed, raw))
    assert box.locator(".js-plotly-plot").evaluate("el => el.data[0].opacity") < 0.5


# --------------------------------------------------------------------------- text, figures
def test_text_slider_changes_the_text(main_page) -> None:
    page = main_page
    open_tab(page, "Text")
    body = page.locator(".pyexp-text-body").first
    wait_for(lambda: "hello at 40" in body.inner_text(), "the last text")
    assert page.locator(".pyexp-text-body").count() == 2  # one column per selected run
    handle = page.locator(".pyexp-text-slider .noUi-handle").first
    handle.focus()
    handle.press("Home")
    wait_for(lambda: "hello at 0" in body.inner_text(), "the first text")


def test_static_and_interactive_figures(main_page) -> None:
    page = main_page
    open_tab(page, "Figures")
    image = page.locator(".pyexp-png img").first
    image.wait_for()
    wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth > 100"), "a PNG")
    canvas = page.locator("canvas.pyexp-mpl-canvas").first
    canvas.wait_for()
    root = page.locator(".pyexp-mpl").first
    wait_for(lambda: int(root.get_attribute("data-frames") or 0) >= 1, "a first frame")
    frames = int(root.get_attribute("data-frames"))
    before = canvas.evaluate("c => c.toDataURL()")
    box = page.locator(".pyexp-mpl canvas").nth(1).bounding_box()
    page.mouse.move(box["x"] + 150, box["y"] + 150)
    page.mouse.down()
    for i in range(1, 8):
        page.mouse.move(box["x"] + 150 + 12 * i, box["y"] + 150 + 3 * i)
    page.mouse.up()
    wait_for(lambda: int(root.get_attribute("data-frames")) > frames, "a rotated frame")
    wait_for(lambda: canvas.evaluate("c => c.toDataURL()") != before, "a changed image")
    page.screenshot(path=str(SHOTS / "figures.png"), full_page=True)
    assert page.external == []


# --------------------------------------------------------------------------- live, safety, empty
def test_live_append_and_new_runs_show_up(sites, page) -> None:
    from pyexp.log import Logger

    root = sites["main"].root
    live = next(p for p in (root / "mnist" / "2024-01-24_09-00-00").iterdir())
    name = live.relative_to(root).as_posix()
    open_viewer(page, sites["main"].url + f"?run={name}")
    box = chart(page, "loss")
    assert max(traces(box)[0]["x"]) == 19
    plot = box.locator(".js-plotly-plot")
    plot.evaluate("el => window.Plotly.relayout(el, {'xaxis.range': [2, 8]})")  # a user's zoom
    with Logger(live) as logger:
        for it in range(20, 40):
            logger.set_global_it(it)
            logger.add_scalar("loss", 0.1)
    wait_for(lambda: max(traces(box)[0]["x"]) == 39, "the appended points")
    assert plot.evaluate("el => el._fullLayout.xaxis.range") == [2, 8]  # zoom survived
    write_run(root, "mnist", "2024-01-26_00-00-00", "fresh", {"lr": 0.2}, steps=3)
    wait_for(lambda: "fresh" in deep_text(page.locator(".pyexp-runs")), "the new run in the list")


def test_a_run_outside_dir_is_refused(sites, page) -> None:
    secret = sites["secret"]
    rel = os.path.relpath(secret, sites["main"].root)
    page.goto(sites["main"].url + f"?run={rel}&run=mnist/escape&run={secret}")
    notice = page.locator(".pyexp-notice")
    wait_for(lambda: deep_text(notice).count("refused") == 3, "three refusals")
    assert "outside the served folder" in deep_text(notice)
    listed = deep_text(page.locator(".pyexp-runs"))
    assert "lr0.1" in listed and "hidden" not in listed
    assert page.locator(".pyexp-chart .js-plotly-plot .trace").count() == 0


def test_config_filter_and_colour_by_config(sites, page) -> None:
    open_viewer(page, sites["main"].url)
    runs = page.locator(".pyexp-runs .pyexp-run")
    assert runs.count() >= 3
    box = page.locator(".pyexp-config-filter input")
    box.fill("model.depth>=3")
    box.press("Enter")
    wait_for(lambda: runs.count() == 1, "one run left")
    assert "lr0.01" in runs.first.inner_text()
    wait_for(lambda: len(traces(chart(page, "loss"))) == 1, "one line per chart")
    colour = page.locator(".pyexp-color-by select")
    assert {"run", "lr", "model.depth"} <= set(colour.locator("option").all_inner_texts())
    box.fill("depth")  # not key=value: the page explains instead of failing
    box.press("Enter")
    wait_for(lambda: "config filter 'depth'" in deep_text(page.locator(".pyexp-notice")),
             "the filter's error message")


@pytest.mark.parametrize("entry,warm", [("page", "true"), ("app.py", "false")])
def test_panel_serve_entry_point_serves_a_warm_first_page(sites, page, entry, warm) -> None:
    """`panel serve pyexp/viewer/page --args DIR`: the server is prepared when it starts, like
    `python -m pyexp.viewer` (default runs read, components built once), so the first page
    comes warm, and fills in every default run. The earlier `panel serve pyexp/viewer/app.py`
    still works; it prepares the server during its first page."""
    url = sites["panel_serve"][entry]
    port = int(url.split(":")[2].split("/")[0])

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, f"panel serve {entry} to listen")  # no page asked for before ours
    open_viewer(page, url)
    assert page.title() == "pyexp viewer"
    assert page.locator(".pyexp-title").get_attribute("data-warm") == warm
    checked = page.locator(".pyexp-runs .pyexp-run input:checked")
    wait_for(lambda: checked.count() >= 1 and len(traces(chart(page, "loss"))) == checked.count(),
             "every default run drawn")
    assert page.external == []


def test_a_page_not_yet_connected_costs_the_server_no_cpu(sites) -> None:
    """The page is built after its HTML went out, while the browser loads the JavaScript; a
    page whose browser has not connected yet must leave the server idle (Panel re-tries a
    periodic callback on every tick until the browser connects: that held a whole core)."""
    site = sites["main"]
    with urllib.request.urlopen(site.url, timeout=30) as response:
        assert "<title>pyexp viewer</title>" in response.read().decode()
    time.sleep(0.5)  # the build itself

    def cpu_seconds() -> float:
        fields = proc_stat(site.proc.pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    time.sleep(3)
    assert cpu_seconds() - before < 0.5


def test_a_run_group_checkbox_selects_its_configs_and_names_show_in_full(sites, page) -> None:
    open_viewer(page, sites["main"].url)
    checked = page.locator(".pyexp-runs .pyexp-run input:checked")
    before = wait_for(lambda: checked.count(), "a default selection")
    wait_for(lambda: len(traces(chart(page, "loss"))) == before, "the default runs drawn")
    group = page.locator(".pyexp-run-group", has_text="2024-01-24_09-00-00")
    row = group.locator(".pyexp-run")
    assert row.count() == 1 and not row.locator("input").is_checked()
    assert row.get_attribute("title").startswith("mnist/2024-01-24_09-00-00/live-")
    group.locator(".pyexp-run-group-check").check()
    wait_for(lambda: len(traces(chart(page, "loss"))) == before + 1, "the live run's line")
    assert any(t["name"].startswith("2024-01-24_09-00-00/live") for t in traces(chart(page, "loss")))
    for other in page.locator(".pyexp-run-group").all():
        if "2024-01-24_09-00-00" not in other.inner_text():
            other.locator(".pyexp-run-group-check").uncheck()
    wait_for(lambda: len(traces(chart(page, "loss"))) == 1, "only the live run left")


def test_charts_far_below_are_drawn_when_scrolled_to(sites, page) -> None:
    """Like TensorBoard, only charts on (or near) the screen get their data."""
    open_viewer(page, sites["main"].url + "?run=wide/2023-01-01_00-00-00/many-1")
    charts = page.locator(".pyexp-chart")
    wait_for(lambda: charts.count() == 16, "a chart per tag")
    last = charts.nth(15)
    assert last.locator(".js-plotly-plot").count() == 0  # not drawn: nobody can see it
    assert charts.nth(0).locator(".js-plotly-plot .trace").count() == 1
    last.scroll_into_view_if_needed()
    wait_for(lambda: last.locator(".js-plotly-plot .trace").count() == 1, "the last chart drawn")
    assert last.locator(".gtitle").text_content() == "m/15"


def test_empty_dir_says_so(sites, page) -> None:
    page.goto(sites["empty"].url)
    notice = page.locator(".pyexp-notice")
    notice.wait_for()
    assert "No runs found under" in deep_text(notice)
    assert str(sites["empty"].root.resolve()) in deep_text(notice)
