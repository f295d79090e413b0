"""Post-process protoc's events_pb2.py so it imports with protobuf runtimes >= 4.21.

protoc >= 26 emits ``runtime_version.ValidateProtobufRuntimeVersion(...)``, which refuses any
runtime older than the generator and does not exist before protobuf 5.26. The rest of the
generated module only needs ``descriptor_pool`` and ``internal.builder`` (protobuf >= 3.20), so
the guard is the only thing standing between the module and older runtimes.

Run from the repository root after protoc (see the top of events.proto).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TARGET = Path(__file__).with_name("events_pb2.py")


def strip(text: str) -> str:
    """Return ``text`` without the runtime-version import and call."""
    text = re.sub(r"^from google\.protobuf import runtime_version as _runtime_version\n", "", text,
                  flags=re.M)
    text = re.sub(r"^_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n", "",
                  text, flags=re.M)
    if "_runtime_version" in text:
        raise SystemExit(f"{TARGET}: could not strip the runtime version guard; update _strip_guard.py")
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET
    path.write_text(strip(path.read_text()))
