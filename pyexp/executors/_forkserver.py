"""The fork-server: one fresh interpreter per run, started by pyexp with :func:`main` ``(fd)``.

It imports the experiment's main module once, as ``__mp_main__`` (the way multiprocessing's
spawn and forkserver start methods do, so ``if __name__ == "__main__":`` does not run), the
experiment's own module and the ``preload`` modules, then forks one child per config. A child
starts from that state and nothing else: the pyexp process's threads, open files, CUDA context
and whatever its script did after import never reach it.

Protocol on the control socket (a stream socketpair whose other end only pyexp holds):

1. pyexp sends the boot message (:func:`send_msg`): ``sys_path``, ``cwd``, ``argv``, ``main``
   (``("path", file)``, ``("name", module)`` or None), ``modules`` (the experiment's own)
   and ``preload`` to import.
2. The server answers what it imported: ``main_error`` (None if the main module imported),
   ``catalog`` (fingerprints of the functions and classes at the main module's top level),
   ``errors`` (preload modules that failed), ``threads`` and ``cuda`` (is forking still safe).
3. Then, per config, one :data:`REQUEST` message carrying file descriptors: the config's own
   socket, its output and optionally its claim. The server forks; the child reads the pickled
   task from its socket; the server writes the child's pid on that socket and, once the child
   is reaped, its exit code as Popen reports it (negative: killed by that signal), then closes it.

EOF on the control socket means pyexp is gone (even by ``kill -9``): the server kills every
child's process group at once and exits. A child whose server dies kills itself within
:data:`~pyexp.executors._process.WATCH_INTERVAL` seconds.
"""

from __future__ import annotations

import io
import os
import pickle
import selectors
import signal
import socket
import struct
import sys
import types
from typing import Any, NoReturn

from ._by_name import TaskUnpickler, catalog
from ._child import exit_with, output_to, reseed_after_fork

#: A config request: b"T", whether a claim descriptor follows; descriptors ride along.
REQUEST = struct.Struct("!cB6x")
#: What the server writes on a config's socket: the child's pid, then its exit code.
NUMBER = struct.Struct("!q")
#: Length prefix of a pickled message or task.
LENGTH = struct.Struct("!Q")

#: True while the server imports the main module: an unguarded ``exp.run()`` must not run there.
IMPORTING_MAIN = False


class MainImportAborted(Exception):
    """Raised by ``ExperimentRunner.run`` when the main module calls it at import in the fork-server."""


# -- messages -------------------------------------------------------------------------------


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock``; fewer only if the peer closed it (EOF)."""
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send_msg(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(LENGTH.pack(len(data)) + data)


def recv_msg(sock: socket.socket) -> Any:
    head = recv_exact(sock, LENGTH.size)
    if len(head) < LENGTH.size:
        raise EOFError("the other end closed the connection")
    (n,) = LENGTH.unpack(head)
    data = recv_exact(sock, n)
    if len(data) < n:
        raise EOFError("the other end closed the connection")
    return pickle.loads(data)


# -- start-up -------------------------------------------------------------------------------


def _import_main(main: tuple[str, str]) -> types.ModuleType:
    """Run the main module's code in a module named ``__mp_main__``, aliased as ``__main__``."""
    global IMPORTING_MAIN
    kind, where = main
    module = types.ModuleType("__mp_main__")
    if kind == "name":
        import importlib.util

        spec = importlib.util.find_spec(where)
        if spec is None or spec.loader is None:
            raise ImportError(f"no module named {where!r}")
        code = spec.loader.get_code(where)  # type: ignore[attr-defined]
        module.__file__ = spec.origin
        module.__package__ = spec.parent
        module.__loader__ = spec.loader
    else:
        with io.open_code(where) as f:
            code = compile(f.read(), where, "exec")
        module.__file__ = where
    old_main = sys.modules.get("__main__")
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    IMPORTING_MAIN = True
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop("__mp_main__", None)
        if old_main is not None:
            sys.modules["__main__"] = old_main
        raise
    finally:
        IMPORTING_MAIN = False
    return module


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def boot(info: dict[str, Any]) -> dict[str, Any]:
    """Become the interpreter the configs start from; return what worked (step 2 above)."""
    sys.path[:] = info["sys_path"]
    os.chdir(info["cwd"])
    sys.argv[:] = info["argv"]
    # What every child needs anyway, loaded once here rather than once per config.
    import cloudpickle

    import pyexp.config  # noqa: F401 - a task's config unpickles into it
    import pyexp.outcome  # noqa: F401
    from pyexp.executors import _process, task  # noqa: F401

    reply: dict[str, Any] = {"main_error": None, "catalog": {}, "errors": {}}
    if info.get("main") is not None:
        try:
            module = _import_main(info["main"])
        except BaseException as exc:  # noqa: BLE001 - anything at all: the run falls back to by-value
            reply["main_error"] = _describe(exc)
        else:
            reply["catalog"] = catalog(module)
            # A class the script defines comes back in a result by value, as from a fresh
            # interpreter: nothing else can import "__mp_main__".
            cloudpickle.register_pickle_by_value(module)
    else:
        reply["main_error"] = "no main module file"
    import importlib

    global IMPORTING_MAIN
    IMPORTING_MAIN = True  # no run() at import time in these either
    try:
        for name in info.get("modules", []):  # the experiment's own: a failure shows in its configs
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - each config then reports why it cannot load
                pass
        for name in info.get("preload", []):
            try:
                importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 - a user's mistake: the run stops and says so
                reply["errors"][name] = _describe(exc)
    finally:
        IMPORTING_MAIN = False
    import threading

    reply["threads"] = threading.active_count()
    torch = sys.modules.get("torch")
    reply["cuda"] = bool(torch is not None and getattr(torch, "cuda", None) is not None
                         and torch.cuda.is_initialized())
    return reply


# -- serving --------------------------------------------------------------------------------


class _Server:
    def __init__(self, ctrl: socket.socket):
        self.ctrl = ctrl
        self.children: dict[int, socket.socket] = {}  # pid -> the config's socket
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(ctrl, selectors.EVENT_READ, "ctrl")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")

    def serve(self) -> None:
        from pyexp.executors._process import WATCH_INTERVAL

        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
        signal.set_wakeup_fd(self.wake_w)
        pyexp = os.getppid()
        try:
            # pyexp's death closes the control socket; the parent check covers a copy of pyexp's
            # end that some other process of pyexp's might hold.
            while os.getppid() == pyexp:
                for key, _ in self.selector.select(timeout=WATCH_INTERVAL):
                    if key.data == "wake":
                        os.read(self.wake_r, 512)
                        self.reap()
                    elif not self.accept():
                        return
        finally:
            self.kill_children()

    def accept(self) -> bool:
        """Fork a child for the next request; False once pyexp has gone."""
        try:
            data, fds, _, _ = socket.recv_fds(self.ctrl, REQUEST.size, 3)
        except OSError:
            return False
        if len(data) < REQUEST.size:
            for fd in fds:
                os.close(fd)
            return False
        _, has_claim = REQUEST.unpack(data)
        conn = socket.socket(fileno=fds[0])
        out_fd = fds[1]
        claim_fd = fds[2] if has_claim and len(fds) > 2 else None
        pid = os.fork()
        if pid == 0:
            self._become_child(conn, out_fd, claim_fd)  # never returns
        os.close(out_fd)
        if claim_fd is not None:
            os.close(claim_fd)  # the child holds the claim; we must not keep it after it ends
        self.children[pid] = conn
        try:
            conn.sendall(NUMBER.pack(pid))
        except OSError:
            pass  # pyexp gave up on this config; it is reaped like any other
        return True

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(NUMBER.pack(os.waitstatus_to_exitcode(status)))
                except OSError:
                    pass
                conn.close()

    def kill_children(self) -> None:
        for pid in self.children:
            for kill in (os.killpg, os.kill):  # the group, or the child if it has none yet
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def _become_child(self, conn: socket.socket, out_fd: int, claim_fd: int | None) -> NoReturn:
        def body() -> int:
            server = os.getppid()
            os.setsid()  # its own process group: cancelled, or cleaned up, as a whole
            signal.set_wakeup_fd(-1)
            for signum, handler in ((signal.SIGCHLD, signal.SIG_DFL), (signal.SIGTERM, signal.SIG_DFL),
                                    (signal.SIGINT, signal.default_int_handler)):
                signal.signal(signum, handler)
            # Nothing of the server's, or of sibling configs, stays open in a config.
            self.selector.close()
            for fd in (self.ctrl.fileno(), self.wake_r, self.wake_w,
                       *(c.fileno() for c in self.children.values())):
                os.close(fd)
            output_to(out_fd)
            return run_child(conn, claim_fd, server)

        exit_with(body)


def run_child(conn: socket.socket, claim_fd: int | None, server: int) -> int:
    """In a forked child: read the task from ``conn``, run it, store its outcome."""
    from pyexp.executors._process import watch_parent
    from pyexp.executors.task import run_task, store_outcome

    watch_parent(server)
    reseed_after_fork()
    if claim_fd is not None:
        os.set_inheritable(claim_fd, False)  # held until we exit, not by programs we start
    head = recv_exact(conn, LENGTH.size)
    (n,) = LENGTH.unpack(head)
    data = recv_exact(conn, n)
    conn.close()
    if len(data) < n:
        raise EOFError("pyexp closed the connection before sending the whole task")
    task = TaskUnpickler(io.BytesIO(data)).load()
    sys.path[:] = task.sys_path
    os.chdir(task.cwd)
    outcome = run_task(task)
    store_outcome(task, outcome, server)
    return 0


def main(fd: int) -> int:
    # Ctrl-C in the terminal is pyexp's to handle; it stops the configs itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = socket.socket(fileno=fd)
    try:
        info = recv_msg(ctrl)
    except (EOFError, OSError):
        return 0
    reply = boot(info)
    import gc

    gc.freeze()  # what is loaded now is shared copy-on-write with every child: keep gc off it
    try:
        send_msg(ctrl, reply)
    except OSError:
        return 0
    _Server(ctrl).serve()
    # No interpreter shutdown: tearing down numpy & co. only delays pyexp, which waits for us.
    os._exit(0)
