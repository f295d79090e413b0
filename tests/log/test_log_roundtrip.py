"""Logger -> LogReader round trips in both formats, through the public API."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pyexp.errors import LogError
from pyexp.log import Logger, LogReader

FORMATS = [pytest.param(True, id="protobuf"), pytest.param(False, id="jsonl")]


def write_sample(log_dir: Path, use_protobuf: bool) -> None:
    with Logger(log_dir, use_protobuf=use_protobuf) as logger:
        for it in range(5):
            logger.set_global_it(it)
            logger.add_scalar("loss", 1.0 / (it + 1))
            logger.add_scalar("train/acc", it * 0.25)
            logger.add_text("sample", f"text at {it}: ünïcode ✓\nsecond line")
            if it % 2 == 0:
                logger.add_checkpoint("model", {"it": it, "weights": [it] * 3})
        logger.set_global_it(10)
        logger.add_scalar("loss", float("nan"))
        logger.add_scalar("big", 1e300)
        logger.add_scalar("int", 7)


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_every_api_round_trips(tmp_path: Path, use_protobuf: bool) -> None:
    run = tmp_path / "run"
    write_sample(run, use_protobuf)
    reader = LogReader(run)
    assert reader.is_run and reader.path == run
    assert (run / ".pyexp").exists()
    assert reader.iterations == [0, 1, 2, 3, 4, 10]
    assert reader.scalar_tags == {"loss", "train/acc", "big", "int"}
    assert reader.text_tags == {"sample"}
    assert reader.checkpoint_tags == {"model"}
    assert reader.figure_tags == set()

    loss = reader.load_scalars("loss")
    assert loss[:5] == [(it, 1.0 / (it + 1)) for it in range(5)]  # float64 in both formats
    assert loss[5][0] == 10 and math.isnan(loss[5][1])
    assert reader.load_scalars("train/acc") == [(it, it * 0.25) for it in range(5)]
    assert reader["int"] == (10, 7.0)
    assert reader["big"][1] == 1e300
    timed = reader.load_scalars("train/acc", with_time=True)
    assert [t[:2] for t in timed] == [(it, it * 0.25) for it in range(5)]
    assert all(abs(t[2] - timed[0][2]) < 60 for t in timed) and timed[0][2] > 1e9

    texts = reader.load_text("sample")
    assert texts == [(it, f"text at {it}: ünïcode ✓\nsecond line") for it in range(5)]
    assert reader["sample"] == (4, "text at 4: ünïcode ✓\nsecond line")

    assert reader.checkpoint_iterations("model") == [0, 2, 4]
    assert reader.load_checkpoint("model", iteration=2) == {"it": 2, "weights": [2, 2, 2]}
    assert reader.load_checkpoints("model") == [(it, {"it": it, "weights": [it] * 3})
                                                 for it in (0, 2, 4)]
    assert reader["model"] == (4, {"it": 4, "weights": [4, 4, 4]})

    with pytest.raises(KeyError, match="no tag 'nope'"):
        reader["nope"]
    with pytest.raises(LogError, match="not logged at iteration 1"):
        reader.load_checkpoint("model", iteration=1)
    with pytest.raises(LogError, match="scalar tag 'sample'"):
        reader.load_scalars("sample")


def test_jsonl_files_follow_the_spec_tree(tmp_path: Path) -> None:
    write_sample(tmp_path, use_protobuf=False)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert names == [".pyexp", "0/checkpoints/model.cpkl", "2/checkpoints/model.cpkl",
                     "4/checkpoints/model.cpkl", "scalars.jsonl", "text.jsonl"]
    first = json.loads((tmp_path / "scalars.jsonl").read_text().splitlines()[0])
    assert {k: first[k] for k in ("it", "tag", "value")} == {"it": 0, "tag": "loss", "value": 1.0}
    text = json.loads((tmp_path / "text.jsonl").read_text().splitlines()[0])
    assert text["it"] == 0 and text["tag"] == "sample" and text["text"].startswith("text at 0")


def test_protobuf_is_a_single_events_file(tmp_path: Path) -> None:
    write_sample(tmp_path, use_protobuf=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pyexp", "events.pb"]


def test_runs_are_discovered_recursively(tmp_path: Path) -> None:
    for name, fmt in [("exp/2024-01-01_00-00-00/cfg-abc123", True),
                      ("exp/2024-01-01_00-00-00/cfg-def456", False), ("other", True)]:
        with Logger(tmp_path / name, use_protobuf=fmt) as logger:
            logger.add_scalar("x", 1.0)
            logger.add_figure  # noqa: B018 - attribute exists
    (tmp_path / "exp" / "not-a-run").mkdir()
    parent = LogReader(tmp_path)
    assert not parent.is_run
    assert parent.runs == ["exp/2024-01-01_00-00-00/cfg-abc123",
                           "exp/2024-01-01_00-00-00/cfg-def456", "other"]
    run = parent.get_run("exp/2024-01-01_00-00-00/cfg-def456")
    assert run.is_run and run.load_scalars("x") == [(0, 1.0)]
    assert LogReader(tmp_path / "exp").runs == ["2024-01-01_00-00-00/cfg-abc123",
                                                "2024-01-01_00-00-00/cfg-def456"]
    with pytest.raises(LogError, match="not a pyexp run"):
        parent.get_run("exp/not-a-run")
    with pytest.raises(LogError, match="no such folder"):
        LogReader(tmp_path / "missing")


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_logging_after_close_raises(tmp_path: Path, use_protobuf: bool) -> None:
    logger = Logger(tmp_path, use_protobuf=use_protobuf)
    logger.add_scalar("a", 1)
    logger.close()
    logger.close()  # idempotent
    for call in (lambda: logger.add_scalar("a", 2), lambda: logger.add_text("t", "x"),
                 lambda: logger.add_checkpoint("c", 1), lambda: logger.add_figure("f", object())):
        with pytest.raises(LogError, match="closed"):
            call()
    assert LogReader(tmp_path).load_scalars("a") == [(0, 1.0)]


def test_bad_arguments_raise_log_errors(tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        with pytest.raises(LogError, match="must be a number"):
            logger.add_scalar("a", "high")
        with pytest.raises(LogError, match="tag must be a non-empty str"):
            logger.add_scalar(3, 1.0)  # type: ignore[arg-type]
        with pytest.raises(LogError, match="must be a str"):
            logger.add_text("t", 3)  # type: ignore[arg-type]
        with pytest.raises(LogError, match="must be an int"):
            logger.set_global_it(1.5)  # type: ignore[arg-type]
        with pytest.raises(LogError, match="non-empty"):
            logger.add_checkpoint("", 1)
        with pytest.raises(LogError, match="cannot be pickled"):
            logger.add_checkpoint("lock", __import__("threading").Lock())
    with pytest.raises(LogError, match="tensorboard=True needs use_protobuf=True"):
        Logger(tmp_path / "x", use_protobuf=False, tensorboard=True)


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_atexit_writes_what_was_not_flushed(tmp_path: Path, use_protobuf: bool) -> None:
    code = (f"from pyexp.log import Logger\nlg = Logger({str(tmp_path)!r}, "
            f"use_protobuf={use_protobuf})\nfor i in range(1000):\n    lg.set_global_it(i)\n"
            "    lg.add_scalar('x', i)\nlg.add_text('done', 'yes')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    reader = LogReader(tmp_path)
    assert reader.load_scalars("x") == [(i, float(i)) for i in range(1000)]
    assert reader["done"] == (999, "yes")


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_reopening_a_run_appends(tmp_path: Path, use_protobuf: bool) -> None:
    for start in (0, 3):
        with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
            for it in range(start, start + 3):
                logger.set_global_it(it)
                logger.add_scalar("x", it)
    assert LogReader(tmp_path).load_scalars("x") == [(i, float(i)) for i in range(6)]


def test_one_event_per_iteration(tmp_path: Path) -> None:
    from pyexp.log import events_pb2

    with Logger(tmp_path) as logger:
        for it in range(50):
            logger.set_global_it(it)
            for k in range(20):
                logger.add_scalar(f"m{k}", k)
    data = (tmp_path / "events.pb").read_bytes()
    steps, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        event = events_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
        if event.WhichOneof("what") == "summary":
            steps.append(event.step)
            assert [v.tag for v in event.summary.value] == [f"m{k}" for k in range(20)]
        pos += 16 + length
    assert steps == list(range(50))


def test_import_is_light() -> None:
    code = ("import sys, pyexp.log\n"
            "heavy = [m for m in ('google.protobuf', 'cloudpickle', 'matplotlib', 'google_crc32c',"
            " 'pyexp.log.events_pb2') if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_events_with_same_size_but_different_tags(tmp_path: Path) -> None:
    # Events of equal byte length whose tags differ must not be decoded with each other's layout.
    with Logger(tmp_path) as logger:
        for it in range(40):
            logger.set_global_it(it)
            logger.add_scalar("aa" if it % 2 else "bb", it)
            logger.add_scalar("cc", -it)
            logger.flush()
        for it in range(100, 140):  # one scalar per event
            logger.set_global_it(it)
            logger.add_scalar("aa" if it % 2 else "bb", it)
    reader = LogReader(tmp_path)
    assert reader.load_scalars("aa") == [(i, float(i)) for i in [*range(1, 40, 2), *range(101, 140, 2)]]
    assert reader.load_scalars("bb") == [(i, float(i)) for i in [*range(0, 40, 2), *range(100, 140, 2)]]
    assert reader.load_scalars("cc") == [(i, float(-i)) for i in range(40)]


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_refresh_notices_a_run_started_over(tmp_path: Path, use_protobuf: bool) -> None:
    import shutil

    with Logger(tmp_path / "run", use_protobuf=use_protobuf) as logger:
        for it in range(100):
            logger.set_global_it(it)
            logger.add_scalar("x", it)
    reader = LogReader(tmp_path / "run")
    assert len(reader.load_scalars("x")) == 100
    shutil.rmtree(tmp_path / "run")
    with Logger(tmp_path / "run", use_protobuf=use_protobuf) as logger:
        for it in range(200):  # larger than before: the inode tells it is a new file
            logger.set_global_it(it)
            logger.add_scalar("y", 1)
    assert reader.refresh() is True
    assert reader.scalar_tags == {"y"}


HOSTILE_TAGS = ["a/b/c", "..", ".hidden", "with space", "ünï/cödé ✓", "x" * 150, "%2F", "q'; echo foo",
                "new\nline"]


@pytest.mark.parametrize("use_protobuf", FORMATS)
def test_hostile_tags_and_negative_iterations(tmp_path: Path, use_protobuf: bool) -> None:
    with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
        for it in (-5, 0, 2**40):
            logger.set_global_it(it)
            for k, tag in enumerate(HOSTILE_TAGS):
                logger.add_scalar(tag, k)
                logger.add_text(tag, f"{tag}@{it}")
                logger.add_checkpoint(tag, (tag, it))
            logger.add_text("empty", "")
    reader = LogReader(tmp_path)
    assert reader.iterations == [-5, 0, 2**40]
    assert reader.scalar_tags == set(HOSTILE_TAGS)
    assert reader.checkpoint_tags == set(HOSTILE_TAGS)
    for k, tag in enumerate(HOSTILE_TAGS):
        assert reader.load_scalars(tag) == [(-5, k), (0, k), (2**40, k)]
        assert reader.load_text(tag) == [(it, f"{tag}@{it}") for it in (-5, 0, 2**40)]
        assert reader.load_checkpoints(tag) == [(it, (tag, it)) for it in (-5, 0, 2**40)]
    assert reader["empty"] == (2**40, "")
    # Nothing escaped the log folder.
    assert all(tmp_path in p.resolve().parents for p in tmp_path.rglob("*"))


def test_refresh_on_a_parent_folder_finds_new_runs(tmp_path: Path) -> None:
    parent = LogReader(tmp_path)
    assert parent.runs == [] and parent.refresh() is False
    with Logger(tmp_path / "a") as logger:
        logger.add_scalar("x", 1)
    assert parent.refresh() is True and parent.runs == ["a"]
    assert parent.refresh() is False
    (tmp_path / "b" / "run").mkdir(parents=True)
    run = LogReader(tmp_path / "b" / "run")
    assert run.refresh() is False and not run.is_run  # not a run yet
    with Logger(tmp_path / "b" / "run") as logger:
        logger.add_scalar("y", 2)
    assert run.refresh() is True and run["y"] == (0, 2.0)
    assert parent.refresh() is True and parent.runs == ["a", "b/run"]
