"""Crash-truncated, corrupt and still-growing logs: every whole record reads back."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from pyexp.log import Logger, LogReader
from pyexp.log import events_pb2


def small_log(run: Path) -> bytes:
    with Logger(run) as logger:
        for it in range(4):
            logger.set_global_it(it)
            logger.add_scalar("loss", it + 0.5)
            logger.add_scalar("acc", it)
            logger.flush()  # several records, one per iteration
        logger.add_text("note", "hi")
        logger.add_checkpoint("state", [1, 2])
        logger.set_global_it(7)
        logger.add_scalar("loss", 9.0)
    return (run / "events.pb").read_bytes()


def log_folder(run: Path, data: bytes = b"", name: str = "events.pb") -> Path:
    """A run folder (with its marker) whose log file ``name`` holds ``data``; returns that file."""
    run.mkdir()
    (run / ".pyexp").write_text("")
    log = run / name
    log.write_bytes(data)
    return log


def records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record, independently of pyexp's reader."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, pos + 16 + length))
        pos += 16 + length
    return out


def expected_content(data: bytes, spans: list[tuple[int, int]]) -> dict:
    """What a correct reader returns for the given whole records, via the generated classes."""
    content: dict = {"scalars": {}, "text": {}, "checkpoints": {}}
    for start, end in spans:
        event = events_pb2.Event.FromString(data[start + 12:end - 4])
        kind = event.WhichOneof("what")
        if kind == "summary":
            for v in event.summary.value:
                if v.tensor.double_val:
                    content["scalars"].setdefault(v.tag, []).append((event.step,
                                                                     v.tensor.double_val[0]))
                else:
                    content["text"].setdefault(v.tag, []).append(
                        (event.step, v.tensor.string_val[0].decode()))
        elif kind == "checkpoint":
            content["checkpoints"].setdefault(event.checkpoint.tag, []).append(event.step)
    return content


def read_content(reader: LogReader) -> dict:
    return {"scalars": {t: reader.load_scalars(t) for t in reader.scalar_tags},
            "text": {t: reader.load_text(t) for t in reader.text_tags},
            "checkpoints": {t: reader.checkpoint_iterations(t) for t in reader.checkpoint_tags}}


def test_truncation_at_every_byte_reads_every_whole_record(tmp_path: Path) -> None:
    data = small_log(tmp_path / "full")
    spans = records(data)
    assert len(spans) >= 8
    cut = log_folder(tmp_path / "cut")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a truncated tail is not corruption: no warning
        for end in range(len(data) + 1):
            cut.write_bytes(data[:end])
            whole = [s for s in spans if s[1] <= end]
            assert read_content(LogReader(cut.parent)) == expected_content(data, whole), end


def test_refresh_resumes_at_every_byte(tmp_path: Path) -> None:
    data = small_log(tmp_path / "full")
    spans = records(data)
    events = log_folder(tmp_path / "live")
    reader = LogReader(events.parent)
    assert reader.scalar_tags == set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cut in range(1, len(data) + 1):
            with open(events, "ab") as f:
                f.write(data[cut - 1:cut])
            completes = any(end == cut for _, end in spans)
            assert reader.refresh() == completes, cut
    assert read_content(reader) == expected_content(data, spans)
    assert reader.refresh() is False


@pytest.mark.parametrize("where", ["data", "length"])
def test_corrupt_record_in_the_middle_is_skipped_with_a_warning(tmp_path: Path, where: str) -> None:
    data = bytearray(small_log(tmp_path))
    spans = records(bytes(data))
    start, end = spans[3]  # an iteration's scalars
    data[start + (20 if where == "data" else 2)] ^= 0xFF
    (tmp_path / "events.pb").write_bytes(bytes(data))
    with pytest.warns(UserWarning) as caught:
        reader = LogReader(tmp_path)
        content = read_content(reader)
    messages = [str(w.message) for w in caught]
    assert any(f"offset {start}" in m and "events.pb" in m for m in messages), messages
    good = spans[:3] + spans[4:]
    assert content == expected_content(bytes(data), good)
    assert reader["loss"] == (7, 9.0)  # records after the damage are read


def test_jsonl_truncation_and_corrupt_lines(tmp_path: Path) -> None:
    with Logger(tmp_path / "full", use_protobuf=False) as logger:
        for it in range(6):
            logger.set_global_it(it)
            logger.add_scalar("x", it)
    data = (tmp_path / "full" / "scalars.jsonl").read_bytes()
    log = log_folder(tmp_path / "cut", name="scalars.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cut in range(len(data) + 1):
            log.write_bytes(data[:cut])
            reader = LogReader(log.parent)
            whole = data[:cut].count(b"\n")
            got = reader.load_scalars("x") if whole else []
            assert got == [(i, float(i)) for i in range(whole)], cut
    lines = data.splitlines(keepends=True)
    lines[2] = b'{"it": 2, "tag": "x", "val\n'
    log.write_bytes(b"".join(lines))
    offset = len(lines[0]) + len(lines[1])
    with pytest.warns(UserWarning, match=f"scalars.jsonl: skipped a corrupt record at byte offset {offset}"):
        assert [it for it, _ in LogReader(log.parent).load_scalars("x")] == [0, 1, 3, 4, 5]


@pytest.mark.parametrize("use_protobuf", [True, False], ids=["protobuf", "jsonl"])
def test_reader_follows_a_writer_in_another_process(tmp_path: Path, use_protobuf: bool) -> None:
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import pathlib, time
        from pyexp.log import Logger
        lg = Logger({str(tmp_path / 'run')!r}, use_protobuf={use_protobuf})
        for i in range(3000):
            lg.set_global_it(i)
            lg.add_scalar("x", i)
            if i == 999:
                lg.flush()
                pathlib.Path({str(go)!r}).write_text("flushed")
                time.sleep(0.3)
            if i % 50 == 0:
                time.sleep(0.005)
        lg.close()
    """)
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not go.exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    reader = LogReader(tmp_path / "run")
    seen = reader.load_scalars("x")
    assert len(seen) >= 1000  # everything before flush() is visible
    sizes = [len(seen)]
    while child.poll() is None or reader.refresh():
        assert time.monotonic() < deadline
        reader.refresh()
        seen = reader.load_scalars("x")
        assert seen == [(i, float(i)) for i in range(len(seen))]  # always a prefix
        sizes.append(len(seen))
        time.sleep(0.02)
    assert child.returncode == 0
    reader.refresh()
    assert reader.load_scalars("x") == [(i, float(i)) for i in range(3000)]
    assert len(set(sizes)) > 1  # it really grew while we watched


def test_flush_makes_everything_visible_in_process(tmp_path: Path) -> None:
    logger = Logger(tmp_path)
    reader = LogReader(tmp_path)
    for batch in range(5):
        for i in range(batch * 200, (batch + 1) * 200):
            logger.set_global_it(i)
            logger.add_scalar("x", i)
            logger.add_text("t", str(i))
        logger.flush()
        reader.refresh()
        assert reader.load_scalars("x") == [(i, float(i)) for i in range((batch + 1) * 200)]
        assert reader["t"] == ((batch + 1) * 200 - 1, str((batch + 1) * 200 - 1))
    logger.close()
    assert reader.refresh() is False


def test_a_crashed_tail_is_cut_before_appending(tmp_path: Path) -> None:
    data = small_log(tmp_path)
    (tmp_path / "events.pb").write_bytes(data[:-7])  # crash in the middle of the last record
    with Logger(tmp_path) as logger:
        logger.set_global_it(20)
        logger.add_scalar("loss", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LogReader(tmp_path).load_scalars("loss")[-2:] == [(3, 3.5), (20, 1.0)]


def test_a_crashed_jsonl_line_is_cut_before_appending(tmp_path: Path) -> None:
    with Logger(tmp_path, use_protobuf=False) as logger:
        for it in range(3):
            logger.set_global_it(it)
            logger.add_scalar("x", it)
            logger.add_text("t", "a longer line of text")
    for name in ("scalars.jsonl", "text.jsonl"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[:-9])  # torn last line
    with Logger(tmp_path, use_protobuf=False) as logger:
        logger.set_global_it(5)
        logger.add_scalar("x", 5)
        logger.add_text("t", "after")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader = LogReader(tmp_path)
        assert reader.load_scalars("x") == [(0, 0.0), (1, 1.0), (5, 5.0)]
        assert [it for it, _ in reader.load_text("t")] == [0, 1, 5]


@pytest.mark.parametrize("use_protobuf", [True, False], ids=["protobuf", "jsonl"])
def test_refresh_picks_up_new_checkpoints_and_text(tmp_path: Path, use_protobuf: bool) -> None:
    logger = Logger(tmp_path, use_protobuf=use_protobuf)
    logger.add_checkpoint("state", 0)
    logger.flush()
    reader = LogReader(tmp_path)
    assert reader.checkpoint_iterations("state") == [0]
    assert reader.refresh() is False
    for it in (1, 2):
        logger.set_global_it(it)
        logger.add_checkpoint("state", it)
        logger.add_text("note", f"n{it}")
        logger.flush()
        assert reader.refresh() is True
        assert reader.checkpoint_iterations("state") == list(range(it + 1))
        assert reader["state"] == (it, it) and reader["note"] == (it, f"n{it}")
    logger.close()


def test_jsonl_line_with_a_bad_escape_is_skipped(tmp_path: Path) -> None:
    (tmp_path / ".pyexp").write_text("")
    good = '{"it": %d, "tag": "x", "value": %d.5, "wall_time": 1700000000.25}\n'
    lines = [good % (0, 0), '{"it": 1, "tag": "x\\q", "value": 1.5, "wall_time": 1700000000.25}\n',
             good % (2, 2)]
    (tmp_path / "scalars.jsonl").write_text("".join(lines))
    with pytest.warns(UserWarning, match=f"byte offset {len(lines[0])}"):
        reader = LogReader(tmp_path)
        assert reader.load_scalars("x", with_time=True) == [(0, 0.5, 1700000000.25),
                                                          (2, 2.5, 1700000000.25)]


def test_garbage_events_with_valid_checksums_never_raise(tmp_path: Path) -> None:
    import random

    from pyexp.log import _framing

    rng = random.Random(5)
    real = _framing.encode_event(1.0, 300, [_framing.ScalarEncoder().encode("x", 1.0)])
    payloads = [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(300)]
    payloads += [real[:cut] for cut in range(len(real))]  # every prefix of a real event
    payloads += [b"\x09" + p for p in payloads[:100]]
    data = b"".join(_framing.frame(p) for p in payloads) + _framing.frame(real)
    (tmp_path / ".pyexp").write_text("")
    (tmp_path / "events.pb").write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undecodable events warn; they must not raise
        reader = LogReader(tmp_path)
        assert reader.load_scalars("x")[-1] == (300, 1.0)


def long_log(run: Path) -> bytes:
    """Thousands of same-length events alternating between two layouts (the reader takes such
    runs at once), steps whose varint grows from one to three bytes, other events between."""
    with Logger(run) as logger:
        for it in [*range(3000), *range(20_000, 20_500)]:
            logger.set_global_it(it)
            logger.add_scalar("loss", it + 0.25)
            logger.add_scalar("acc1" if it % 2 else "acc2", -it * 1e-3)
            if it % 700 == 0:
                logger.add_text("note", f"at {it}")
    return (run / "events.pb").read_bytes()


@pytest.mark.parametrize("damage", ["none", "data", "length"])
def test_long_runs_of_alike_events_read_exactly_around_damage(tmp_path: Path, damage: str) -> None:
    data = bytearray(long_log(tmp_path / "full"))
    spans = records(bytes(data))
    assert len(spans) > 3400
    bad = [1000, 1001, 2500, 3300] if damage != "none" else []
    for i in bad:
        start, _ = spans[i]
        data[start + (30 if damage == "data" else 2)] ^= 0xFF
    run = log_folder(tmp_path / "damaged", bytes(data)).parent
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content = read_content(LogReader(run))
    if damage == "length":  # the loop searches the next good header: adjacent damage warns once
        assert 1 <= len(caught) <= len(bad)
    else:
        assert len(caught) == len(bad)  # one warning per damaged record, none for the others
    good = [s for k, s in enumerate(spans) if k not in bad]
    assert content == expected_content(bytes(data), good)


def test_long_runs_of_alike_events_resume_at_every_cut(tmp_path: Path) -> None:
    data = long_log(tmp_path / "full")
    spans = records(data)
    events = log_folder(tmp_path / "live")
    reader = LogReader(events.parent)
    cuts = sorted({len(data), *range(0, len(data), 7919), spans[2000][0] + 5, spans[2000][1], spans[3100][0]})
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cut in cuts:
            with open(events, "ab") as f:
                f.write(data[done:cut])
            done = cut
            reader.refresh()
            whole = [s for s in spans if s[1] <= cut]
            assert read_content(reader) == expected_content(data, whole), cut
