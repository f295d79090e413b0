"""Figures (pickle + PNG) in both formats, and TensorBoard reading pyexp's events file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyexp.log import Logger, LogReader

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("use_protobuf", [True, False], ids=["protobuf", "jsonl"])
def test_figures_round_trip_with_png(tmp_path: Path, use_protobuf: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Logger(tmp_path, use_protobuf=use_protobuf) as logger:
        for it in (0, 25, 50):
            logger.set_global_it(it)
            fig, ax = plt.subplots()
            ax.plot([0, 1, 2], [it, it + 1, it + 4], label="curve")
            logger.add_figure("curve/train", fig, interactive=False)
            ax.lines[0].set_ydata([-1, -1, -1])  # changed after logging: must not show up
            fig3d = plt.figure()
            fig3d.add_subplot(111, projection="3d").plot([0, 1], [0, 1], [0, it])
            logger.add_figure("landscape", fig3d)
            plt.close("all")
    reader = LogReader(tmp_path)
    assert reader.figure_tags == {"curve/train", "landscape"}
    assert reader.figure_iterations("curve/train") == [0, 25, 50]
    assert reader.iterations == [0, 25, 50]
    fig = reader.load_figure("curve/train", iteration=25)
    assert list(fig.axes[0].lines[0].get_ydata()) == [25, 26, 29]
    it, last = reader["landscape"]
    assert it == 50 and last.axes[0].name == "3d"
    png = reader.load_figure_png("curve/train", 50)
    assert png is not None and png.startswith(PNG_MAGIC) and len(png) > 1000
    assert reader.figure_interactive("curve/train", 0) is False
    assert reader.figure_interactive("landscape", 0) is True
    if not use_protobuf:
        names = sorted(p.name for p in (tmp_path / "25" / "figures").iterdir())
        assert names == ["curve%2Ftrain.cpkl", "curve%2Ftrain.meta", "landscape.cpkl",
                         "landscape.meta"]


def test_objects_without_savefig_are_stored_without_png(tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        logger.add_figure("data", {"x": [1, 2]})
    reader = LogReader(tmp_path)
    assert reader.load_figure("data") == {"x": [1, 2]}
    assert reader.load_figure_png("data") is None


def accumulate(path: Path):
    """TensorBoard's own reader, the one ``tensorboard --logdir`` uses without its Rust server."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def write_for_tensorboard(run: Path, tensorboard: bool) -> None:
    with Logger(run, tensorboard=tensorboard) as logger:
        for it in range(30):
            logger.set_global_it(it)
            logger.add_scalar("loss", 1.0 / (it + 1))
            logger.add_scalar("train/acc", it / 32)
            if it % 10 == 0:
                logger.add_text("sample", f"output at {it}")
        logger.add_checkpoint("state", {"skipped": "by tensorboard"})


def check_tensorboard_view(run: Path) -> None:
    from tensorboard.util.tensor_util import make_ndarray

    acc = accumulate(run)
    tags = acc.Tags()
    assert {"loss", "train/acc", "sample"} <= set(tags["tensors"])
    for tag in ("loss", "train/acc"):
        metadata = acc.SummaryMetadata(tag)
        assert metadata.plugin_data.plugin_name == "scalars" and metadata.data_class == 1
    loss = acc.Tensors("loss")
    assert [e.step for e in loss] == list(range(30))
    values = [make_ndarray(e.tensor_proto).item() for e in loss]
    assert values == pytest.approx([1.0 / (i + 1) for i in range(30)], rel=1e-6)
    assert make_ndarray(acc.Tensors("train/acc")[15].tensor_proto).item() == 15 / 32
    texts = acc.Tensors("sample")
    assert [(e.step, e.tensor_proto.string_val[0].decode()) for e in texts] == [
        (i, f"output at {i}") for i in (0, 10, 20)]
    assert acc.SummaryMetadata("sample").plugin_data.plugin_name == "text"


def test_tensorboard_reads_scalars_and_text(tmp_path: Path) -> None:
    write_for_tensorboard(tmp_path, tensorboard=True)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    check_tensorboard_view(tmp_path)
    assert LogReader(tmp_path).load_scalars("loss")[0] == (0, 1.0)


def test_tensorboard_helper_links_existing_runs(tmp_path: Path) -> None:
    run = tmp_path / "exp" / "cfg-1"
    write_for_tensorboard(run, tensorboard=False)
    assert not list(run.glob("events.out.tfevents.*"))
    for _ in range(2):  # idempotent
        out = subprocess.run([sys.executable, "-m", "pyexp.log.tensorboard", str(tmp_path)],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        assert "1 run(s) ready" in out
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    check_tensorboard_view(run)
    assert LogReader(tmp_path).runs == ["exp/cfg-1"]


def test_tensorboardx_files_read_back_with_logreader(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for it in range(5):
        writer.add_scalar("loss", it * 2.0, it)
    writer.add_text("note", "hello", 3)
    writer.close()
    events = next(tmp_path.glob("events.out.tfevents.*"))
    events.rename(tmp_path / "events.pb")
    reader = LogReader(tmp_path)
    assert reader.load_scalars("loss") == [(i, i * 2.0) for i in range(5)]
    assert reader.load_text("note/text_summary") == [(3, "hello")]  # tensorboardX names it so
