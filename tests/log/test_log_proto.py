"""events_pb2.py matches events.proto and stays importable by older protobuf runtimes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyexp.log

LOG_DIR = Path(pyexp.log.__file__).parent
REPO = LOG_DIR.parents[1]


def descriptor_line(text: str) -> str:
    return next(line for line in text.splitlines() if "AddSerializedFile(" in line)


def test_generated_module_has_no_runtime_version_guard() -> None:
    source = (LOG_DIR / "events_pb2.py").read_text()
    assert "runtime_version" not in source  # the guard would reject protobuf < the generator


def test_generated_module_matches_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    (tmp_path / "pyexp" / "log").mkdir(parents=True)
    (tmp_path / "pyexp" / "log" / "events.proto").write_bytes((LOG_DIR / "events.proto").read_bytes())
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.",
                    "pyexp/log/events.proto"], cwd=tmp_path, check=True, timeout=60)
    generated = tmp_path / "pyexp" / "log" / "events_pb2.py"
    subprocess.run([sys.executable, str(LOG_DIR / "_strip_guard.py"), str(generated)], check=True,
                   timeout=60)
    assert "runtime_version" not in generated.read_text()
    assert descriptor_line(generated.read_text()) == \
        descriptor_line((LOG_DIR / "events_pb2.py").read_text()), "regenerate: see events.proto"


def test_field_numbers_match_tensorboard() -> None:
    from pyexp.log import events_pb2 as pb

    def numbers(message) -> dict[str, int]:
        return {f.name: f.number for f in message.DESCRIPTOR.fields}

    assert {k: v for k, v in numbers(pb.Event).items() if v < 100} == {
        "wall_time": 1, "step": 2, "file_version": 3, "summary": 5}
    assert min(v for k, v in numbers(pb.Event).items() if k not in
               ("wall_time", "step", "file_version", "summary")) >= 100
    assert numbers(pb.Summary.Value) == {"tag": 1, "metadata": 9, "simple_value": 2, "tensor": 8}
    assert numbers(pb.TensorProto) == {"dtype": 1, "tensor_shape": 2, "float_val": 5,
                                       "double_val": 6, "string_val": 8}
    assert numbers(pb.SummaryMetadata) == {"plugin_data": 1, "display_name": 2,
                                           "summary_description": 3, "data_class": 4}
    assert re.search(r"python -m grpc_tools.protoc .*_strip_guard.py",
                     (LOG_DIR / "events.proto").read_text())


def test_crc32c_fallback_matches_google_crc32c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyexp.log import _framing
    from pyexp.log import LogReader, Logger

    assert _framing._crc32c_python(b"123456789") == 0xE3069283  # the CRC-32C check value
    google_crc32c = pytest.importorskip("google_crc32c")
    for data in (b"", b"a", bytes(range(256)) * 3):
        assert _framing._crc32c_python(data) == google_crc32c.value(data)
    monkeypatch.setattr(_framing, "_crc_impl", _framing._crc32c_python)
    with Logger(tmp_path) as logger:
        for it in range(20):
            logger.set_global_it(it)
            logger.add_scalar("x", it)
    assert LogReader(tmp_path).load_scalars("x") == [(i, float(i)) for i in range(20)]


def add_scalar(summary, tag: str, value: float, first: bool) -> None:
    """A scalar as pyexp writes it, built with the generated classes."""
    v = summary.value.add(tag=tag)
    v.tensor.dtype = 1  # DT_FLOAT, which TensorBoard's default loader needs
    v.tensor.float_val.append(value if abs(value) < 3.5e38 else float("inf"))
    v.tensor.double_val.append(value)  # the exact value
    if first:  # the scalars plugin's metadata, once per tag
        v.metadata.plugin_data.plugin_name = "scalars"
        v.metadata.data_class = 1


@pytest.mark.parametrize("step", [0, 1, 127, 128, 16383, 16384, 2**21, 2**40, -5])
def test_hand_encoded_events_equal_protobuf_serialization(step: int) -> None:
    from pyexp.log import _framing
    from pyexp.log import events_pb2 as pb

    tags = ["loss", "ü/" + "x" * 200, "a"]
    for first in (True, False):  # metadata with the first value of a tag only
        encoder = _framing.ScalarEncoder()
        if not first:
            for tag in [*tags, "big"]:
                encoder.encode(tag, 0.0)
        fields = [encoder.encode(t, k + 0.1) for k, t in enumerate(tags)] + [
            _framing.encode_text("note", "hé\nllo"), encoder.encode("big", 1e300)]
        ref = pb.Event(wall_time=1234.5, step=step)
        for k, tag in enumerate(tags):
            add_scalar(ref.summary, tag, k + 0.1, first)
        text = ref.summary.value.add(tag="note")
        text.tensor.dtype = 7
        text.tensor.string_val.append("hé\nllo".encode())
        text.metadata.plugin_data.plugin_name = "text"
        add_scalar(ref.summary, "big", 1e300, first)
        assert _framing.encode_event(1234.5, step, fields) == ref.SerializeToString()
        for _ in range(2):  # the second time with the cached frame header
            assert _framing.event_record(1234.5, step, fields) == \
                _framing.frame(ref.SerializeToString())


@pytest.mark.parametrize("step", [0, 3, 2**35])
def test_hand_encoded_records_equal_protobuf_serialization(step: int) -> None:
    from pyexp.log import _framing
    from pyexp.log import events_pb2 as pb

    for interactive, png in [(True, b"\x89PNG..."), (False, b"")]:
        ref = pb.Event(wall_time=2.5, step=step, figure=pb.Figure(
            tag="fig/ü", interactive=interactive, png=png, pickle=b"\x80\x05x" * 100))
        assert _framing.encode_figure(2.5, step, "fig/ü", interactive, png, b"\x80\x05x" * 100) \
            == ref.SerializeToString()
    ref = pb.Event(wall_time=2.5, step=step, checkpoint=pb.Checkpoint(tag="m", pickle=b"p" * 300))
    assert _framing.encode_checkpoint(2.5, step, "m", b"p" * 300) == ref.SerializeToString()
    ref = pb.Event(wall_time=2.5, run_metadata=pb.RunMetadata(
        format_version=1, pyexp_version="0.1.0", hostname="host", pid=4242))
    assert _framing.encode_run_metadata(2.5, 1, "0.1.0", "host", 4242) == ref.SerializeToString()
    assert _framing.encode_file_version(2.5) == \
        pb.Event(wall_time=2.5, file_version="brain.Event:2").SerializeToString()


def test_writing_does_not_import_protobuf(tmp_path: Path) -> None:
    code = (f"import sys\nfrom pyexp.log import Logger\nwith Logger({str(tmp_path)!r}) as lg:\n"
            "    lg.add_scalar('x', 1)\n    lg.add_text('t', 'hi')\n    lg.add_checkpoint('c', [1])\n"
            "print([m for m in ('google.protobuf', 'pyexp.log.events_pb2') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert out.strip() == "[]"


def summaries(path: Path) -> list[tuple[int, list[tuple[str, bool]]]]:
    """(step, [(tag, has metadata)]) of every summary event of an events file."""
    import struct

    from pyexp.log import events_pb2 as pb

    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        event = pb.Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 16 + length
        if event.WhichOneof("what") == "summary":
            out.append((event.step, [(v.tag, v.HasField("metadata")) for v in event.summary.value]))
    return out


def test_each_tags_first_written_value_carries_the_plugin_metadata(tmp_path: Path) -> None:
    from pyexp.log._pbwrite import ProtobufSink

    sink = ProtobufSink(tmp_path / "events.pb")
    sink.open()
    sink.write([(0, "x", 1.0, 1.0)], False)  # held back: iteration 0 may get more values
    sink.write([(0, "y", 2.0, 1.0), (1, "x", 3.0, 2.0)], False)
    sink.write([(1, "z", 4.0, 2.0)], True)
    sink.close()
    assert summaries(tmp_path / "events.pb") == [
        (0, [("x", True), ("y", True)]), (1, [("x", False), ("z", True)])]


def test_metadata_survives_a_writer_wake_up_mid_iteration(tmp_path: Path) -> None:
    import time

    from pyexp.log import Logger

    with Logger(tmp_path) as logger:
        logger.add_scalar("x", 1.0)
        time.sleep(0.6)  # the writer wakes up (every 0.25 s) while iteration 0 is still open
        logger.set_global_it(1)
        logger.add_scalar("x", 2.0)
    first_of_x = [has for _, values in summaries(tmp_path / "events.pb")
                  for tag, has in values if tag == "x"]
    assert first_of_x == [True, False]
