"""The viewer serves its app and assets, never a file outside its folder (plain HTTP requests)."""

from __future__ import annotations

import http.client
import socket
import uuid
from pathlib import Path

import pytest

pytest.importorskip("panel")

HOSTILE = [
    "/../secret.txt",
    "/../../secret.txt",
    "/static/../secret.txt",
    "/static/../../../../../../{secret}",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{secret}",
    "/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{secret}",
    "/static/extensions/panel/../../../../../../../../{secret}",
    "/static/extensions/panel/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{secret}",
    "/static/extensions/panel/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f{secret}",
    "/static//{secret}",
    "/static/{secret}",
    "/{secret}",
    "//{secret}",
    "/static/extensions/panel/....//....//....//....//....//....//{secret}",
    "/static/%252e%252e/%252e%252e/%252e%252e/%252e%252e/{secret}",
    "/static/..\\..\\..\\..\\..\\..\\{secret}",
    "/static/.%00./.%00./{secret}",
    "/secret.txt",
    "/run/../../secret.txt",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)  # the raw path, not normalised
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_viewer_refuses_paths_outside_its_folder(tmp_path: Path):
    from pyexp.log import Logger
    from pyexp.viewer import start_background

    token = f"TOP-SECRET-{uuid.uuid4()}"
    (tmp_path / "secret.txt").write_text(token)
    logs = tmp_path / "logs"
    with Logger(logs / "run") as logger:
        logger.add_scalar("loss", 1.0)
    port = _free_port()
    proc = start_background(logs, port=port)
    try:
        status, body = _get(port, "/")
        assert status == 200 and b"<html" in body.lower()  # the controls: the app and its assets
        assert _get(port, "/static/extensions/panel/css/widgets.css")[0] == 200
        secret = str(tmp_path / "secret.txt").lstrip("/")
        for template in HOSTILE:
            path = template.format(secret=secret)
            status, body = _get(port, path)
            assert token.encode() not in body, f"{path} leaked a file outside the viewer's folder"
            assert status >= 400, (path, status, body[:200])
        for path in ("/static/../../../../../../../../etc/passwd", "/static/%2e%2e/" * 8 + "etc/passwd"):
            status, body = _get(port, path)
            assert b"root:" not in body, path
    finally:
        proc.terminate()
        proc.wait(timeout=10)
