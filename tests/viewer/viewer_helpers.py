"""Helpers for the viewer tests: realistic experiment folders written with the real Logger.

Not a conftest.py: tests elsewhere do ``from pyexp_testing import ...`` and must get the top one.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from pyexp.log import Logger


def write_run(root: Path, experiment: str, stamp: str, name: str, config: dict, *,
              steps: int = 50, figures: bool = False, use_protobuf: bool = True) -> Path:
    """One run folder as the runner lays it out, with scalars, text and (optionally) figures."""
    run = root / experiment / stamp / f"{name}-{abs(hash(name)) % 10**6:06d}"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"name": name, **config, "out": str(run)}))
    lr = float(config.get("lr", 0.1))
    with Logger(run, use_protobuf=use_protobuf) as logger:
        for it in range(steps):
            logger.set_global_it(it)
            logger.add_scalar("loss", math.exp(-lr * it) + 0.05 * math.sin(it))
            logger.add_scalar("train/acc", 1 - math.exp(-lr * it))
            logger.add_scalar("train/lr", lr)
            if it % 10 == 0:
                logger.add_text("sample", f"{name} says hello at {it}")
        if figures:
            add_figures(logger)
    return run


def write_many_tags(root: Path, stamp: str, tags: int) -> Path:
    """A run logging ``tags`` scalar tags (``m/00``, ``m/01``, ...), 20 steps each."""
    run = root / "wide" / stamp / "many-1"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"name": "many"}))
    with Logger(run) as logger:
        for it in range(20):
            logger.set_global_it(it)
            for k in range(tags):
                logger.add_scalar(f"m/{k:02d}", k + math.sin(it))
    return run


def add_figures(logger: Logger) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    for it in (0, 10):
        logger.set_global_it(it)
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot(np.arange(10), np.arange(10) ** (1 + it / 10))
        logger.add_figure("curve", fig, interactive=False)
        fig3 = plt.figure(figsize=(4, 3))
        ax3 = fig3.add_subplot(111, projection="3d")
        x, y = np.meshgrid(np.linspace(-2, 2, 20), np.linspace(-2, 2, 20))
        ax3.plot_surface(x, y, np.exp(-(x ** 2 + y ** 2)) * (1 + it))
        logger.add_figure("landscape", fig3, interactive=True)
        plt.close("all")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    for i, lr in enumerate((0.1, 0.01)):
        write_run(root, "mnist", "2024-01-25_14-30-00", f"lr{lr}", {"lr": lr, "model": {"depth": 2 + i}})
    return root


EXPERIMENT = '''
import pyexp
from pyexp import sweep


@pyexp.experiment(name="sweep")
def experiment(config, logger):
    for it in range(30):
        logger.set_global_it(it)
        logger.add_scalar("loss", config.lr * (30 - it) + config.depth)
    if config.lr > 0.5:
        raise ValueError(f"lr {config.lr} is too large")
    return {"accuracy": round(1 - config.lr / config.depth, 4), "epochs": 30, "note": "ok"}


@experiment.configs
def configs():
    base = [{"name": "net", "depth": 2, "opt": {"name": "sgd"}}]
    return sweep(base, [{"name": f"lr{lr}", "lr": lr} for lr in (0.1, 0.2, 0.9, 0.05, 0.3)])


if __name__ == "__main__":
    experiment.run()
'''


def clean_env() -> dict[str, str]:
    """The environment for children: no PYEXP_* or RAY_* setting leaks in from the caller."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}


def run_experiment(base: Path) -> Path:
    """A real sweep of five configs: three done, one failed, one never run (pending).

    Returns the output folder (``<base>/out``); the run is ``out/sweep/<timestamp>/``.
    """
    import subprocess
    import sys

    script = base / "exp.py"
    script.write_text(EXPERIMENT)
    out = base / "out"
    proc = subprocess.run(
        [sys.executable, str(script), "--output-dir", str(out), "--no-stash",
         "--filter", r"lr0\.(1|2|9|05)$"],
        capture_output=True, text=True, env=clean_env(), timeout=300, cwd=base)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return out


# --------------------------------------------------------------------------- browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
STAMP = "2024-01-25_14-30-00"
SHOTS = Path(os.environ.get("PYEXP_VIEWER_SHOTS", "/tmp/pyexp-viewer-shots"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Site:
    """A served folder: its URL and the folder itself."""

    def __init__(self, root: Path) -> None:
        from pyexp.viewer import start_background

        self.root = root
        self.port = free_port()
        self.proc = start_background(root, port=self.port)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()


def offline_page(browser: Any) -> Any:
    """A page that refuses (and records) every request not made to the local viewer."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.external = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:
            page.external.append(url)
            r.abort()

    page.route("**/*", route)
    page.set_default_timeout(20_000)
    return page


def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def open_viewer(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".pyexp-chart .js-plotly-plot .scatterlayer .trace")


def chart(page: Any, title: str) -> Any:
    return page.locator(".pyexp-scalar").filter(has=page.locator(".gtitle", has_text=title)).first


def traces(box: Any) -> list[dict[str, Any]]:
    return box.locator(".js-plotly-plot").evaluate(
        "el => el.data.map(t => ({name: t.name, kind: t.meta && t.meta.kind, "
        "x: Array.from(t.x), y: Array.from(t.y)}))")


def deep_text(locator: Any) -> str:
    """Text of an element including its shadow roots (Panel renders each widget in one)."""
    return locator.evaluate("""el => { const walk = n => { let s = n.shadowRoot ? walk(n.shadowRoot) : "";
        for (const c of n.childNodes)
          s += c.nodeType === 3 ? c.textContent : c.nodeName === "STYLE" ? "" : walk(c);
        return s; }; return walk(el); }""")


def open_tab(page: Any, name: str) -> None:
    page.locator(".bk-tab", has_text=name).click()


