"""Viewer benchmark: time to the first chart in headless Chromium and server memory, vs TensorBoard.

Both servers serve the same logs (written once by pyexp's Logger with ``tensorboard=True``, so
TensorBoard reads the very same events.pb through its ``events.out.tfevents.*`` alias). For each
server: start it, wait for its port, time navigation -> first chart with a drawn line ("cold":
the first visitor), sample the server's RSS for --settle seconds while it loads in the
background, then time a second visitor ("warm"). Every non-local request is refused (offline).

    python benchmarks/bench_viewer.py                     # 50 runs x 5 tags x 100 000 points
    python benchmarks/bench_viewer.py --runs 10 --points 20000 --no-tensorboard
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
PYEXP_CHART = "() => { const walk = (n) => { if (!n) return false; if (n.matches && n.matches('.js-plotly-plot') && " \
              "n.querySelector('.scatterlayer .trace path.js-line')) return true; " \
              "if (n.shadowRoot && walk(n.shadowRoot)) return true; " \
              "for (const c of n.children || []) if (walk(c)) return true; return false; }; " \
              "return walk(document.body); }"
PYEXP_ALL_LINES = "(n) => { const walk = (e) => { if (!e) return 0; if (e.matches && " \
                  "e.matches('.js-plotly-plot') && e.data) return e.data.length; " \
                  "if (e.shadowRoot) { const k = walk(e.shadowRoot); if (k) return k; } " \
                  "for (const c of e.children || []) { const k = walk(c); if (k) return k; } " \
                  "return 0; }; return walk(document.body) >= n; }"
TB_CHART = "() => Array.from(document.querySelectorAll('scalar-card path'))" \
           ".some(p => (p.getAttribute('d') || '').length > 100)"


def generate(root: Path, runs: int, tags: int, points: int) -> float:
    """Write the logs (skipped when ``root`` already holds this exact size); return seconds."""
    stamp = root / "size.json"
    size = {"runs": runs, "tags": tags, "points": points}
    if stamp.exists() and json.loads(stamp.read_text()) == size:
        return 0.0
    shutil.rmtree(root, ignore_errors=True)
    from pyexp.log import Logger

    started = time.perf_counter()
    for r in range(runs):
        run = root / "bench" / "2024-01-25_14-30-00" / f"cfg{r:02d}-{r * 7919 % 100000:05d}"
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"name": f"cfg{r:02d}", "lr": 10 ** -(r % 4)}))
        with Logger(run, tensorboard=True) as logger:
            add = logger.add_scalar
            names = [f"train/metric{k}" if k else "loss" for k in range(tags)]
            for it in range(points):
                logger.set_global_it(it)
                for k, name in enumerate(names):
                    add(name, math.exp(-it / points * (k + 1)) + 0.01 * math.sin(it * (r + 1)))
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
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in children.split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def first_chart(url: str, probe: str, full: tuple[str, int] | None = None,
                timeout: float = 600) -> tuple[float, float | None]:
    """Seconds from navigation to the first drawn chart (and to ``full``'s condition)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
            ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else r.abort())
        started = time.perf_counter()
        page.goto(url, timeout=timeout * 1000)
        page.wait_for_function(probe, timeout=timeout * 1000, polling=50)
        elapsed = time.perf_counter() - started
        complete = None
        if full is not None:
            page.wait_for_function(full[0], arg=full[1], timeout=timeout * 1000, polling=50)
            complete = time.perf_counter() - started
        browser.close()
    return elapsed, complete


def measure(name: str, cmd: list[str], port: int, url: str, probe: str, settle: float,
            full: tuple[str, int] | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        up = wait_port(port, proc)
        cold, cold_full = first_chart(url, probe, full)
        deadline = time.perf_counter() + settle
        peak = rss_mb(proc.pid)
        while time.perf_counter() < deadline:  # let background loading finish, keep the peak
            time.sleep(0.5)
            peak = max(peak, rss_mb(proc.pid))
        warm, warm_full = first_chart(url, probe, full)  # a second visitor, server settled
        peak = max(peak, rss_mb(proc.pid))
        return {"name": name, "port_up_s": up, "first_chart_cold_s": cold,
                "first_chart_warm_s": warm, "rss_mb": peak, "all_lines_cold_s": cold_full,
                "all_lines_warm_s": warm_full}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the logs (reused)")
    parser.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard side")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds to keep sampling memory after the page loaded")
    args = parser.parse_args()
    root = args.dir or Path(f"/tmp/pyexp-bench-viewer-{args.runs}x{args.tags}x{args.points}")
    took = generate(root, args.runs, args.tags, args.points)
    print(f"logs: {args.runs} runs x {args.tags} tags x {args.points} points in {root}"
          + (f" (written in {took:.1f}s)" if took else " (reused)"))
    results = []
    port = free_port()
    results.append(measure(
        "pyexp viewer", [sys.executable, "-m", "pyexp.viewer", str(root), "--port", str(port)],
        port, f"http://127.0.0.1:{port}/", PYEXP_CHART, args.settle,
        full=(PYEXP_ALL_LINES, min(args.runs, DEFAULT_SELECTION))))
    if not args.no_tensorboard:
        port = free_port()
        results.append(measure(
            "tensorboard", [sys.executable, "-m", "tensorboard.main", "--logdir", str(root),
                            "--host", "127.0.0.1", "--port", str(port)],
            port, f"http://127.0.0.1:{port}/?forceSVG=true", TB_CHART, args.settle))
    print(f"{'server':<14}{'port up':>10}{'1st chart cold':>16}{'1st chart warm':>16}{'RSS MB':>10}")
    for r in results:
        print(f"{r['name']:<14}{r['port_up_s']:>9.2f}s{r['first_chart_cold_s']:>15.2f}s"
              f"{r['first_chart_warm_s']:>15.2f}s{r['rss_mb']:>10.0f}")
    if len(results) == 2:
        ours, tb = results
        print(f"ratio pyexp/tensorboard: first chart (cold) "
              f"{ours['first_chart_cold_s'] / tb['first_chart_cold_s']:.2f}x, "
              f"warm {ours['first_chart_warm_s'] / tb['first_chart_warm_s']:.2f}x, "
              f"RSS {ours['rss_mb'] / tb['rss_mb']:.2f}x")
    ours = results[0]
    print(f"pyexp: all {min(args.runs, DEFAULT_SELECTION)} default-selected runs drawn in the first "
          f"chart after {ours['all_lines_cold_s']:.2f}s (cold), {ours['all_lines_warm_s']:.2f}s (warm)")
    print("target: pyexp first chart <= 3 s")


if __name__ == "__main__":
    main()
