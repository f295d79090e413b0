"""Sweep build and dict query on 10 000 configs (4 axes of 10), side by side with peers.

Targets: build <= 0.3 s, dict query <= 50 ms.
Peers doing the same job:
  * OmegaConf.merge of the same 10 000 configs (base + the 4 chosen variations each);
  * Hydra's BasicSweeper expansion of the same 4x10 grid given as ``key=v1,...,v10``
    overrides (override lists only), and that expansion turned into configs with
    OmegaConf.from_dotlist + OmegaConf.merge, as a Hydra app without compose would;
  * for the query: pandas boolean indexing on the same configs as a flat table, and a
    plain list comprehension (the floor).
The slow peers are timed on a sample of --sample configs and scaled to 10 000
(said so in the output); --full times all of them.

Also times ``python -c "import pyexp.config, pyexp.config.sweep, pyexp.tensor"`` against
``python -c pass``.

Run: python benchmarks/bench_sweep.py [--repeat 5] [--sample 1000] [--full]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

BASE = {
    "name": "base",
    "model": {"type": "MLP", "width": 32, "depth": 2, "act": "relu"},
    "optim": {"lr": 0.1, "weight_decay": 0.0, "betas": [0.9, 0.999]},
    "data": {"path": "/data/set", "batch_size": 32, "shuffle": True},
    "seed": 0,
    "epochs": 10,
}
N = 10
AXES: list[list[dict[str, Any]]] = [
    [{"name": f"w{i}", "model.width": 16 * (i + 1)} for i in range(N)],
    [{"name": f"lr{i}", "optim.lr": 10.0 ** -(i % 5) / (1 + i // 5)} for i in range(N)],
    [{"name": f"s{i}", "seed": i} for i in range(N)],
    [{"name": f"bs{i}", "**data": {"batch_size": 2 ** (i + 3)}} for i in range(N)],
]
QUERY = {"config.model.width": 64, "config.seed": 7}


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest of ``repeat`` timings (the machine is shared; the minimum is the least noisy)."""
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def build_pyexp() -> Any:
    from pyexp import sweep

    cfgs: Any = [BASE]
    for axis in AXES:
        cfgs = sweep(cfgs, axis)
    return cfgs


def nested(variation: dict[str, Any]) -> dict[str, Any]:
    """A variation as the nested dict OmegaConf.merge needs (it has no dotted keys or ``**``)."""
    out: dict[str, Any] = {}
    for key, value in variation.items():
        if key == "name":
            continue
        parts = key.lstrip("*").split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def omegaconf_merge(limit: int) -> list[Any]:
    from omegaconf import OmegaConf

    base = OmegaConf.create(BASE)
    axes = [[OmegaConf.create(nested(v)) for v in axis] for axis in AXES]
    out = []
    for combo in itertools.islice(itertools.product(*axes), limit):
        out.append(OmegaConf.merge(base, *combo))
    return out


def dotted(variation: dict[str, Any]) -> dict[str, Any]:
    """A variation as flat ``a.b: value`` pairs (how a Hydra command line spells it)."""
    def flat(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    return flat(nested(variation), "")


def hydra_overrides() -> list[str]:
    """The grid as Hydra sweep overrides: ``model.width=16,32,...``, one per axis."""
    lines = []
    for axis in AXES:
        pairs = [dotted(v) for v in axis]
        (key,) = pairs[0]
        lines.append(f"{key}=" + ",".join(repr(p[key]) for p in pairs))
    return lines


def hydra_expand() -> list[list[str]]:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(hydra_overrides())
    return BasicSweeper.split_arguments(parsed, None)[0]


def hydra_configs(jobs: list[list[str]], limit: int) -> list[Any]:
    from omegaconf import OmegaConf

    base = OmegaConf.create(BASE)
    return [OmegaConf.merge(base, OmegaConf.from_dotlist(job)) for job in jobs[:limit]]


def import_times(codes: list[str], repeat: int, env: dict[str, str]) -> list[float]:
    """Best wall time of ``python -c code`` for each code, runs interleaved so load noise hits all alike."""
    for code in codes:  # warm-up: fills the bytecode cache and the OS file cache
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
    times: list[list[float]] = [[] for _ in codes]
    for _ in range(repeat):
        for slot, code in zip(times, codes):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            slot.append(time.perf_counter() - start)
    return [min(t) for t in times]


def import_envs(cache_dir: str) -> dict[str, dict[str, str]]:
    """Child environments: with a bytecode cache (as users run) and without one (as this sandbox sets).

    The cache goes to a temp dir (PYTHONPYCACHEPREFIX) so the source tree stays clean.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_", "PYTHONDONTWRITE"))}
    return {
        "bytecode cached": {**clean, "PYTHONPYCACHEPREFIX": cache_dir},
        "no bytecode cache": {**clean, "PYTHONDONTWRITEBYTECODE": "1"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure (the best is kept)")
    parser.add_argument("--sample", type=int, default=1000, help="configs the slow peers build (scaled to 10 000)")
    parser.add_argument("--full", action="store_true", help="let the slow peers build all 10 000 configs")
    args = parser.parse_args()
    total = N ** len(AXES)
    sample = total if args.full else min(args.sample, total)
    scale = total / sample
    rows: list[tuple[str, float, str]] = []

    build_s, cfgs = best(build_pyexp, args.repeat)
    assert cfgs.shape == (1,) + (N,) * len(AXES) and cfgs.size == total
    rows.append((f"pyexp sweep(): {total} configs, 4 axes of {N}", build_s, "target <= 0.300 s"))

    om_s, om = best(lambda: omegaconf_merge(sample), max(1, args.repeat // 2))
    om_s *= scale
    assert om[-1].data.batch_size == cfgs.flat[sample - 1].data.batch_size
    rows.append((f"OmegaConf.merge, same configs{'' if scale == 1 else f' (x{scale:g} from {sample})'}", om_s,
                 f"pyexp is {om_s / build_s:.1f}x faster"))

    hx_s, jobs = best(hydra_expand, args.repeat)
    assert len(jobs) == total
    rows.append(("Hydra BasicSweeper expansion only (override lists)", hx_s,
                 f"ratio pyexp/hydra = {build_s / hx_s:.2f}"))
    hc_s, hc = best(lambda: hydra_configs(jobs, sample), max(1, args.repeat // 2))
    hc_s = hc_s * scale + hx_s
    assert hc[0].model.width == cfgs.flat[0].model.width
    rows.append((f"Hydra expansion + from_dotlist/merge to configs{'' if scale == 1 else f' (x{scale:g})'}",
                 hc_s, f"pyexp is {hc_s / build_s:.1f}x faster"))

    query_s, hits = best(lambda: cfgs[QUERY], args.repeat)
    rows.append((f"pyexp dict query {QUERY} -> {hits.shape}", query_s, "target <= 0.050 s"))
    flat = cfgs.flat
    floor_s, floor = best(lambda: [c for c in flat if c["model"]["width"] == 64 and c["seed"] == 7], args.repeat)
    assert [c["name"] for c in floor] == [c["name"] for c in hits]
    rows.append(("plain list comprehension, same query (floor)", floor_s,
                 f"pyexp/floor = {query_s / floor_s:.1f}x"))
    try:
        frame = cfgs.to_pandas()
        pd_s, pd_hits = best(lambda: frame[(frame["model.width"] == 64) & (frame["seed"] == 7)], args.repeat)
        assert list(pd_hits["name"]) == [c["name"] for c in hits]
        rows.append(("pandas boolean indexing on the same table", pd_s, f"pyexp/pandas = {query_s / pd_s:.1f}x"))
    except ImportError:
        rows.append(("pandas boolean indexing (pandas not installed)", float("nan"), ""))

    imp_repeat = max(10, args.repeat)
    with tempfile.TemporaryDirectory() as cache_dir:
        for label, env in import_envs(cache_dir).items():
            bare, ours = import_times(["pass", "import pyexp.config, pyexp.config.sweep, pyexp.tensor"], imp_repeat, env)
            rows.append((f"python -c pass ({label}, best)", bare, ""))
            rows.append((f"python -c 'import pyexp.config, pyexp.config.sweep, pyexp.tensor' ({label})", ours,
                         f"+{(ours - bare) * 1000:.0f} ms over bare Python"))

    width = max(len(r[0]) for r in rows)
    for label, seconds, note in rows:
        print(f"{label:<{width}}  {seconds * 1000:9.1f} ms  {note}")


if __name__ == "__main__":
    main()
