"""Per-job overhead of ``hydra/launcher=pyexp`` vs Hydra's basic launcher, and of pyexp's own ``-m``.

    python benchmarks/bench_hydra.py [--jobs 200] [--repeat 1]

1. The same plain ``@hydra.main`` no-op app sweeps ``+x=range(N)`` with Hydra's basic
   launcher and with ``-m hydra/launcher=pyexp`` (fork executor, 1 and 2 jobs at a time).
2. A pyexp experiment sweeps ``-m +x=range(N)`` over its one config (fork executor),
   next to the same N values through Hydra's basic multirun.

Every command runs with N values and with 1 value; (t_N - t_1) / (N - 1) is the per-job
overhead, so interpreter start-up and imports are not counted. Wall time and CPU time
(user + system of the app and every process it waited for) are both shown: on a shared
machine the wall time mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HYDRA_APP = '''
import hydra

@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    return cfg.get("x")

if __name__ == "__main__":
    main()
'''

PYEXP_APP = '''
import pyexp

@pyexp.experiment(name="bench", stash=False, executor="fork")
def exp(config):
    return config["x"]

@exp.configs
def configs():
    return [{"name": "noop"}]

@exp.report
def report(results, report_dir):
    pass

if __name__ == "__main__":
    exp.run()
'''


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one command."""
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return took, _cpu() - cpu


def per_job(cmd: list[str], sweep: str, n: int, cwd: Path, repeat: int) -> tuple[float, float]:
    """(wall, cpu) seconds per extra job: best of ``repeat`` for N jobs and for 1 job."""
    big = [_timed(cmd + [sweep.format(n=n)], cwd) for _ in range(repeat)]
    one = [_timed(cmd + [sweep.format(n=1)], cwd) for _ in range(repeat)]
    for leftover in ("multirun", "outputs", "out"):
        shutil.rmtree(cwd / leftover, ignore_errors=True)
    return tuple((min(b[i] for b in big) - min(o[i] for o in one)) / (n - 1) for i in (0, 1))  # type: ignore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200, help="sweep size (default 200)")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs per command")
    args = ap.parse_args()
    n = args.jobs
    with tempfile.TemporaryDirectory(prefix="pyexp-bench-hydra-") as tmp:
        cwd = Path(tmp)
        (cwd / "app.py").write_text(HYDRA_APP)
        (cwd / "exp.py").write_text(PYEXP_APP)
        app = [sys.executable, "app.py", "-m"]
        sweep = "+x=range({n})"
        rows = {
            "hydra basic launcher": per_job(app, sweep, n, cwd, args.repeat),
            "pyexp launcher, fork, jobs=1": per_job(
                app + ["hydra/launcher=pyexp", "hydra.launcher.executor=fork"], sweep, n, cwd, args.repeat),
            "pyexp launcher, fork, jobs=2": per_job(
                app + ["hydra/launcher=pyexp", "hydra.launcher.executor=fork", "hydra.launcher.jobs=2"],
                sweep, n, cwd, args.repeat),
            "pyexp -m, fork": per_job([sys.executable, "exp.py", "-m"], sweep, n, cwd, args.repeat),
            "pyexp -m, fork, -j 2": per_job([sys.executable, "exp.py", "-m", "-j", "2"], sweep, n, cwd,
                                            args.repeat),
        }
    wall0, cpu0 = rows["hydra basic launcher"]
    load = os.getloadavg()[0]
    print(f"per-job overhead over a {n}-job sweep of a no-op job ({os.cpu_count()} cores, load {load:.1f})")
    print(f"  {'':32s} {'wall':>10s} {'basic/this':>11s} {'cpu':>10s} {'basic/this':>11s}")
    for label, (wall, cpu) in rows.items():
        print(f"  {label:32s} {wall * 1000:7.1f} ms {wall0 / wall:10.2f}x {cpu * 1000:7.1f} ms {cpu0 / cpu:10.2f}x")


if __name__ == "__main__":
    main()
