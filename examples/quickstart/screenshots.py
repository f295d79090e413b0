"""Screenshots of every viewer tab from a real run of the quickstart example (for the README).

Runs ``examples/quickstart/main.py`` for real into a temporary folder, serves the viewer on a
free local port, opens it in headless Chromium (every non-local request refused) and saves one
PNG per tab:

    python examples/quickstart/screenshots.py                  # -> docs/screenshots/*.png
    python examples/quickstart/screenshots.py --out /tmp/shots --chromium /usr/bin/chromium

Needs ``pip install -e ".[examples,viewer,test]"`` (Playwright) and a Chromium binary.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TABS = ("Scalars", "Text", "Figures", "Runs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_quickstart(work: Path) -> Path:
    """Run the example's 2x2 sweep into ``work/out``; return that folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
    out = work / "out"
    subprocess.run([sys.executable, str(HERE / "main.py"), "--output-dir", str(out), "--no-stash"],
                   check=True, env=env, cwd=work)
    return out


def wait_until(check: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        time.sleep(0.2)


def ready(page: Any, tab: str) -> bool:
    """Whether ``tab`` shows what the example logged (Playwright's locators see through the
    shadow roots Panel renders each component in)."""
    if tab == "Scalars":
        lines = page.locator(".pyexp-chart .js-plotly-plot .scatterlayer .trace path.js-line")
        return lines.count() >= 8  # two tags, four configs
    if tab == "Text":
        return page.locator(".pyexp-text-body").count() >= 8
    if tab == "Figures":
        images = page.locator(".pyexp-png img")
        return images.count() >= 4 and all(
            img.evaluate("i => i.complete && i.naturalWidth > 0") for img in images.all())
    return (page.locator(".pyexp-runs-table .tabulator-row").count() >= 4
            and page.locator(".pyexp-parcoords .js-plotly-plot").count() == 1)


def shoot(url: str, out_dir: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
            ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else r.abort())
        page.goto(url)
        for tab in TABS:
            page.locator(".bk-tab", has_text=tab).click()
            wait_until(lambda: ready(page, tab), f"the {tab} tab")
            if tab == "Runs":
                page.locator(".pyexp-metric select").select_option("result.accuracy")
            time.sleep(1.0)  # let the last redraw settle
            target = out_dir / f"{tab.lower()}.png"
            page.screenshot(path=str(target))
            saved.append(target)
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots",
                        help="folder for the PNGs (docs/screenshots)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary")
    args = parser.parse_args()
    from pyexp.viewer import start_background

    with tempfile.TemporaryDirectory(prefix="pyexp-screenshots-") as tmp:
        runs = run_quickstart(Path(tmp))
        viewer = start_background(runs, port=free_port())
        try:
            port = viewer.args[viewer.args.index("--port") + 1]
            for path in shoot(f"http://127.0.0.1:{port}/", args.out, args.chromium):
                print(f"saved {path}")
        finally:
            viewer.terminate()
            viewer.wait(10)


if __name__ == "__main__":
    main()
