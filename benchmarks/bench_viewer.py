"""Viewer benchmark: pyexp's viewer (both entry points) against TensorBoard, side by side.

Every server serves the same logs (written once by pyexp's Logger with ``tensorboard=True``, so
TensorBoard reads the very same events through its ``events.out.tfevents.*`` alias). For each
server: start it fresh, open it in a fresh headless Chromium (every non-local request refused),
and time navigation -> the first chart with a data line drawn ("cold", the first visitor); for
pyexp also -> every default-selected run drawn in every chart. With the page still open, the
server's resident memory (with its children) is sampled 5 s and 20 s after the first chart.
Then a second visitor is timed ("warm").

TensorBoard's data line is a ``path`` inside a chart's plot area (``.series-view``); its card
icons are paths too, so a check on any ``scalar-card path`` fires before a line is drawn.

    python benchmarks/bench_viewer.py                    # 50 runs x 5 tags x 100 000 points
    python benchmarks/bench_viewer.py --large            # and 500 runs x 20 tags x 10 000 points
    python benchmarks/bench_viewer.py --runs 10 --points 20000 --no-tensorboard
    python benchmarks/bench_viewer.py --repeat 3            # medians of three turns each
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
DEFAULT_SELECTION = 10  # pyexp.viewer.app.DEFAULT_SELECTION (not imported: it pulls in panel)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
APP = Path(__file__).resolve().parents[1] / "pyexp" / "viewer" / "page"

# Panel renders every component in a shadow root: collect the scalar charts through them. Like
# TensorBoard's, pyexp's page draws only the charts on screen, so "every chart" below means every
# chart in the window.
_CHARTS = """const hosts = []; const walk = (n) => { if (!n) return;
  if (n.classList && n.classList.contains('pyexp-chart')) hosts.push(n);
  if (n.shadowRoot) walk(n.shadowRoot); for (const c of n.children || []) walk(c); };
  walk(document.body);
  const deep = (n, sel) => { if (!n) return null; const hit = n.querySelector && n.querySelector(sel);
    if (hit) return hit; if (n.shadowRoot) { const s = deep(n.shadowRoot, sel); if (s) return s; }
    for (const c of n.children || []) { const s = deep(c, sel); if (s) return s; } return null; };
  const shown = hosts.filter((h) => { const r = h.getBoundingClientRect();
    return r.width > 0 && r.bottom > 0 && r.top < window.innerHeight; });
  const plot = (h) => deep(h, '.js-plotly-plot');
  const lines = (h) => { const p = plot(h); return p ? p.querySelectorAll('.scatterlayer .trace path.js-line').length : 0; };"""
PYEXP_FIRST = "() => { " + _CHARTS + """ return hosts.some((h) => { const p = plot(h);
  return p && Array.from(p.querySelectorAll('.scatterlayer .trace path.js-line'))
    .some((l) => (l.getAttribute('d') || '').length > 100); }); }"""
PYEXP_ALL = "([n]) => { " + _CHARTS + """ return shown.length > 0 && shown.every((h) => lines(h) >= n); }"""
PYEXP_EXACT = "([n]) => { " + _CHARTS + """ return shown.length > 0 && shown.every((h) => {
  const p = plot(h); return p && p.data && p.data.length === n && lines(h) === n; }); }"""
TB_FIRST = "() => Array.from(document.querySelectorAll('.series-view path'))" \
           ".some((p) => (p.getAttribute('d') || '').length > 100)"


def generate(root: Path, runs: int, tags: int, points: int) -> float:
    """Write the logs (skipped when ``root`` already holds this exact size); return seconds."""
    stamp = root / "size.json"
    size = {"runs": runs, "tags": tags, "points": points}
    if stamp.exists() and json.loads(stamp.read_text()) == size:
        return 0.0
    shutil.rmtree(root, ignore_errors=True)
    from pyexp.log import Logger

    started = time.perf_counter()
    names = [f"train/metric{k}" if k else "loss" for k in range(tags)]
    for r in range(runs):
        run = root / "bench" / "2024-01-25_14-30-00" / f"cfg{r:03d}-{r * 7919 % 100000:05d}"
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"name": f"cfg{r:03d}", "lr": 10 ** -(r % 4)}))
        with Logger(run, tensorboard=True) as logger:
            for it in range(points):
                logger.set_global_it(it)
                for k, name in enumerate(names):
                    logger.add_scalar(name, math.exp(-it / points * (k + 1))
                                      + 0.01 * math.sin(it * (r + 1)))
    stamp.write_text(json.dumps(size))
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not open port {port}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        children = subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True).stdout
        todo += [int(c) for c in children.split()]
    return total / 1024


def offline_page(browser: object) -> object:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
        ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else r.abort())
    return page


class Server:
    """One server process under test."""

    def __init__(self, name: str, cmd: list[str], url: str, port: int) -> None:
        self.name, self.cmd, self.url, self.port = name, cmd, url, port
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def pyexp_server(root: Path, entry: str) -> Server:
    port = free_port()
    if entry == "module":
        cmd = [sys.executable, "-m", "pyexp.viewer", str(root), "--port", str(port)]
        return Server("pyexp (python -m)", cmd, f"http://127.0.0.1:{port}/", port)
    cmd = [sys.executable, "-m", "panel", "serve", str(APP), "--port", str(port),
           "--address", "127.0.0.1", "--args", str(root)]
    return Server("pyexp (panel serve)", cmd, f"http://127.0.0.1:{port}/page", port)


def tensorboard_server(root: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", "127.0.0.1",
           "--port", str(port)]
    return Server("tensorboard", cmd, f"http://127.0.0.1:{port}/?forceSVG=true", port)


def measure(server: Server, first: str, full: tuple[str, list[int]] | None,
            filter_case: tuple[str, int] | None = None, timeout: float = 300) -> dict:
    """Cold first chart (and all lines), RSS 5 s / 20 s after it, filter redraw, warm visit."""
    from playwright.sync_api import sync_playwright

    out: dict = {"name": server.name}
    try:
        out["port_up_s"] = wait_port(server.port, server.proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = offline_page(browser)
            started = time.perf_counter()
            page.goto(server.url, timeout=timeout * 1000)
            page.wait_for_function(first, timeout=timeout * 1000, polling=50)
            out["first_chart_s"] = shown = time.perf_counter() - started
            if full is not None:
                page.wait_for_function(full[0], arg=full[1], timeout=timeout * 1000, polling=50)
                out["all_lines_s"] = time.perf_counter() - started
            for after in (5, 20):
                time.sleep(max(0.0, started + shown + after - time.perf_counter()))
                out[f"rss_{after}s_mb"] = rss_mb(server.proc.pid)
            if filter_case is not None:
                out["filter_redraw_s"] = run_filter(page, *filter_case, timeout=timeout)
            browser.close()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = offline_page(browser)
            started = time.perf_counter()
            page.goto(server.url, timeout=timeout * 1000)
            page.wait_for_function(first, timeout=timeout * 1000, polling=50)
            out["warm_first_chart_s"] = time.perf_counter() - started
            browser.close()
        out["rss_end_mb"] = rss_mb(server.proc.pid)
    finally:
        server.stop()
    return out


def run_filter(page: object, regex: str, lines: int, timeout: float) -> float:
    """Seconds from entering a run filter to every chart in view showing exactly those runs."""
    box = page.locator(".pyexp-filter input")
    box.fill(regex)
    started = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(PYEXP_EXACT, arg=[lines], timeout=timeout * 1000, polling=20)
    return time.perf_counter() - started


def report(results: list[dict], selection: int) -> None:
    print(f"\n{'server':<22}{'port up':>9}{'1st chart':>11}{'all runs':>10}{'RSS +5s':>9}"
          f"{'RSS +20s':>10}{'warm 1st':>10}")
    for r in results:
        all_lines = f"{r['all_lines_s']:.2f}s" if "all_lines_s" in r else "-"
        print(f"{r['name']:<22}{r['port_up_s']:>8.2f}s{r['first_chart_s']:>10.2f}s{all_lines:>10}"
              f"{r['rss_5s_mb']:>7.0f}MB{r['rss_20s_mb']:>8.0f}MB{r['warm_first_chart_s']:>9.2f}s")
    tb = next((r for r in results if r["name"] == "tensorboard"), None)
    if tb is None:
        return
    for r in results:
        if r is tb:
            continue
        print(f"{r['name']}: first chart {r['first_chart_s'] / tb['first_chart_s']:.2f}x TensorBoard's "
              f"(target <= 0.60), all {selection} runs drawn at "
              f"{r['all_lines_s'] / tb['first_chart_s']:.2f}x TensorBoard's first chart (target <= 1.00), "
              f"RSS {r['rss_5s_mb'] / tb['rss_5s_mb']:.2f}x at +5 s and "
              f"{r['rss_20s_mb'] / tb['rss_20s_mb']:.2f}x at +20 s (target <= 1.00)")


def median_of(runs: list[dict]) -> dict:
    """One server's figures over repeated runs: the median of each."""
    import statistics

    out = {"name": runs[0]["name"]}
    for key in runs[0]:
        if key != "name" and all(key in r for r in runs):
            out[key] = statistics.median(r[key] for r in runs)
    return out


def case(root: Path, runs: int, tags: int, points: int, tensorboard: bool,
         filter_case: tuple[str, int] | None = None, repeat: int = 1) -> None:
    took = generate(root, runs, tags, points)
    print(f"\n== {runs} runs x {tags} tags x {points} points in {root}"
          + (f" (written in {took:.1f}s)" if took else " (reused)"), flush=True)
    selection = min(runs, DEFAULT_SELECTION)
    full = (PYEXP_ALL, [selection])
    rounds: dict[str, list[dict]] = {}
    for _ in range(repeat):  # the servers take turns, so a drift in load hits them alike
        for entry in ("module", "panel"):
            result = measure(pyexp_server(root, entry), PYEXP_FIRST, full, filter_case)
            rounds.setdefault(result["name"], []).append(result)
            print(f"  {result}", flush=True)
        if tensorboard:
            result = measure(tensorboard_server(root), TB_FIRST, None)
            rounds.setdefault(result["name"], []).append(result)
            print(f"  {result}", flush=True)
    results = [median_of(r) for r in rounds.values()]
    if repeat > 1:
        print(f"medians of {repeat} rounds:")
    report(results, selection)
    for r in results:
        if "filter_redraw_s" in r:
            print(f"{r['name']}: run filter {filter_case[0]!r} -> {filter_case[1]} runs redrawn in "
                  f"{r['filter_redraw_s']:.2f}s (target <= 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the logs (reused)")
    parser.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard side")
    parser.add_argument("--large", action="store_true",
                        help="also run the 500 runs x 20 tags x 10 000 points case")
    parser.add_argument("--only-large", action="store_true", help="run only the large case")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure every server this many times, taking turns; report medians")
    args = parser.parse_args()
    tb = not args.no_tensorboard
    if not args.only_large:
        root = args.dir or Path(f"/tmp/pyexp-bench-viewer-{args.runs}x{args.tags}x{args.points}")
        case(root, args.runs, args.tags, args.points, tb, repeat=args.repeat)
    if args.large or args.only_large:
        # The filter keeps 5 of the 10 runs shown: a redraw, no new run to read.
        case(Path("/tmp/pyexp-bench-viewer-500x20x10000"), 500, 20, 10_000, tb,
             filter_case=("cfg00[0-4]", 5), repeat=args.repeat)


if __name__ == "__main__":
    main()
