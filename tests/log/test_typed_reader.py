"""LogReader keeps scalar series as numpy arrays (issue 16) and refreshes incrementally."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pyexp.log import Logger, LogReader, TagNotFoundError

FORMATS = [pytest.param(True, id="protobuf"), pytest.param(False, id="jsonl")]


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_scalars_are_typed_read_only_arrays(tmp_path: Path, use_protobuf: bool) -> None:
    with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
        for it in range(0, 300, 3):
            logger.set_global_it(it)
            logger.add_scalar("loss", 1.0 / (it + 1))
            logger.add_scalar("acc", it / 300)
            if it % 30 == 0:
                logger.add_text("note", f"at {it}")  # breaks the run of identical events
    reader = LogReader(tmp_path)
    steps, values = reader.scalars("loss")
    assert steps.dtype == np.int64 and values.dtype == np.float64
    assert steps.tolist() == list(range(0, 300, 3))
    assert values.tolist() == [1.0 / (it + 1) for it in range(0, 300, 3)]
    assert list(zip(steps.tolist(), values.tolist())) == reader.load_scalars("loss")
    with pytest.raises(ValueError):
        values[0] = 5.0  # shared with the reader's cache
    times = reader.scalar_wall_times("acc")
    assert times.dtype == np.float64 and len(times) == 100 and np.all(np.diff(times) >= 0)
    cols = reader.scalar_columns("acc")
    assert [c.dtype for c in cols] == [np.int64, np.float64, np.float64]
    assert cols[1].tolist() == [it / 300 for it in range(0, 300, 3)]
    with pytest.raises(TagNotFoundError, match="'nope'"):
        reader.scalars("nope")
    with pytest.raises(KeyError):
        reader.scalar_wall_times("note")


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_live_refresh_grows_the_arrays_in_order(tmp_path: Path, use_protobuf: bool) -> None:
    reader = LogReader(tmp_path)
    logger = Logger(tmp_path, use_protobuf=use_protobuf)
    expected: list[tuple[int, float]] = []
    old_steps = None
    for it in range(40):
        logger.set_global_it(it)
        logger.add_scalar("x", it * 0.5)
        expected.append((it, it * 0.5))
        if it in (17, 33):
            logger.add_text("t", "breaks the layout")
        if it % 7 == 0:
            logger.flush()
            assert reader.refresh() is True
            steps, values = reader.scalars("x")
            assert list(zip(steps.tolist(), values.tolist())) == expected
            if old_steps is not None:  # arrays handed out earlier stay as they were
                assert old_steps.tolist() == [e[0] for e in expected[:len(old_steps)]]
            old_steps = steps
    logger.close()
    reader.refresh()
    assert reader.load_scalars("x") == expected
    assert reader.iterations == list(range(40))


def test_a_100k_point_series_costs_numpy_bytes_not_python_objects(tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        for it in range(100_000):
            logger.set_global_it(it)
            logger.add_scalar("loss", it * 1e-3)
    LogReader(tmp_path).scalars("loss")  # imports and caches outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        reader = LogReader(tmp_path)
        steps, values = reader.scalars("loss")
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert steps.nbytes + values.nbytes == 1_600_000
    # steps + values (1.6 MB) and the wall times (0.8 MB); Python lists would take ~10 MB.
    assert retained < 3_000_000, retained
    assert len(reader.scalar_wall_times("loss")) == 100_000


def read_bytes_of_this_process() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_refresh_reads_only_the_appended_bytes(tmp_path: Path, use_protobuf: bool) -> None:
    logger = Logger(tmp_path, use_protobuf=use_protobuf)
    for it in range(50_000):
        logger.set_global_it(it)
        logger.add_scalar("loss", it * 0.25)
        logger.add_scalar("acc", 1.0)
    logger.flush()
    reader = LogReader(tmp_path)
    assert len(reader.scalars("loss")[0]) == 50_000
    size = sum(p.stat().st_size for p in tmp_path.iterdir() if p.is_file())
    assert size > 2_000_000
    for it in range(50_000, 50_010):
        logger.set_global_it(it)
        logger.add_scalar("loss", it * 0.25)
    logger.flush()
    before = read_bytes_of_this_process()
    assert reader.refresh() is True
    read = read_bytes_of_this_process() - before
    assert read < 20_000, f"refresh read {read} bytes of a {size}-byte log"
    assert reader.scalars("loss")[1][-1] == 50_009 * 0.25
    logger.close()


def test_reading_a_parent_folder_reads_no_run(tmp_path: Path) -> None:
    for name in ("a", "b"):
        with Logger(tmp_path / name) as logger:
            logger.add_scalar("x", 1.0)
    before = read_bytes_of_this_process() if Path("/proc/self/io").exists() else 0
    reader = LogReader(tmp_path)
    assert reader.runs == ["a", "b"]
    if before:
        assert read_bytes_of_this_process() - before < 4096  # markers at most
    assert reader.get_run("b").scalars("x")[1].tolist() == [1.0]


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_jsonl_scalars_are_read_without_the_text_file(tmp_path: Path) -> None:
    with Logger(tmp_path, use_protobuf=False) as logger:
        for it in range(200):
            logger.set_global_it(it)
            logger.add_scalar("x", it)
            logger.add_text("long", "t" * 10_000)  # 2 MB of text nobody asks for
    reader = LogReader(tmp_path)
    before = read_bytes_of_this_process()
    assert reader.scalars("x")[1].tolist() == list(range(200))
    assert read_bytes_of_this_process() - before < 100_000
    assert reader.load_text("long")[-1] == (199, "t" * 10_000)  # read when asked for
    assert reader["long"][0] == 199 and "x" in reader and reader.iterations[-1] == 199


def test_a_reader_shared_between_threads_stays_consistent(tmp_path: Path) -> None:
    import threading

    logger = Logger(tmp_path)
    reader = LogReader(tmp_path)
    seen: list[list[int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def follow() -> None:
        try:
            while not done.is_set():
                reader.refresh()
                if "x" in reader.scalar_tags:
                    seen.append(reader.scalars("x")[0].tolist())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=follow) for _ in range(3)]
    for thread in threads:
        thread.start()
    for it in range(3000):
        logger.set_global_it(it)
        logger.add_scalar("x", float(it))
        if it % 500 == 0:
            logger.flush()
    logger.close()
    done.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    reader.refresh()
    final = reader.scalars("x")[0].tolist()
    assert final == list(range(3000))
    assert all(steps == final[:len(steps)] for steps in seen)  # never a gap or a duplicate


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_a_tag_logged_twice_in_one_iteration_keeps_both_in_order(tmp_path: Path,
                                                                  use_protobuf: bool) -> None:
    with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
        for it in range(50):
            logger.set_global_it(it)
            logger.add_scalar("x", it)
            logger.add_scalar("y", -it)
            logger.add_scalar("x", it + 0.5)
    reader = LogReader(tmp_path)
    assert reader.load_scalars("x") == [p for it in range(50) for p in ((it, it), (it, it + 0.5))]
    assert reader.load_scalars("y") == [(it, -it) for it in range(50)]
