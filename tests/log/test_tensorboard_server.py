"""``tensorboard --logdir`` shows pyexp's scalars, with both of TensorBoard's loaders.

TensorBoard's default loader is a Rust data server that only shows DT_FLOAT scalar tensors; the
Python loader (``--load_fast=false``) reads other dtypes too. pyexp's scalars must show in both,
and still read back in pyexp at full float64 precision.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pyexp.log import Logger, LogReader
from pyexp_testing import clean_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("load_fast", ["true", "false"], ids=["rust-loader", "python-loader"])
def test_tensorboard_server_shows_the_scalars(tmp_path: Path, load_fast: str) -> None:
    with Logger(tmp_path / "run1", tensorboard=True) as logger:
        for it in range(20):
            logger.set_global_it(it)
            logger.add_scalar("loss", 0.3 + it)
            logger.add_scalar("train/acc", it / 32)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host", "127.0.0.1",
         "--port", str(port), f"--load_fast={load_fast}", "--reload_interval", "1"],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/data/plugin/scalars"
    try:
        deadline = time.monotonic() + 90
        tags: object = None
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                tags = get_json(f"{base}/tags")
            except OSError:
                tags = None
            if tags and set(tags.get("run1", {})) == {"loss", "train/acc"}:  # type: ignore[union-attr]
                break
            time.sleep(0.5)
        assert tags and set(tags["run1"]) == {"loss", "train/acc"}, tags  # type: ignore[index]
        points = get_json(f"{base}/scalars?run=run1&tag=loss")
        assert [step for _, step, _ in points] == list(range(20))  # type: ignore[union-attr]
        assert [value for _, _, value in points] == pytest.approx(  # type: ignore[union-attr]
            [0.3 + i for i in range(20)], rel=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # TensorBoard sees float32; pyexp reads the same file back exactly.
    assert LogReader(tmp_path / "run1").load_scalars("loss") == [(i, 0.3 + i) for i in range(20)]
