"""Export of a large run to one table: ``python -m pyexp export`` vs a plain loop.

    python benchmarks/bench_export.py [--configs 10000] [--tags 20] [--steps 5] [--data DIR]

A real pyexp run (inline executor) of N configs is made once: each config logs ``--tags``
scalar tags at ``--steps`` iterations and returns a dict of three floats plus a 2 000-float
numpy array (the kind of result that makes unpickling cost something). Then the same table
(config values, scalar results, last value of every logged scalar) is built and written to
Parquet twice:

- pyexp: ``python -m pyexp export DIR -o table.parquet`` (scalar summaries, no unpickling);
- peer:  a plain loop over ``json.load(config.json)``, ``pickle.load(result.pkl)`` and
  ``LogReader``, collected into a pandas DataFrame and written with ``to_parquet``.

Target: pyexp <= 5 s for 10 000 configs with 20 logged scalars each.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

APP = '''
import os
import numpy as np
import pyexp

@pyexp.experiment(name="bench", stash=False, executor="inline")
def exp(config, logger):
    for step in range(int(os.environ["STEPS"])):
        logger.set_global_it(step)
        for t in range(int(os.environ["TAGS"])):
            logger.add_scalar(f"metric{t}", config["i"] * 0.001 + t + step)
    return {"acc": config["i"] / 10000, "loss": 1.0 - config["i"] / 10000, "epochs": 3,
            "weights": np.full(2000, config["i"], dtype=np.float64)}

@exp.configs
def configs():
    return [{"name": f"c{i}", "i": i, "optimizer": {"lr": 0.1 / (1 + i % 7), "kind": "sgd"}}
            for i in range(int(os.environ["N"]))]

if __name__ == "__main__":
    exp.run()
'''


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
    env.update(extra)
    return env


def make_data(work: Path, n: int, tags: int, steps: int) -> Path:
    """Run the app once (skipped when ``work`` already holds a finished run of that size)."""
    store = work / "out" / "bench"
    marker = work / f"made-{n}-{tags}-{steps}"
    if marker.exists():
        return store
    work.mkdir(parents=True, exist_ok=True)
    (work / "app.py").write_text(textwrap.dedent(APP))
    start = time.perf_counter()
    subprocess.run([sys.executable, "app.py"], cwd=work, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=_env(N=str(n), TAGS=str(tags), STEPS=str(steps)))
    print(f"made {n} configs in {time.perf_counter() - start:.0f} s (not part of the figures)")
    marker.touch()
    return store


def plain_loop(store: Path, out: Path) -> float:
    """What a user writes without pyexp's export: unpickle every result, read every log."""
    import pandas as pd

    from pyexp import LogReader

    start = time.perf_counter()
    run = sorted(p for p in store.iterdir() if (p / "runs.json").exists())[-1]
    rows = []
    for dirname in json.loads((run / "runs.json").read_text())["runs"]:
        folder = run / dirname
        with open(folder / "config.json") as f:
            config = json.load(f)
        row = {f"config.{k}": v for k, v in config.items() if not isinstance(v, dict)}
        row.update({f"config.optimizer.{k}": v for k, v in config["optimizer"].items()})
        with open(folder / "result.pkl", "rb") as f:
            value = pickle.load(f)
            if isinstance(value, dict) and value.get("pyexp_outcome") == 1:  # a pre-sidecar result file
                value = pickle.load(f)["result"]
        row.update({f"result.{k}": v for k, v in value.items() if isinstance(v, (int, float))})
        reader = LogReader(folder)
        row.update({f"log.{tag}": reader[tag][1] for tag in sorted(reader.scalar_tags)})
        rows.append(row)
    pd.DataFrame(rows).to_parquet(out)
    return time.perf_counter() - start


def pyexp_export(store: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pyexp", "export", str(store), "-o", str(out)], check=True,
                   env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", type=int, default=10_000)
    ap.add_argument("--tags", type=int, default=20)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--data", type=Path, default=None, help="keep the generated run here (reused next time)")
    args = ap.parse_args()
    work = args.data or Path(tempfile.mkdtemp(prefix="pyexp-bench-export-"))
    store = make_data(work, args.configs, args.tags, args.steps)
    import pandas as pd

    ours = min(pyexp_export(store, work / "pyexp.parquet") for _ in range(2))
    peer = min(plain_loop(store, work / "loop.parquet") for _ in range(2))
    a, b = pd.read_parquet(work / "pyexp.parquet"), pd.read_parquet(work / "loop.parquet")
    import numpy as np

    # events.pb may hold float32 while pyexp records the logged double: equal to float32 precision.
    same = all(np.allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-6)
               for c in b.columns if c in a.columns and c.startswith(("log.", "result.")))
    print(f"export of {args.configs} configs x {args.tags} logged scalars x {args.steps} steps to Parquet:")
    print(f"  pyexp export (whole command)     : {ours:6.2f} s   (target <= 5 s)")
    print(f"  plain pickle.load + LogReader    : {peer:6.2f} s   peer/pyexp = {peer / ours:.1f}x")
    print(f"  same values in both tables: {same}; {len(a.columns)} columns, {len(a)} rows")


if __name__ == "__main__":
    main()
