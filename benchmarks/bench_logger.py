"""pyexp Logger/LogReader vs tensorboardX SummaryWriter / TensorBoard EventAccumulator.

    python benchmarks/bench_logger.py [--iterations 50000] [--tags 10]

Every writer logs the same scalars: ``--iterations`` iterations x ``--tags`` tags. Measured:
caller-side rate (the logging loop alone), to-disk rate (loop + flush/close until the bytes are
in the file), bytes per scalar on disk; then read speed of LogReader (all scalars of all tags)
vs TensorBoard's EventAccumulator (keeping every scalar); memory each reader keeps per scalar;
and the cost of a live refresh after a small append to the big file (both readers are
incremental: the bytes read and the time should not grow with the file). Each measurement is
the best of ``--repeat`` runs, so noise from other processes on the machine counts less; rates
are also given per CPU second of this process (all its threads), which a busy machine distorts
less.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable

TAGS = ["loss", "accuracy", "lr", "grad_norm", "train/loss", "train/acc", "val/loss", "val/acc",
        "time/step", "mem/gpu", "throughput", "weight_decay", "epoch", "ppl", "bleu", "f1"]


def tags_for(n: int) -> list[str]:
    return [TAGS[i] if i < len(TAGS) else f"metric/{i}" for i in range(n)]


def log_pyexp(path: Path, iterations: int, tags: list[str],
              use_protobuf: bool) -> tuple[float, ...]:
    from pyexp.log import Logger

    logger = Logger(path, use_protobuf=use_protobuf)
    add, set_it = logger.add_scalar, logger.set_global_it
    start, cpu = time.perf_counter(), time.process_time()
    for it in range(iterations):
        set_it(it)
        for k, tag in enumerate(tags):
            add(tag, it * 0.001 + k)
    caller, caller_cpu = time.perf_counter() - start, time.process_time() - cpu
    logger.close()
    return caller, time.perf_counter() - start, caller_cpu, time.process_time() - cpu


def log_tensorboardx(path: Path, iterations: int, tags: list[str]) -> tuple[float, ...]:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(path), max_queue=1000, flush_secs=120)
    add = writer.add_scalar
    start, cpu = time.perf_counter(), time.process_time()
    for it in range(iterations):
        for k, tag in enumerate(tags):
            add(tag, it * 0.001 + k, it)
    caller, caller_cpu = time.perf_counter() - start, time.process_time() - cpu
    writer.close()
    return caller, time.perf_counter() - start, caller_cpu, time.process_time() - cpu


def read_logreader(path: Path) -> int:
    from pyexp.log import LogReader

    reader = LogReader(path)
    return sum(len(reader.load_scalars(tag)) for tag in reader.scalar_tags)


def read_accumulator(path: Path) -> int:
    """Scalars as ``tensorboard --logdir`` loads them in Python (tensorboardX's simple_values
    are migrated to tensors too), keeping every point."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    return sum(len(acc.Tensors(tag)) for tag in acc.Tags()["tensors"]
               if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars")


def retained_bytes(load: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated after ``load()`` (its result kept alive), by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = load()
        gc.collect()
        return tracemalloc.get_traced_memory()[0], kept
    finally:
        tracemalloc.stop()


def load_logreader(path: Path) -> object:
    from pyexp.log import LogReader

    reader = LogReader(path)
    for tag in reader.scalar_tags:
        reader.scalars(tag)
    return reader


def load_accumulator(path: Path) -> object:
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def process_read_bytes() -> int:
    try:
        with open("/proc/self/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))
    except OSError:
        return -1


def refresh_cost(path: Path, tags: list[str], appends: int = 10) -> dict[str, tuple[float, int]]:
    """Seconds and bytes read by one refresh of each reader after ``appends`` iterations."""
    from pyexp.log import Logger

    readers = {"pyexp LogReader.refresh()": load_logreader(path),
               "TensorBoard EventAccumulator.Reload()": load_accumulator(path)}
    with Logger(path) as logger:  # a second session appending to the same events.pb
        for it in range(appends):
            logger.set_global_it(10**9 + it)
            for k, tag in enumerate(tags):
                logger.add_scalar(tag, float(k))
    out = {}
    for name, reader in readers.items():
        before, start = process_read_bytes(), time.perf_counter()
        reader.refresh() if hasattr(reader, "refresh") else reader.Reload()  # type: ignore[attr-defined]
        out[name] = (time.perf_counter() - start, process_read_bytes() - before)
    return out


def best(repeat: int, fn: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
    """Column-wise minimum over ``repeat`` runs."""
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(fn())
    return tuple(min(column) for column in zip(*results))


def dir_bytes(path: Path) -> int:
    """Bytes of the log files (a pyexp alias of events.pb is the same file: counted once)."""
    return sum(p.stat().st_size for p in path.rglob("*")
               if p.is_file() and p.name != ".pyexp" and not p.name.endswith(".pyexp"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tags = tags_for(args.tags)
    n = args.iterations * len(tags)
    root = Path(tempfile.mkdtemp(prefix="bench-logger-"))
    try:
        print(f"{args.iterations} iterations x {len(tags)} tags = {n} scalars, best of {args.repeat}\n")
        writers = {
            "pyexp Logger (events.pb)": lambda p: log_pyexp(p, args.iterations, tags, True),
            "pyexp Logger (JSONL)": lambda p: log_pyexp(p, args.iterations, tags, False),
            "tensorboardX SummaryWriter": lambda p: log_tensorboardx(p, args.iterations, tags),
        }
        paths: dict[str, Path] = {}
        rows = {}
        for name, fn in writers.items():
            counter = iter(range(1000))

            def once(fn=fn, name=name) -> tuple[float, ...]:
                path = root / f"{name.split()[-1].strip('()')}-{next(counter)}"
                paths[name] = path
                return fn(path)

            caller, disk, caller_cpu, disk_cpu = best(args.repeat, once)
            size = dir_bytes(paths[name])
            rows[name] = (n / caller, n / disk, size / n, n / caller_cpu, n / disk_cpu)
        print(f"{'writer':28} {'caller/s':>11} {'to disk/s':>11} {'bytes/scalar':>13} "
              f"{'caller/CPU s':>13} {'disk/CPU s':>11}")
        for name, (caller, disk, per, caller_cpu, disk_cpu) in rows.items():
            print(f"{name:28} {caller:11,.0f} {disk:11,.0f} {per:13.1f} {caller_cpu:13,.0f} "
                  f"{disk_cpu:11,.0f}")
        pb, jl, tbx = rows.values()
        print(f"\nevents.pb vs tensorboardX: caller x{pb[0] / tbx[0]:.1f}, to disk x{pb[1] / tbx[1]:.1f}, "
              f"size x{tbx[2] / pb[2]:.2f} smaller")
        print(f"events.pb vs JSONL:        caller x{pb[0] / jl[0]:.1f}, to disk x{pb[1] / jl[1]:.1f}, "
              f"size x{jl[2] / pb[2]:.2f} smaller")

        print(f"\n{'reader':48} {'scalars/s':>12} {'per CPU s':>12}")
        reads = {
            "pyexp LogReader on events.pb": lambda: read_logreader(paths["pyexp Logger (events.pb)"]),
            "pyexp LogReader on JSONL": lambda: read_logreader(paths["pyexp Logger (JSONL)"]),
            "TensorBoard EventAccumulator on tensorboardX file":
                lambda: read_accumulator(paths["tensorboardX SummaryWriter"]),
        }
        os.link(paths["pyexp Logger (events.pb)"] / "events.pb",
                paths["pyexp Logger (events.pb)"] / "events.out.tfevents.0.bench.pyexp")
        reads["TensorBoard EventAccumulator on events.pb"] = \
            lambda: read_accumulator(paths["pyexp Logger (events.pb)"])
        speeds = {}
        for name, fn in reads.items():
            def timed(fn=fn) -> tuple[float, ...]:
                start, cpu = time.perf_counter(), time.process_time()
                count = fn()
                return time.perf_counter() - start, time.process_time() - cpu, count

            seconds, cpu_seconds, count = best(max(1, args.repeat - 1), timed)
            assert count == n, (name, count, n)
            speeds[name] = n / seconds
            print(f"{name:48} {n / seconds:12,.0f} {n / cpu_seconds:12,.0f}")
        ratio = speeds["pyexp LogReader on events.pb"] / \
            speeds["TensorBoard EventAccumulator on tensorboardX file"]
        print(f"\nLogReader vs EventAccumulator: x{ratio:.1f}")

        pb_path = paths["pyexp Logger (events.pb)"]
        print(f"\n{'memory kept after loading every scalar':48} {'bytes/scalar':>12}")
        for name, load in (("pyexp LogReader (numpy columns)", load_logreader),
                           ("TensorBoard EventAccumulator (all tensors)", load_accumulator)):
            kept, _ = retained_bytes(lambda load=load: load(pb_path))
            print(f"{name:48} {kept / n:12.1f}")

        size = (pb_path / "events.pb").stat().st_size
        print(f"\nrefresh after appending 10 iterations to the {size / 1e6:.1f} MB events.pb:")
        for name, (seconds, read) in refresh_cost(pb_path, tags).items():
            print(f"{name:48} {seconds * 1e3:9.2f} ms {read:12,} bytes read")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
