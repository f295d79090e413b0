"""The part of the Ray executor that runs on a Ray worker: one config, in a fresh child interpreter.

The Ray task never unpickles the user's task itself (that would import user modules into a
long-lived, reused Ray worker); it starts ``python -m pyexp.executors._ray_child`` in its own
session, streams the child's output back to the driver, and reports the child's exit status,
so a segfault reads "killed by SIGSEGV (signal 11)" and only that config fails.

When the driver's config folder is not visible from this node (a remote cluster), the child
writes into a scratch folder instead and everything it wrote is shipped back as a tarball.
Nothing here imports ray: the driver wraps these functions with ``ray.remote``.
"""

from __future__ import annotations

import io
import os
import pickle
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from ..store import OUTCOME_FILE, RESULT_FILE

#: File the driver writes into each config folder; seeing its token means we share its filesystem.
PROBE_FILE = ".pyexp-ray-probe"
#: Set to 1 in a worker's environment to behave as if the driver's folders were not visible.
FORCE_REMOTE_ENV = "PYEXP_RAY_FORCE_REMOTE"
#: Seconds a cancelled child gets between SIGTERM and SIGKILL.
STOP_GRACE = 2.0
#: Output is sent to the driver at least this often while a config runs (streaming mode).
STREAM_INTERVAL = 0.25
_MAX_CHUNK = 1 << 20


def run_streaming(header: dict[str, Any], payload: bytes) -> Iterator[dict[str, Any]]:
    """Ray generator task: yields ``{"log": bytes}`` items while running, then the final report."""
    yield from _run(header, payload, STREAM_INTERVAL)


def run_collected(header: dict[str, Any], payload: bytes) -> list[dict[str, Any]]:
    """Plain Ray task for Ray Client, which cannot stream: the same items, all at the end."""
    log: list[bytes] = []
    items: list[dict[str, Any]] = []
    for item in _run(header, payload, float("inf")):
        if "log" in item:
            log.append(item["log"])
        else:
            items.append(item)
    return [{"log": b"".join(log)}, *items]


def _run(header: dict[str, Any], payload: bytes, interval: float) -> Iterator[dict[str, Any]]:
    scratch = Path(tempfile.mkdtemp(prefix="pyexp-ray-"))
    proc: subprocess.Popen | None = None
    try:
        shared = _sees_driver_folder(header)
        out = Path(header["out"]) if shared else scratch / "out"
        seeded: dict[str, tuple[int, int]] = {}
        if not shared:
            # What an earlier attempt left in the config folder (checkpoints, partial artifacts).
            out.mkdir()
            unpack(header.get("seed"), out)
            seeded = {rel: _stamp(path) for rel, path in _files(out)}
        cwd, sys_path = _local_paths(header)
        child_header = {"sys_path": sys_path, "cwd": cwd, "out": None if shared else str(out),
                        "folder": str(out), "parent": os.getpid()}
        task_file = scratch / "task.pkl"
        task_file.write_bytes(pickle.dumps(child_header) + payload)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyexp.executors._ray_child", str(task_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )
        yield from _pump(proc, interval)
        final: dict[str, Any] = {"returncode": proc.returncode, "shared": shared}
        if not shared:
            # Sent apart from the other files: the driver publishes them in order, outcome last.
            for key, name in (("result", RESULT_FILE), ("outcome", OUTCOME_FILE)):
                path = out / name
                final[key] = path.read_bytes() if path.exists() else None
            final["files"] = pack(out, skip={RESULT_FILE, OUTCOME_FILE}, unchanged=seeded)
        yield final
    finally:
        # Reached on success, on ray.cancel (KeyboardInterrupt) and when the generator is closed.
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    pass
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _sees_driver_folder(header: dict[str, Any]) -> bool:
    if os.environ.get(FORCE_REMOTE_ENV) == "1":
        return False
    try:
        return (Path(header["out"]) / PROBE_FILE).read_text() == header["token"]
    except (OSError, UnicodeDecodeError):
        return False


def _local_paths(header: dict[str, Any]) -> tuple[str, list[str]]:
    """The driver's cwd and sys.path as seen from here.

    Paths inside the synced working_dir (``source_dir`` on the driver) map into this worker's
    copy of it, which Ray made our cwd; the rest are kept when they exist on this node.
    """
    here = os.getcwd()
    source = header.get("source_dir")

    def mapped(path: str) -> str:
        if source and path and (path == source or path.startswith(source.rstrip(os.sep) + os.sep)):
            return os.path.normpath(os.path.join(here, os.path.relpath(path, source)))
        return path

    cwd = mapped(header["cwd"])
    if not os.path.isdir(cwd):
        cwd = here
    sys_path: list[str] = []
    for entry in [*map(mapped, header["sys_path"]), *sys.path]:
        # Setuptools' editable installs put a path-hook marker (not a real path) on sys.path.
        if entry not in sys_path and (entry == "" or entry.endswith(".__path_hook__") or os.path.exists(entry)):
            sys_path.append(entry)
    if source and here not in sys_path:
        sys_path.insert(0, here)
    return cwd, sys_path


def _pump(proc: subprocess.Popen, interval: float) -> Iterator[dict[str, Any]]:
    """Yield the child's output in batches until it exits and its pipe closes."""
    chunks: "queue.SimpleQueue[bytes | None]" = queue.SimpleQueue()
    stream: Any = proc.stdout  # a pipe: Popen was given stdout=PIPE

    def read() -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            chunks.put(chunk)
        chunks.put(None)

    threading.Thread(target=read, daemon=True, name="pyexp-ray-pump").start()
    pending: list[bytes] = []
    size = 0
    deadline = time.monotonic() + interval
    while True:
        try:
            chunk = chunks.get(timeout=min(max(0.0, deadline - time.monotonic()), 0.5))
        except queue.Empty:
            chunk = b""
            if proc.poll() is not None:
                # The child is gone but something it started still holds the pipe open.
                _signal_group(proc.pid, signal.SIGKILL)
        if chunk is None:
            break
        if chunk:
            pending.append(chunk)
            size += len(chunk)
        now = time.monotonic()
        if pending and (size >= _MAX_CHUNK or now >= deadline):
            yield {"log": b"".join(pending)}
            pending, size = [], 0
        if now >= deadline:
            deadline = now + interval
    if pending:
        yield {"log": b"".join(pending)}
    proc.wait()
    stream.close()


def pack(folder: Path, skip: set[str], unchanged: dict[str, tuple[int, int]] | None = None) -> bytes | None:
    """A tarball of the files under ``folder`` (None if there are none).

    ``skip`` names top-level entries to leave out (and temp files of atomic writes);
    ``unchanged`` maps relative paths to the (size, mtime) they had when they were unpacked
    here, so only what the config wrote or changed travels back.
    """
    files = []
    for rel, path in _files(folder):
        top = rel.split("/", 1)[0]
        if top in skip or (top.startswith(".") and top.endswith(".tmp")):
            continue
        if unchanged is not None and unchanged.get(rel) == _stamp(path):
            continue
        files.append((rel, path))
    if not files:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for rel, path in files:
            tar.add(path, arcname=rel, recursive=False)
    return buf.getvalue()


def unpack(data: bytes | None, folder: Path) -> None:
    """Extract a :func:`pack` tarball into ``folder`` (nothing outside it)."""
    if not data:
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # Python < 3.10.12 has no extraction filters; our own worker wrote this tarball
            tar.extractall(folder)  # noqa: S202


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    if not folder.is_dir():
        return
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(folder).as_posix(), path


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _signal_group(pid: int, signum: int) -> None:
    """Signal the child's whole process group (it leads one: ``start_new_session``)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(pid, signum)
        else:  # Windows: no process groups to signal; terminate the child itself
            os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        pass
