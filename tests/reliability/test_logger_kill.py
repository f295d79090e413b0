"""A logging process killed with -9 mid-write: every complete record reads back, and a new
Logger on the same folder appends after them (the torn tail does not hide what follows)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyexp_testing import clean_env, wait_until

RESUMED = 10**6  # first iteration of the second writer

WRITER = r'''
import os, sys
from pyexp.log import Logger

parent = os.getppid()

log_dir, fmt, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
logger = Logger(log_dir, use_protobuf=fmt == "pb")
for i in range(start, stop):
    logger.set_global_it(i)
    logger.add_scalar("loss", i * 0.5)
    logger.add_scalar("acc", float(i % 1000))
    if i % 10 == 0:
        logger.add_text("note", f"text {i} " + "z" * 3000)  # big records: kills land mid-record
    if i % 2000 == 0:
        logger.flush()
        print("FLUSHED", i, flush=True)
        if os.getppid() != parent:
            os._exit(1)  # the test's worker was killed: log no further
logger.close()
print("CLOSED", flush=True)
'''


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_writer_outlives_its_test():
    """A test stopped early (a failure, ``-x``) must not leave a writer logging for 10⁹ steps."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _write(tmp_path: Path, log_dir: Path, fmt: str, start: int, stop: int) -> tuple[subprocess.Popen, Path]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / f"writer-{start}.out"
    proc = subprocess.Popen([sys.executable, str(script), str(log_dir), fmt, str(start), str(stop)],
                            stdout=open(out, "w"), stderr=subprocess.STDOUT, env=clean_env(),
                            stdin=subprocess.DEVNULL)
    _STARTED.append(proc)
    return proc, out


def _flushed(out: Path) -> int:
    lines = [l for l in out.read_text().splitlines() if l.startswith("FLUSHED")]
    return int(lines[-1].split()[1]) if lines else -1


def _torn(log_dir: Path, fmt: str) -> bool:
    """Whether the kill left a partial record at the end (for the record; either case must work)."""
    if fmt == "pb":
        from pyexp.log.logger import _whole_records_end

        return _whole_records_end(log_dir / "events.pb") is not None
    return any(not p.read_bytes().endswith(b"\n") for p in log_dir.glob("*.jsonl") if p.stat().st_size)


def _check_prefix(log_dir: Path, start: int) -> dict[str, list]:
    """Everything readable is right and starts at ``start`` without gaps; returns it per tag."""
    from pyexp.log import LogReader

    reader = LogReader(log_dir)
    loss = reader.load_scalars("loss")
    acc = reader.load_scalars("acc")
    note = reader.load_text("note")
    for tag, series in (("loss", loss), ("acc", acc)):
        for first in (start, RESUMED):  # the killed writer's part, then the resumed writer's
            its = [it for it, _ in series if (it >= RESUMED) == (first == RESUMED)]
            assert its == list(range(first, first + len(its))), f"{tag}: gap or disorder"
    assert all(v == it * 0.5 for it, v in loss), "a scalar read back wrong"
    assert all(v == float(it % 1000) for it, v in acc), "a scalar read back wrong"
    assert all(t == f"text {it} " + "z" * 3000 for it, t in note), "a text read back wrong"
    return {"loss": loss, "acc": acc, "note": note}


@pytest.mark.parametrize("fmt,seed", [("pb", 1), ("pb", 2), ("pb", 3), ("jsonl", 4), ("jsonl", 5)])
def test_killed_logger_leaves_every_complete_record_readable(tmp_path, fmt, seed):
    rng = random.Random(seed)
    log_dir = tmp_path / "run"
    proc, out = _write(tmp_path, log_dir, fmt, 0, 10**9)
    target = rng.randint(0, 3) * 2000
    wait_until(lambda: _flushed(out) >= target or proc.poll() is not None, 60, "the writer to flush")
    time.sleep(rng.uniform(0, 0.3))  # the kill lands anywhere in the writer thread's cycle
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    flushed = _flushed(out)
    torn = _torn(log_dir, fmt)
    before = _check_prefix(log_dir, 0)
    # Everything flushed before the kill is there.
    assert len(before["loss"]) > flushed and len(before["acc"]) > flushed

    # A new logger on the same folder appends after the last complete record.
    proc, out = _write(tmp_path, log_dir, fmt, RESUMED, RESUMED + 500)
    assert proc.wait(timeout=60) == 0, out.read_text()
    after = _check_prefix(log_dir, 0)
    for tag in ("loss", "acc", "note"):
        assert [p for p in after[tag] if p[0] < RESUMED] == before[tag], tag
        step = 10 if tag == "note" else 1
        assert [it for it, _ in after[tag] if it >= RESUMED] == list(range(RESUMED, RESUMED + 500, step)), tag
    print(f"FAULTS logger {fmt} seed={seed}: 1 kill, torn tail={torn}, {len(before['loss'])} iterations kept")


@pytest.mark.parametrize("fmt", ["pb", "jsonl"])
def test_every_cut_point_of_a_log_reads_back_its_complete_records(tmp_path, fmt):
    """What a kill leaves is a prefix of the bytes written: try many cut points directly."""
    import shutil

    from pyexp.log import LogReader

    full = tmp_path / "full"
    proc, out = _write(tmp_path, full, fmt, 0, 300)
    assert proc.wait(timeout=60) == 0, out.read_text()
    whole = _check_prefix(full, 0)
    files = ["events.pb"] if fmt == "pb" else ["scalars.jsonl", "text.jsonl"]
    rng = random.Random(7)
    for n in range(40):
        name = rng.choice(files)
        size = (full / name).stat().st_size
        cut = rng.randrange(size)
        case = tmp_path / f"cut{n}"
        shutil.copytree(full, case)
        with open(case / name, "r+b") as f:
            f.truncate(cut)
        got = _check_prefix(case, 0)
        for tag in whole:
            assert got[tag] == whole[tag][: len(got[tag])], (name, cut, tag)
        if fmt == "pb":
            from pyexp.log.logger import _whole_records_end

            boundary = _whole_records_end(case / name)
            if boundary is not None:  # the same records as a file cut right after the last whole one
                shutil.copytree(full, tmp_path / f"b{n}")
                with open(tmp_path / f"b{n}" / name, "r+b") as f:
                    f.truncate(boundary)
                assert _check_prefix(tmp_path / f"b{n}", 0) == got
        else:
            # Every complete line of the cut file was read.
            lines = (case / name).read_bytes().split(b"\n")[:-1]
            tag_of = "note" if name == "text.jsonl" else None
            read = len(got["note"]) if tag_of else len(got["loss"]) + len(got["acc"])
            assert read == len([l for l in lines if l.strip()]), (name, cut)
        if n % 6:
            continue
        # A new logger appends after the torn tail and both parts read back.
        proc, out = _write(tmp_path, case, fmt, RESUMED, RESUMED + 20)
        assert proc.wait(timeout=60) == 0, out.read_text()
        again = _check_prefix(case, 0)
        assert [p for p in again["loss"] if p[0] < RESUMED] == got["loss"]
        assert len([p for p in again["loss"] if p[0] >= RESUMED]) == 20
        LogReader(case).iterations  # noqa: B018 - must not raise
