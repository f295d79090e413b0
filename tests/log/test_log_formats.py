"""What is on disk (issue 13): JSONL lines as the spec shows them with ``ts``, exact float64 in
events.pb, and logs written before those changes still read back."""

from __future__ import annotations

import json
import math
import struct
import time
from pathlib import Path

import pytest

from pyexp.log import Logger, LogReader

EXACT = [0.3, 0.1 + 0.2, 1 / 3, 2.0**53, -0.0, 5e-324, 1.7976931348623157e308, 1e300, -1e-300]


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_jsonl_lines_are_the_specs_keys_plus_ts(tmp_path: Path) -> None:
    before = time.time()
    with Logger(tmp_path, use_protobuf=False) as logger:
        logger.set_global_it(3)
        logger.add_scalar("train/loss", 0.5)
        logger.add_text("note", "hi")
        logger.add_figure("fig", {"not": "a matplotlib figure"})
    scalar = json.loads((tmp_path / "scalars.jsonl").read_text())
    text = json.loads((tmp_path / "text.jsonl").read_text())
    assert list(scalar) == ["it", "tag", "value", "ts"]
    assert scalar["it"] == 3 and scalar["tag"] == "train/loss" and scalar["value"] == 0.5
    assert list(text) == ["it", "tag", "text", "ts"] and text["text"] == "hi"
    meta = json.loads((tmp_path / "3" / "figures" / "fig.meta").read_text())
    assert "ts" in meta and "wall_time" not in meta
    for stamp in (scalar["ts"], text["ts"], meta["ts"]):
        assert before - 1 < stamp < time.time() + 1


@pytest.mark.parametrize("use_protobuf", [True, False], ids=["protobuf", "jsonl"])
def test_scalars_keep_full_float64_precision(tmp_path: Path, use_protobuf: bool) -> None:
    with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
        for it, value in enumerate(EXACT):
            logger.set_global_it(it)
            logger.add_scalar("x", value)
            logger.add_scalar("counter", 2**53)  # an int step counter
    reader = LogReader(tmp_path)
    got = reader.load_scalars("x")
    assert got == list(enumerate(EXACT))
    assert math.copysign(1, got[4][1]) == -1  # -0.0 keeps its sign
    assert reader.load_scalars("counter")[-1] == (len(EXACT) - 1, 2**53)
    assert reader["x"] == (len(EXACT) - 1, -1e-300)


def test_non_finite_values_read_back(tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        for it, value in enumerate([math.inf, -math.inf, math.nan, 1e39, -1e39]):
            logger.set_global_it(it)
            logger.add_scalar("x", value)
    values = [v for _, v in LogReader(tmp_path).load_scalars("x")]
    assert values[:2] == [math.inf, -math.inf] and math.isnan(values[2])
    assert values[3:] == [1e39, -1e39]  # beyond float32: TensorBoard shows inf, pyexp the value


def write_old_events_pb(run: Path, steps: range) -> list[tuple[int, float]]:
    """events.pb as pyexp wrote it before float64: float32 simple_value, no plugin metadata."""
    from pyexp.log import _framing
    from pyexp.log import events_pb2 as pb

    run.mkdir(parents=True, exist_ok=True)
    (run / ".pyexp").write_text('{"format": "protobuf", "version": 1}\n')
    records = [pb.Event(wall_time=1700000000.0, file_version="brain.Event:2")]
    for step in steps:
        event = pb.Event(wall_time=1700000000.0 + step, step=step)
        event.summary.value.add(tag="loss", simple_value=1.0 / (step + 1))
        event.summary.value.add(tag="acc", simple_value=step * 0.1)
        if step == 2:
            text = event.summary.value.add(tag="note")
            text.tensor.dtype = 7
            text.tensor.string_val.append(b"old text")
            text.metadata.plugin_data.plugin_name = "text"
        records.append(event)
    (run / "events.pb").write_bytes(b"".join(_framing.frame(e.SerializeToString())
                                             for e in records))
    return [(step, f32(1.0 / (step + 1))) for step in steps]


def test_events_written_before_float64_still_read(tmp_path: Path) -> None:
    expected = write_old_events_pb(tmp_path, range(300))
    reader = LogReader(tmp_path)
    assert reader.scalar_tags == {"loss", "acc"}
    assert reader.load_scalars("loss") == expected
    assert reader.load_scalars("acc")[10] == (10, f32(1.0))
    assert reader.load_text("note") == [(2, "old text")]
    assert reader.load_scalars("loss", with_time=True)[5] == (5, f32(1 / 6), 1700000005.0)
    # A new Logger appends float64 tensors to the old file: both read back, in order.
    with Logger(tmp_path) as logger:
        logger.set_global_it(300)
        logger.add_scalar("loss", 0.3)
    assert reader.refresh() is True
    assert reader.load_scalars("loss") == [*expected, (300, 0.3)]


def test_jsonl_stamps_ts_wall_time_or_none(tmp_path: Path) -> None:
    (tmp_path / ".pyexp").touch()  # the original pyexp's marker is empty
    lines = [
        json.dumps({"it": 0, "tag": "loss", "value": 0.5, "ts": 1700000000.5}),  # the original
        '{"it": 1, "tag": "loss", "value": 0.25, "wall_time": 1700000001.0}',  # pyexp before
        '{"it": 2, "tag": "loss", "value": 5}',  # the spec's line, no stamp
        '{"value": 0.125, "it": 3, "tag": "loss", "ts": 1700000003}',  # other key order
    ]
    (tmp_path / "scalars.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "text.jsonl").write_text(
        json.dumps({"it": 0, "tag": "t", "text": "a", "ts": 1700000000.5}) + "\n"
        + json.dumps({"it": 1, "tag": "t", "text": "b", "wall_time": 1700000001.0}) + "\n")
    reader = LogReader(tmp_path)
    timed = reader.load_scalars("loss", with_time=True)
    assert [t[:2] for t in timed] == [(0, 0.5), (1, 0.25), (2, 5.0), (3, 0.125)]
    assert [t[2] for t in timed[:2]] == [1700000000.5, 1700000001.0] and math.isnan(timed[2][2])
    assert timed[3][2] == 1700000003.0
    assert reader.load_text("t", with_time=True) == [(0, "a", 1700000000.5),
                                                      (1, "b", 1700000001.0)]
    assert reader.start_time == 1700000000.5


def test_jsonl_in_the_original_writers_format_reads_fast_path_and_all(tmp_path: Path) -> None:
    (tmp_path / ".pyexp").touch()
    values = [0.1 * i for i in range(50)] + [math.inf, -math.inf, 7]
    with open(tmp_path / "scalars.jsonl", "w") as f:
        for it, value in enumerate(values):
            f.write(json.dumps({"it": it, "tag": "a/b", "value": value, "ts": 1.7e9 + it}) + "\n")
    steps, got = LogReader(tmp_path).scalars("a/b")
    assert steps.tolist() == list(range(len(values))) and got.tolist() == values


@pytest.mark.parametrize("use_protobuf", [True, False], ids=["protobuf", "jsonl"])
def test_large_and_negative_iterations_read_back_exactly(tmp_path: Path, use_protobuf: bool) -> None:
    its = [2**53 + 1, -3, 2**62, 0]
    with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
        for it in its:
            logger.set_global_it(it)
            logger.add_scalar("x", 1.5)
            logger.add_scalar("y", 2.5)
    reader = LogReader(tmp_path)
    assert [step for step, _ in reader.load_scalars("x")] == its
    assert reader.scalars("y")[0].tolist() == its
    assert reader.iterations == sorted(its)


def test_long_tags_read_back(tmp_path: Path) -> None:
    long = "ü/" + "x" * 300  # its Summary.Value needs two-byte lengths
    with Logger(tmp_path) as logger:
        for it in range(200):
            logger.set_global_it(it)
            logger.add_scalar(long, it * 0.1)
            logger.add_scalar("s", -it)
    reader = LogReader(tmp_path)
    assert reader.load_scalars(long) == [(it, it * 0.1) for it in range(200)]
    assert reader.load_scalars("s") == [(it, -it) for it in range(200)]


def test_iterations_beyond_64_bits_are_refused_and_skipped(tmp_path: Path) -> None:
    from pyexp.errors import LogError

    with Logger(tmp_path / "w") as logger, pytest.raises(LogError, match="64 bits"):
        logger.set_global_it(2**63)
    (tmp_path / ".pyexp").touch()
    (tmp_path / "scalars.jsonl").write_text(
        '{"it": %d, "tag": "x", "value": 1.0, "ts": 1.0}\n' % 2**70
        + '{"it": 1, "tag": "x", "value": 2.0, "ts": 1.0}\n')
    with pytest.warns(UserWarning, match="64 bits"):
        assert LogReader(tmp_path).load_scalars("x") == [(1, 2.0)]
