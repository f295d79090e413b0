"""The pyexp web viewer: scalars, text, figures and a table of every config below a folder, live.

``python -m pyexp.viewer DIR`` / :func:`run` serve it in the foreground; :func:`start_background`
starts it as a child process (what ``--viewer`` uses). Importing this package is cheap: panel,
bokeh, plotly and matplotlib are imported only when a server starts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import MissingExtraError, PyexpError

__all__ = ["run", "start_background"]

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"


def _require_panel() -> None:
    try:
        import panel  # noqa: F401
    except ImportError:
        raise MissingExtraError("panel", "viewer", "The pyexp viewer") from None


def _check_dir(log_dir: str | os.PathLike[str]) -> Path:
    path = Path(log_dir).expanduser()
    if not path.is_dir():
        raise PyexpError(f"viewer: {log_dir} is not a folder; pass the folder holding your runs "
                         "(e.g. out/my_experiment)")
    return path.resolve()


def _origins(host: str, port: int) -> list[str]:
    if host in ("127.0.0.1", "localhost", "::1"):
        return [f"127.0.0.1:{port}", f"localhost:{port}"]
    return ["*"]  # bound to a public interface on purpose: any host name may reach it


def run(log_dir: str | os.PathLike[str], port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
        refresh_seconds: float = 1.0) -> None:
    """Serve the viewer for the runs below ``log_dir`` until interrupted (blocking).

    Args:
        log_dir: Folder with runs (searched recursively, e.g. ``out/my_experiment``).
        port: TCP port to listen on.
        host: Interface to bind; the default keeps the viewer private to this machine (it
            unpickles logged figures, so do not expose it to untrusted networks).
        refresh_seconds: How often new data and new runs are picked up.

    Raises:
        PyexpError: ``log_dir`` is not a folder.
        MissingExtraError: panel is not installed.
    """
    root = _check_dir(log_dir)
    _require_panel()
    import panel as pn

    from .app import create_app, prepare

    prepare(root)

    print(f"pyexp viewer: http://{host}:{port}/  (serving {root}; Ctrl-C to stop)", flush=True)
    pn.serve(lambda: create_app(root, refresh_seconds), port=port, address=host,
             websocket_origin=_origins(host, port), show=False, title="pyexp viewer",
             verbose=False)


def _port_open(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    try:
        with socket.create_connection((probe, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_background(log_dir: str | os.PathLike[str], port: int = DEFAULT_PORT,
                     host: str = DEFAULT_HOST, timeout: float = 60.0) -> subprocess.Popen:
    """Start ``python -m pyexp.viewer`` as a child process; return once it accepts connections.

    Args:
        log_dir: Folder with runs (it may still be empty: runs appear live).
        port: TCP port; must be free.
        host: Interface to bind.
        timeout: Seconds to wait for the server to come up.

    Returns:
        The child process; ``terminate()`` it to stop the viewer.

    Raises:
        PyexpError: the port is taken, or the viewer exited or did not come up in time.
        MissingExtraError: panel is not installed.
    """
    root = _check_dir(log_dir)
    _require_panel()
    if _port_open(host, port):
        raise PyexpError(f"viewer: port {port} is already in use; pick another port "
                         "(--viewer-port / viewer_port=...) or stop what is listening there")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyexp.viewer", str(root), "--port", str(port), "--host", host],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise PyexpError(f"viewer on port {port} exited with code {proc.returncode}: "
                             + " | ".join(tail))
        if _port_open(host, port):
            return proc
        time.sleep(0.05)
    proc.terminate()
    proc.wait(5)
    raise PyexpError(f"viewer did not start listening on port {port} within {timeout:.0f}s")
