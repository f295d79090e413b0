"""Ray executor vs subprocess executor: per-config overhead, and parallel wall time on 2 CPUs.

    python benchmarks/bench_ray.py [--configs 200] [--sleepers 8] [--address ray://host:port]

Both run a real experiment script, as a user would. The subprocess executor gets ``--jobs 2``;
the Ray executor starts its own local Ray (2 CPUs on this machine, private temp dir) unless
``--address`` names a cluster. Per-config overhead is ``(t_N - t_1) / (N - 1)`` so interpreter
start-up, imports and Ray's start-up are not counted; the sleep test runs S configs that each
sleep 1 s, whose ideal span (first start to last end) on 2 CPUs is S/2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

APP = '''
import os, time
import pyexp

@pyexp.experiment(name="bench", stash=False)
def exp(config):
    started = time.time()
    if config["sleep"]:
        time.sleep(config["sleep"])
    return started, time.time()

@exp.configs
def configs():
    n, sleep = int(os.environ["N"]), float(os.environ["SLEEP"])
    return [{"name": f"c{i}", "i": i, "sleep": sleep} for i in range(n)]

@exp.report
def report(results, report_dir):
    bad = [r.error for r in results if r.error]
    assert not bad, bad[:3]
    print("SPAN", max(r.result[1] for r in results) - min(r.result[0] for r in results))

if __name__ == "__main__":
    exp.run()
'''


def _env(ray_tmp: Path, n: int, sleep: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
    # Token auth may be on when ~/.ray/auth_token exists; the private temp dir keeps ray.init()
    # from joining some other Ray that runs on this machine.
    env.update(N=str(n), SLEEP=str(sleep), RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               RAY_TMPDIR=str(ray_tmp))
    return env


def timed(folder: Path, executor: list[str], n: int, sleep: float, ray_tmp: Path) -> tuple[float, float]:
    """(wall time of the whole script, time from the first config's start to the last one's end)."""
    shutil.rmtree(folder / "out", ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(folder / "main.py"), *executor], cwd=folder,
                          env=_env(ray_tmp, n, sleep), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(executor)} N={n} failed:\n{proc.stderr[-3000:]}")
    span = float(proc.stdout.split("SPAN ")[1].split()[0])
    return wall, span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--sleepers", type=int, default=8)
    parser.add_argument("--address", help="use this Ray cluster instead of starting a local one")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="pyexp-bench-ray-"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="pbr-", dir="/tmp"))
    (folder / "main.py").write_text(textwrap.dedent(APP))
    executors = {
        "subprocess -j2": ["--executor", "subprocess", "--jobs", "2"],
        "ray": ["--executor", f"ray:{args.address}" if args.address else "ray"],
    }
    rows = {}
    try:
        for label, flags in executors.items():
            t1, _ = timed(folder, flags, 1, 0, ray_tmp)
            tn, span_n = timed(folder, flags, args.configs, 0, ray_tmp)
            ts, span_s = timed(folder, flags, args.sleepers, 1, ray_tmp)
            rows[label] = (t1, tn, (tn - t1) / (args.configs - 1), span_n / args.configs, ts, span_s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    ideal = args.sleepers / 2
    print(f"{'executor':<16}{'t_1':>8}{f't_{args.configs}':>9}{'(tN-t1)/(N-1)':>15}{'span/N':>9}"
          f"{f'{args.sleepers}x sleep(1)':>14}{'span':>8}")
    for label, (t1, tn, per, per_span, ts, span_s) in rows.items():
        print(f"{label:<16}{t1:>7.2f}s{tn:>8.2f}s{per * 1000:>13.0f}ms{per_span * 1000:>7.0f}ms"
              f"{ts:>13.2f}s{span_s:>7.2f}s")
    sub, ray = rows["subprocess -j2"], rows["ray"]
    print("(span: first config's start to last config's end; t_1 includes starting and stopping Ray)")
    print(f"per-config overhead ray / subprocess: {ray[2] / sub[2]:.2f}x by (tN-t1)/(N-1), "
          f"{ray[3] / sub[3]:.2f}x by span/N")
    print(f"{args.sleepers}x sleep(1) on 2 CPUs (ideal {ideal:.1f}s): ray {ray[5]:.2f}s "
          f"({ray[5] / ideal:.2f}x ideal), subprocess -j2 {sub[5]:.2f}s ({sub[5] / ideal:.2f}x ideal)")


if __name__ == "__main__":
    main()
