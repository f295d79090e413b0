"""Logs in the earlier pyexp's per-iteration layout read back through LogReader (issue 19).

The layout is made by hand, as the earlier Logger wrote it:
``<iteration>/scalars.json`` = ``{tag: value}``, ``<iteration>/text.json`` = ``{tag: text}``,
``<iteration>/figures/<tag>.cpkl`` + ``<tag>.meta``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cloudpickle
import pytest

from pyexp.log import Logger, LogReader, TagNotFoundError


def write_earlier_log(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / ".pyexp").touch()
    for it in (0, 1, 2, 10):
        folder = run / str(it)
        folder.mkdir()
        (folder / "scalars.json").write_text(json.dumps({"loss": 1.0 / (it + 1), "acc": it * 0.1}))
    (run / "0" / "text.json").write_text(json.dumps({"sample_output": "Hello", "note": "n0"}))
    (run / "10" / "text.json").write_text(json.dumps({"sample_output": "Bye"}))
    for it in (0, 2):
        figures = run / str(it) / "figures"
        figures.mkdir()
        (figures / "curve.cpkl").write_bytes(cloudpickle.dumps({"points": [it, it + 1]}))
        (figures / "curve.meta").write_text(json.dumps({"interactive": it == 0}))


def test_earlier_layout_reads_back(tmp_path: Path) -> None:
    run = tmp_path / "my_experiment" / "run1"
    write_earlier_log(run)
    reader = LogReader(tmp_path / "my_experiment")
    assert reader.runs == ["run1"] and not reader.is_run
    log = reader.get_run("run1")
    assert log.is_run
    assert log.iterations == [0, 1, 2, 10]
    assert log.scalar_tags == {"loss", "acc"}
    assert log.text_tags == {"sample_output", "note"}
    assert log.figure_tags == {"curve"}
    assert log.load_scalars("loss") == [(it, 1.0 / (it + 1)) for it in (0, 1, 2, 10)]
    steps, values = log.scalars("acc")
    assert steps.tolist() == [0, 1, 2, 10] and values.tolist() == [0.0, 0.1, 0.2, 1.0]
    assert log.load_text("sample_output") == [(0, "Hello"), (10, "Bye")]
    assert log.figure_iterations("curve") == [0, 2]
    assert log.load_figure("curve", iteration=2) == {"points": [2, 3]}
    assert log.figure_interactive("curve", 0) is True and log.figure_interactive("curve", 2) is False
    assert log["loss"] == (10, 1.0 / 11)
    assert log["sample_output"] == (10, "Bye")
    assert log["curve"] == (2, {"points": [2, 3]})
    times = log.scalar_wall_times("loss")  # the files hold no stamp: their modification time
    assert len(times) == 4 and all(t > 1e9 for t in times)
    with pytest.raises(TagNotFoundError, match="'nope'"):
        log["nope"]


def test_earlier_layout_with_malformed_files_warns_and_reads_the_rest(tmp_path: Path) -> None:
    write_earlier_log(tmp_path)
    (tmp_path / "1" / "scalars.json").write_text("{half")
    (tmp_path / "2" / "text.json").write_text(json.dumps({"bad": "x"}))
    (tmp_path / "2" / "scalars.json").write_text(json.dumps({"loss": "not a number"}))
    with pytest.warns(UserWarning):
        reader = LogReader(tmp_path)
        assert reader.load_scalars("loss") == [(0, 1.0), (10, 1.0 / 11)]
    assert reader.load_text("bad") == [(2, "x")]


def test_a_new_logger_never_writes_the_earlier_layout(tmp_path: Path) -> None:
    for use_protobuf in (True, False):
        run = tmp_path / str(use_protobuf)
        with Logger(run, use_protobuf=use_protobuf) as logger:
            for it in range(3):
                logger.set_global_it(it)
                logger.add_scalar("loss", it)
                logger.add_text("t", "x")
                logger.add_figure("f", {"x": it})
        assert not list(run.glob("*/scalars.json")) and not list(run.glob("*/text.json"))
        assert LogReader(run).load_scalars("loss") == [(0, 0.0), (1, 1.0), (2, 2.0)]
