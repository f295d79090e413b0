"""The default executor: each config in a child forked from a fresh interpreter (a fork-server).

One fork-server per run (see :mod:`pyexp.executors._forkserver`) imports the experiment's
module once; every config then starts as a fork of it, in its own process group, with the
same isolation and error records as a fresh interpreter per config, at the cost of a fork.
Where forking is impossible (Windows) or unsafe (macOS after the imports started threads;
CUDA initialised while importing) the run uses :class:`~pyexp.executors.spawn.SpawnExecutor`
instead, one interpreter per config, and says why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Sequence

from .. import store
from ..errors import ConfigError
from ..outcome import Outcome, describe_exception, describe_signal
from . import _forkserver as fs
from ._by_name import task_pickler
from ._process import ProcessJob, start_tee
from .base import Executor, Job, prepare
from .task import Task

#: Seconds the fork-server gets to import the experiment's module before the run gives up on it.
BOOT_TIMEOUT = 600.0

_LAUNCH = "import sys; from pyexp.executors._forkserver import main; sys.exit(main(int(sys.argv[1])))"


class ServerDied(Exception):
    """The fork-server went away while starting or running a config."""


def _say(text: str) -> None:
    try:
        print(f"pyexp: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _main_module() -> tuple[str, str] | None:
    """How the fork-server finds this process's main module (as multiprocessing's spawn does)."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        # ``python -m pkg`` runs pkg/__main__.py: its main-only code is unguarded by design.
        return None if name == "__main__" or name.endswith(".__main__") else ("name", name)
    path = getattr(main, "__file__", None)
    if not path or os.path.basename(path) in ("ipython", "ipykernel_launcher.py"):
        return None  # an interactive session: functions travel by value
    return ("path", os.path.abspath(path))


class _Server:
    """pyexp's handle on one running fork-server."""

    def __init__(self, task: Task, preload: Sequence[str]):
        parent_end, child_end = socket.socketpair()
        modules = [m for m in (getattr(task.fn, "__module__", None),) if m and m != "__main__"]
        if task.with_logger:
            modules.append("pyexp.log")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # log.out holds everything printed up to a crash
        cmd = [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", _LAUNCH, str(child_end.fileno())]
        try:
            # Its own session: the terminal's Ctrl-C is for pyexp, which stops the configs itself.
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=task.cwd, env=env, pass_fds=(child_end.fileno(),), start_new_session=True,
            )
        except OSError as exc:
            parent_end.close()
            raise ServerDied(describe_exception(exc)) from exc
        finally:
            child_end.close()
        self.ctrl = parent_end
        self.pickler: Any = None
        try:
            fs.send_msg(parent_end, {"sys_path": task.sys_path, "cwd": task.cwd, "argv": list(sys.argv),
                                     "main": _main_module(), "modules": modules, "preload": list(preload)})
            parent_end.settimeout(BOOT_TIMEOUT)
            self.info: dict[str, Any] = fs.recv_msg(parent_end)
            parent_end.settimeout(None)
        except (OSError, EOFError) as exc:
            self.close()
            raise ServerDied(self.death()) from exc
        except BaseException:  # Ctrl-C while it imports: no fork-server may outlive the run
            self.close(timeout=0)
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def death(self) -> str:
        """Why the server is gone, as far as we can tell."""
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        return describe_signal(-code) if code < 0 else f"exit code {code}"

    def unsafe_reason(self) -> str | None:
        """Why forking this server would be unsafe, or None."""
        if self.info.get("cuda"):
            return "importing the experiment's module initialised CUDA, which a forked child cannot use"
        if sys.platform == "darwin" and self.info.get("threads", 1) > 1:
            return "importing the experiment's module started threads, and macOS cannot fork those safely"
        return None

    # -- per config ------------------------------------------------------------------------

    def start(self, task: Task, out_fd: int) -> tuple[socket.socket, int]:
        """Fork a child for ``task``; returns the config's socket and the child's pid."""
        payload = self._pickle(task)
        mine, theirs = socket.socketpair()
        fds = [theirs.fileno(), out_fd] + ([task.claim_fd] if task.claim_fd is not None else [])
        try:
            socket.send_fds(self.ctrl, [fs.REQUEST.pack(b"T", task.claim_fd is not None)], fds)
            theirs.close()
            mine.sendall(fs.LENGTH.pack(len(payload)) + payload)
            head = fs.recv_exact(mine, fs.NUMBER.size)
        except OSError as exc:
            mine.close()
            theirs.close()
            raise ServerDied(self.death()) from exc
        if len(head) < fs.NUMBER.size:
            mine.close()
            raise ServerDied(self.death())
        return mine, fs.NUMBER.unpack(head)[0]

    def _pickle(self, task: Task) -> bytes:
        if self.pickler is None:
            self.pickler = task_pickler(self.info["catalog"])
        return self.pickler(task)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the server: closing our end tells it to kill what still runs and exit."""
        try:
            self.ctrl.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _ServerJob(ProcessJob):
    """A config forked by the fork-server; its exit code arrives on its socket."""

    def __init__(self, executor: "SubprocessExecutor", task: Task, conn: socket.socket, pid: int,
                 server: _Server, tee: threading.Thread | None, retried: bool):
        super().__init__(task, pid, tee)
        self._executor = executor
        self._conn = conn
        self._server = server
        self._buf = b""
        self._retried = retried

    def _wait_returncode(self) -> int:
        # Kept across calls: a Ctrl-C may interrupt one read and another thread finish it.
        while len(self._buf) < fs.NUMBER.size:
            chunk = self._conn.recv(fs.NUMBER.size - len(self._buf))
            if not chunk:
                raise ServerDied(self._server.death())
            self._buf += chunk
        self._conn.close()
        return fs.NUMBER.unpack(self._buf)[0]

    def wait(self) -> Outcome:
        try:
            return super().wait()
        except ServerDied as exc:
            self._conn.close()
            return self._after_server_death(str(exc))

    def _after_server_death(self, why: str) -> Outcome:
        # The child dies with its server (it watches it); make sure before anything runs again.
        deadline = time.monotonic() + 2.0
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._kill_group(signal.SIGKILL)
        if self._tee is not None:
            self._tee.join()
        self._executor._lost(self._server, why)
        outcome = store.read_outcome(self.task.out)
        if outcome is not None and (outcome.ok or outcome.error_type != "StoreError"):
            return outcome  # it finished before its server died (a damaged result runs again)
        if self.cancelled:
            return Outcome("error", error="cancelled")
        if self._retried:
            return Outcome("error", error=f"the fork-server running this config died twice ({why})")
        return self._executor._submit(self.task, retried=True).wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


class SubprocessExecutor(Executor):
    """Each config in a child forked from a per-run fork-server (a fresh interpreter).

    Args:
        preload: modules to import in the fork-server before forking, so a config that imports
            them lazily (inside the experiment function) finds them loaded.
    """

    def __init__(self, preload: Sequence[str] | None = None) -> None:
        self.preload: list[str] = list(preload or [])
        self._server: _Server | None = None
        self._spawn: Any = None  # a SpawnExecutor once fork-serving is impossible or unsafe
        self._lock = threading.RLock()
        self._closed = False

    def submit(self, task: Task) -> Job:
        if self._spawn is None and not hasattr(os, "fork"):
            self._use_spawn(None)
        if self._spawn is not None:
            return self._spawn.submit(task)
        return self._submit(task, retried=False)

    def _submit(self, task: Task, retried: bool) -> Job:
        prepare(task)
        for attempt in range(2):
            with self._lock:
                server = self._running_server(task)
                if server is None:
                    return self._spawn.submit(task)
                read_end = None
                if task.capture:
                    out_fd = os.open(task.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                else:
                    read_end, out_fd = os.pipe()
                try:
                    conn, pid = server.start(task, out_fd)
                except ServerDied as exc:
                    if read_end is not None:
                        os.close(read_end)
                    self._lost(server, str(exc))
                    if attempt:
                        raise
                    continue
                finally:
                    os.close(out_fd)
            tee = start_tee(os.fdopen(read_end, "rb"), task.log_path) if read_end is not None else None
            return _ServerJob(self, task, conn, pid, server, tee, retried)
        raise AssertionError("unreachable")

    def _running_server(self, task: Task) -> _Server | None:
        """The live fork-server, started (once) if needed; None if the run must use spawn."""
        if self._spawn is not None:
            return None
        if self._server is None:
            try:
                self._server = _Server(task, self.preload)
            except ServerDied as exc:
                self._use_spawn(f"the fork-server could not start ({exc})")
                return None
            # An executor used without close() (e.g. its run() from a notebook) stops it when dropped.
            weakref.finalize(self, self._server.close)
            info = self._server.info
            if info["errors"]:
                name, error = next(iter(info["errors"].items()))
                self._server.close()
                self._server = None
                raise ConfigError(f"preload: cannot import {name!r} in the fork-server ({error}); "
                                  "fix the module name in preload/--preload or install it")
            reason = self._server.unsafe_reason()
            if reason:
                self._server.close()
                self._server = None
                self._use_spawn(reason)
                return None
        return self._server

    def _use_spawn(self, reason: str | None) -> None:
        from .spawn import SpawnExecutor

        if reason:
            _say(f"{reason}; running each config in its own fresh interpreter (executor 'spawn') instead")
        self._spawn = SpawnExecutor()

    def _lost(self, server: _Server, why: str) -> None:
        """Forget a dead fork-server (once, whoever notices first); the next config gets a fresh one."""
        with self._lock:
            if self._server is not server:
                return
            self._server = None
        server.close()
        if not self._closed:
            _say(f"the fork-server (pid {server.pid}) died ({why}); starting a fresh one")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._spawn is not None:
            self._spawn.close()
