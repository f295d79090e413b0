"""The viewer's data layer without a server: series maths, discovery, filters, path safety."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyexp_testing import clean_env, logs, write_run  # noqa: F401 - logs is a fixture
from pyexp.errors import MissingExtraError, PyexpError
from pyexp.viewer import start_background
from pyexp.viewer.catalog import Catalog
from pyexp.viewer.data import (
    ViewerError,
    filter_runs,
    group_tags,
    parse_config_query,
    resolve_run,
    run_colors,
    value_at,
    varying_keys,
)
from pyexp.viewer.series import downsample_indices, ema, prepare_series


def reference_ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's loop, written out plainly."""
    last, n, out = 0.0, 0, []
    for v in values:
        if not np.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight ** n))
    return out


# --------------------------------------------------------------------------- series maths
@pytest.mark.parametrize("weight", [0.1, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboards_debiased_loop(weight: float) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=3000).cumsum()
    assert np.allclose(ema(values, weight), reference_ema(list(values), weight), rtol=1e-9, atol=1e-9)


def test_ema_is_debiased_and_skips_non_finite_values() -> None:
    smoothed = ema([5.0, 5.0, float("nan"), 5.0, float("inf")], 0.9)
    assert smoothed[0] == pytest.approx(5.0)  # not pulled towards 0
    assert smoothed[1] == pytest.approx(5.0) and smoothed[3] == pytest.approx(5.0)
    assert np.isnan(smoothed[2]) and np.isinf(smoothed[4])
    assert list(ema([1.0, 2.0], 0.0)) == [1.0, 2.0]


def test_downsampling_keeps_extremes_first_and_last() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=100_003)
    values[12_345], values[77_777] = 50.0, -50.0
    keep = downsample_indices(values, 1000)
    assert len(keep) <= 1002 and np.all(np.diff(keep) > 0)
    assert {0, 12_345, 77_777, len(values) - 1} <= set(keep.tolist())
    # every bucket's own min and max survive
    size = -(-len(values) // 500)
    for start in range(0, len(values), size * 37):
        bucket = values[start:start + size]
        assert start + int(bucket.argmax()) in keep and start + int(bucket.argmin()) in keep
    assert list(downsample_indices([3.0, 1.0], 10)) == [0, 1]


def test_smoothing_is_computed_before_downsampling() -> None:
    n = 50_000
    its = list(range(n))
    values = list(np.sin(np.arange(n) / 50.0) + np.random.default_rng(2).normal(size=n))
    times = [1000.0 + i for i in range(n)]
    series = prepare_series((its, values, times), smoothing=0.95, max_points=800)
    full = np.asarray(reference_ema(values, 0.95))
    steps = series.x_smooth.astype(int)
    assert np.allclose(series.y_smooth, full[steps])
    assert len(series.x) <= 802 and series.x[-1] == n - 1 and series.n_points == n
    assert series.y[-1] == pytest.approx(values[-1])
    rel = prepare_series((its, values, times), x_mode="relative", max_points=800)
    assert rel.x[0] == 0.0 and rel.x[-1] == pytest.approx(n - 1)
    wall = prepare_series((its, values, times), x_mode="wall", max_points=800)
    assert wall.x[-1] == pytest.approx((1000.0 + n - 1) * 1000)
    with pytest.raises(ViewerError, match="x axis 'days'"):
        prepare_series((its, values, times), x_mode="days")


def test_group_tags_and_value_at() -> None:
    assert group_tags({"loss", "train/acc", "train/lr", "val/acc"}) == {
        "": ["loss"], "train": ["train/acc", "train/lr"], "val": ["val/acc"]}
    pairs = [(0, "a"), (10, "b"), (20, "c")]
    assert value_at(pairs, 15) == (10, "b") and value_at(pairs, 20) == (20, "c")
    assert value_at(pairs, -1) is None


# --------------------------------------------------------------------------- discovery, configs
def test_catalog_discovers_nested_runs_and_loads_only_what_is_asked(logs: Path) -> None:
    write_run(logs, "cifar", "2024-02-01_09-00-00", "base", {"lr": 0.5}, steps=3)
    catalog = Catalog(logs)
    runs = catalog.runs
    assert len(runs) == 3 and all(r.count("/") == 2 for r in runs)
    assert {r.split("/")[0] for r in runs} == {"mnist", "cifar"}
    assert all(catalog.version(r) == -1 for r in runs)  # nothing read yet
    first = runs[-1]
    assert catalog.scalar_tags(first) == {"loss", "train/acc", "train/lr"}
    assert catalog.version(first) == 0 and all(catalog.version(r) == -1 for r in runs[:-1])
    assert catalog.config(first)["model.depth"] in (2, 3) and "out" not in catalog.config(first)
    stats = catalog.stats(first)
    assert stats["train/lr"].count == 50 and stats["train/acc"].min == 0.0
    assert catalog.stats(runs[0]) is None


def test_catalog_refresh_sees_appends_and_new_runs(logs: Path) -> None:
    from pyexp.log import Logger

    catalog = Catalog(logs, scan_interval=0)
    run = catalog.runs[0]
    before = catalog.series(run, "loss", smoothing=0.0, x_mode="step", max_points=1000)
    assert before.n_points == 50 and catalog.refresh([run]) == set()
    with Logger(logs / run) as logger:
        logger.set_global_it(1000)
        logger.add_scalar("loss", 0.5)
    assert catalog.refresh([run]) == {run} and catalog.version(run) == 1
    after = catalog.series(run, "loss", smoothing=0.0, x_mode="step", max_points=1000)
    assert after.n_points == 51 and after.x[-1] == 1000 and after.y[-1] == 0.5
    assert catalog.stats(run)["loss"].last == 0.5
    write_run(logs, "mnist", "2024-03-01_00-00-00", "new", {"lr": 1.0}, steps=2)
    assert catalog.refresh_runs() and len(catalog.runs) == 3
    assert not catalog.refresh_runs()


def test_catalog_keeps_summaries_not_series(tmp_path: Path) -> None:
    """A long series costs the catalog a bounded summary; extremes and the last point survive."""
    from pyexp.log import Logger
    from pyexp.viewer.runstate import SUMMARY_BUCKETS

    run = tmp_path / "exp" / "2024-01-01_00-00-00" / "long-1"
    values = np.random.default_rng(3).normal(size=60_000)
    values[4321], values[55_555] = 40.0, -40.0
    with Logger(run) as logger:
        for it, v in enumerate(values):
            logger.set_global_it(it)
            logger.add_scalar("x", float(v))
    catalog = Catalog(tmp_path)
    name = catalog.runs[0]
    series = catalog.series(name, "x", smoothing=0.0, x_mode="step", max_points=800)
    assert series.n_points == 60_000 and len(series.x) <= 802
    assert {40.0, -40.0} <= set(np.round(series.y, 6).tolist())
    assert series.x[0] == 0 and series.x[-1] == 59_999
    held = catalog._state[name].nbytes  # noqa: SLF001 - the point of the test is what is held
    assert held <= (4 * SUMMARY_BUCKETS + 64) * 32
    smooth = catalog.series(name, "x", smoothing=0.9, x_mode="step", max_points=800)
    full = ema(values, 0.9)
    assert np.allclose(smooth.y_smooth[-1], full[-1]) and len(smooth.x_smooth) <= 802


def test_each_new_smoothing_is_drawn_however_many_came_before(logs: Path) -> None:
    """A run keeps the summaries of two smoothings; a third must replace the oldest, not fail."""
    catalog = Catalog(logs)
    name = catalog.runs[0]
    for smoothing in (0.6, 0.8, 0.9, 0.6, 0.95):
        series = catalog.series(name, "loss", smoothing=smoothing, x_mode="step", max_points=800)
        assert series is not None and series.y_smooth is not None, (smoothing, catalog.errors)
    assert list(catalog._state[name].smoothed)[-1] == 0.95  # noqa: SLF001 - what is held


def test_filter_by_name_and_config(logs: Path) -> None:
    write_run(logs, "mnist", "2024-01-25_14-30-00", "adam", {"lr": 0.01, "opt": {"name": "adam"}})
    catalog = Catalog(logs)
    configs = catalog.configs()
    runs = catalog.runs
    assert [r for r in filter_runs(runs, configs, "lr0\\.1")] == [r for r in runs if "lr0.1-" in r]
    small = filter_runs(runs, configs, config_query="lr=0.01")
    assert len(small) == 2 and all(configs[r]["lr"] == 0.01 for r in small)
    assert filter_runs(runs, configs, config_query="config.lr<0.05, opt.name~ad") == \
        [r for r in runs if "adam" in r]
    assert len(filter_runs(runs, configs, config_query="model.depth>=3")) == 1
    assert len(filter_runs(runs, configs, config_query="opt.name!=adam")) == 2
    with pytest.raises(ViewerError, match="config filter 'lr'"):
        parse_config_query("lr")
    with pytest.raises(ViewerError, match="bad regex"):
        filter_runs(runs, configs, name_regex="(")
    keys = varying_keys(configs)
    assert "lr" in keys and "model.depth" in keys and "opt.name" in keys
    colors = run_colors(runs, configs, "lr")
    same = [colors[r] for r in runs if configs[r]["lr"] == 0.01]
    assert len(set(same)) == 1 and len(set(colors.values())) == 2


# --------------------------------------------------------------------------- path safety
def test_paths_outside_the_root_are_refused(tmp_path: Path, logs: Path) -> None:
    outside = write_run(tmp_path / "elsewhere", "secret", "2024-01-01_00-00-00", "s", {}, steps=2)
    inside = Catalog(logs).runs[0]
    assert resolve_run(logs, inside) == (logs / inside).resolve()
    rel = os.path.relpath(outside, logs)
    for bad in (rel, str(outside), "../elsewhere", "", "/etc", "mnist/../../elsewhere"):
        with pytest.raises(ViewerError, match="refused|no run"):
            resolve_run(logs, bad)
    (logs / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ViewerError, match="outside"):
        resolve_run(logs, "linked")
    sneaky = logs / "mnist" / "sneaky"
    sneaky.mkdir()
    (sneaky / ".pyexp").write_text("{}")
    (sneaky / "events.pb").symlink_to(outside / "events.pb")
    with pytest.raises(ViewerError, match="events.pb points outside"):
        resolve_run(logs, "mnist/sneaky")
    catalog = Catalog(logs)
    assert "linked" not in catalog.runs and "mnist/sneaky" not in catalog.runs
    assert not catalog.load(rel) and "refused" in catalog.errors[rel]


def test_malformed_and_half_written_files_do_not_raise(logs: Path) -> None:
    bad = logs / "mnist" / "2024-01-25_14-30-00" / "broken-1"
    bad.mkdir()
    (bad / ".pyexp").write_text("not json")
    (bad / "events.pb").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00garbage-and-more-garbage")
    (bad / "config.json").write_text("{half")
    jsonl = logs / "mnist" / "2024-01-25_14-30-00" / "halfjsonl-1"
    jsonl.mkdir()
    (jsonl / ".pyexp").write_text("")
    (jsonl / "scalars.jsonl").write_text('{"it": 0, "tag": "loss", "value": 1.0}\n{"it": 1, "ta')
    catalog = Catalog(logs)
    assert {"mnist/2024-01-25_14-30-00/broken-1", "mnist/2024-01-25_14-30-00/halfjsonl-1"} <= set(catalog.runs)
    assert catalog.config("mnist/2024-01-25_14-30-00/broken-1") == {}
    assert catalog.scalar_tags("mnist/2024-01-25_14-30-00/broken-1") == set()
    half = catalog.series("mnist/2024-01-25_14-30-00/halfjsonl-1", "loss", smoothing=0.0,
                          x_mode="step", max_points=100)
    assert half is not None and list(half.x) == [0]


def test_viewer_rejects_missing_dir_and_busy_port(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="no such folder"):
        Catalog(tmp_path / "nope")
    with pytest.raises(PyexpError, match="is not a folder"):
        start_background(tmp_path / "nope", port=1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PyexpError, match=f"port {port} is already in use"):
            start_background(tmp_path, port=port)


def _python(code: str) -> subprocess.CompletedProcess:
    env = clean_env()
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)


def test_import_is_light_and_missing_panel_names_the_extra(tmp_path: Path) -> None:
    proc = _python("import sys, pyexp.viewer; heavy = [m for m in ('panel', 'bokeh', 'plotly', "
                   "'matplotlib') if m in sys.modules]; print(heavy)")
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    proc = _python(f"import sys; sys.modules['panel'] = None\nfrom pyexp.viewer import run\n"
                   f"run({str(tmp_path)!r})")
    assert proc.returncode == 1 and "MissingExtraError" in proc.stderr
    assert 'pip install "pyexp[viewer]"' in proc.stderr
    assert issubclass(MissingExtraError, PyexpError)
    proc = subprocess.run([sys.executable, "-m", "pyexp.viewer", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("pyexp: error:") and "is not a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.skipif(not hasattr(__import__("pyexp.log", fromlist=["LogReader"]).LogReader, "scalars"),
                    reason="this LogReader predates reading the earlier layout (helper log's branch)")
def test_a_log_in_the_earlier_per_iteration_layout_is_shown(tmp_path: Path) -> None:
    """``<run>/.pyexp`` plus ``<iteration>/scalars.json`` and ``text.json``, as the earlier
    pyexp wrote them, read through LogReader."""
    import json

    run = tmp_path / "old" / "2023-05-01_10-00-00" / "base-1"
    run.mkdir(parents=True)
    (run / ".pyexp").write_text("")
    for it, loss in enumerate((1.0, 0.5, 0.25)):
        (run / str(it)).mkdir()
        (run / str(it) / "scalars.json").write_text(json.dumps({"loss": loss, "acc": it / 2}))
    (run / "2" / "text.json").write_text(json.dumps({"note": "done"}))
    catalog = Catalog(tmp_path)
    assert catalog.runs == ["old/2023-05-01_10-00-00/base-1"]
    name = catalog.runs[0]
    assert catalog.scalar_tags(name) == {"loss", "acc"}
    series = catalog.series(name, "loss", smoothing=0.0, x_mode="step", max_points=100)
    assert list(series.x) == [0, 1, 2] and list(series.y) == [1.0, 0.5, 0.25]
    assert catalog.text(name) == {"note": [(2, "done")]}
    assert catalog.stats(name)["acc"].max == 1.0
