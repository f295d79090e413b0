"""Run each config as a Ray task: on this machine, on a running cluster, or through Ray Client.

``executor="ray"`` connects like ``ray.init()`` (``RAY_ADDRESS``, else the cluster last started
on this machine, else a new local Ray that :meth:`RayExecutor.close` shuts down again);
``"ray:auto"`` / ``"ray:<address>"`` only connect; ``"ray://host:port"`` uses Ray Client and
uploads the working directory so user modules import on the workers.

Every config runs in a fresh interpreter started by its Ray task (see
:mod:`pyexp.executors._ray_node`), so a crash fails that config alone. Output and results come
back to the driver, which writes ``log.out`` (live, except over Ray Client) and, when the
workers cannot see the run folder, ``result.pkl`` and the config's other files: a run folder
looks the same whichever executor filled it.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from .. import store
from .._files import atomic_write_bytes
from ..errors import ExecutorError, MissingExtraError
from ..outcome import Outcome
from ._ray_node import PROBE_FILE, pack, unpack
from .base import Executor, Job, prepare
from .task import Task

#: Files of a config folder that a remote worker never needs (the rest seeds its scratch folder).
_NOT_SEEDED = {store.CONFIG_FILE, store.LOG_FILE, store.RESULT_FILE, store.OUTCOME_FILE, store.CLAIM_FILE,
               PROBE_FILE}
#: Always left out of the working directory pyexp uploads for Ray Client (``excludes`` adds to these).
DEFAULT_EXCLUDES = [".git/", "out/", "__pycache__/", "*.pyc"]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "executor='ray'") from None
    return ray


#: How long a Ray Client connection is retried while the server fails to start the session: a
#: cold head (first session after install, busy machine) can take tens of seconds to start one.
CLIENT_INIT_RETRY_SECONDS = 60.0


class RayExecutor(Executor):
    """Runs every config as a Ray task, each in a fresh Python process on a Ray worker.

    Args:
        address: ``None`` (like ``ray.init()``: connect to ``RAY_ADDRESS`` or the local cluster,
            else start one), ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` (Ray Client).
        runtime_env: Ray runtime environment (``working_dir``, ``excludes``, ``pip``,
            ``env_vars``, ...). With Ray Client, ``working_dir`` defaults to the current directory.
        num_cpus: CPUs reserved by each config (Ray's default: 1).
        num_gpus: GPUs reserved by each config.
        **init_kwargs: Passed on to ``ray.init``.
    """

    def __init__(self, address: str | None = None, runtime_env: dict[str, Any] | None = None,
                 num_cpus: float | None = None, num_gpus: float | None = None, **init_kwargs: Any):
        _import_ray()
        self.address = address
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_kwargs = init_kwargs
        self._lock = threading.Lock()
        self._remote: Any = None
        self._streaming = True
        self._owned = False
        self._task_env: dict[str, Any] | None = None  # runtime_env per task if ray was already up
        self._source_dir: str | None = None
        self._token = uuid.uuid4().hex

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"

    def _name(self) -> str:
        """How the user would have spelled this executor's name."""
        if not self.address:
            return "ray"
        return self.address if self.address.startswith("ray://") else f"ray:{self.address}"

    # -- connection --------------------------------------------------------------------

    @property
    def _uses_client(self) -> bool:
        """True when this executor talks to the cluster through Ray Client (``ray://``)."""
        address = self.address or ""
        if address in ("", "auto"):  # ray.init() then honours RAY_ADDRESS
            address = os.environ.get("RAY_ADDRESS") or address
        return address.startswith("ray://")

    def _effective_runtime_env(self) -> dict[str, Any] | None:
        env = dict(self.runtime_env or {})
        if self._uses_client and "working_dir" not in env:
            env["working_dir"] = os.getcwd()
            # The user's excludes add to ours: a user leaving out one module must not start
            # shipping the run store (results, claims of configs running right now) and caches.
            env["excludes"] = [*DEFAULT_EXCLUDES, *(e for e in env.get("excludes") or [] if e not in DEFAULT_EXCLUDES)]
        working_dir = env.get("working_dir")
        # Only a local folder is uploaded from here; a URI (s3://, https://...zip) has no local paths to map.
        if isinstance(working_dir, (str, os.PathLike)) and os.path.isdir(working_dir):
            self._source_dir = os.path.abspath(working_dir)
        return env or None

    def _connect(self) -> None:
        with self._lock:
            if self._remote is not None:
                return
            ray = _import_ray()
            runtime_env = self._effective_runtime_env()
            if ray.is_initialized():
                # The user's own session: use it as it is and leave it running at close().
                self._owned = False
                self._task_env = runtime_env
            else:
                kwargs: dict[str, Any] = {}
                if not self._uses_client:
                    # pyexp captures each config's output itself; Ray's copy would only be noise.
                    kwargs = {"log_to_driver": False, "include_dashboard": False}
                kwargs.update(self.init_kwargs)
                try:
                    _check_reachable(self.address)
                    self._init_with_retry(ray, runtime_env, kwargs)
                except (ConnectionError, ValueError) as exc:  # unreachable, or a malformed address
                    raise ExecutorError(
                        f"executor={self._name()!r}: cannot connect to a Ray cluster "
                        f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
                        "start one with `ray start --head`, or fix the address / RAY_ADDRESS"
                    ) from exc
                self._owned = True
            from . import _ray_node

            client = ray.util.client.ray.is_connected()
            self._streaming = not client  # Ray Client cannot stream generator tasks
            target = _ray_node.run_streaming if self._streaming else _ray_node.run_collected
            self._remote = ray.remote(max_retries=0)(target)

    def _init_with_retry(self, ray: Any, runtime_env: Any, kwargs: dict[str, Any]) -> None:
        """``ray.init``; over Ray Client, retried while the session is refused or lands elsewhere.

        The client server refuses a new session while it still tears down the previous one (a
        ``--continue`` right after a run), answering "Initialization failure from server". And
        every Ray head on a machine picks its per-session servers' ports from the same range
        (23000-23999) by a bind-and-close probe, while those servers bind with SO_REUSEPORT: two
        heads starting sessions at once can both pick one port, and a session is then served by
        the OTHER head's server, on the other cluster. There its tasks fail with
        RuntimeEnvSetupError (our working_dir package was uploaded to our cluster, not that one),
        or the other head's own client is refused. A fresh session gets a fresh port.
        """
        deadline = time.monotonic() + CLIENT_INIT_RETRY_SECONDS
        while True:
            try:
                ray.init(address=self.address or None, runtime_env=runtime_env, **kwargs)
                if not self._uses_client:
                    return
                missing = _packages_missing_from_session(ray)
                if not missing:
                    return
                problem = ConnectionError(
                    f"the Ray Client session kept being served by another Ray cluster (the package "
                    f"{missing} uploaded for it is not there): another Ray head on that machine "
                    "takes the same Ray Client session ports")
            except ConnectionError as exc:
                if not self._uses_client or "Initialization failure" not in str(exc):
                    raise
                problem = exc
            ray.shutdown()
            if time.monotonic() > deadline:
                raise problem
            # Random, so two clients that just collided do not retry in step onto the next port.
            time.sleep(random.uniform(0.5, 3.0))

    @property  # type: ignore[override]
    def max_workers(self) -> int:
        """How many configs run at once: the cluster's CPUs (or GPUs) divided by each config's share."""
        self._connect()
        ray = _import_ray()
        resources = ray.cluster_resources()
        cpus = resources.get("CPU", 0)
        slots = int(cpus // (self.num_cpus or 1))
        if self.num_cpus and cpus < self.num_cpus:
            print(f"pyexp: warning: each config asks for num_cpus={self.num_cpus:g} but the Ray cluster "
                  f"has {cpus:g} CPU(s); configs wait until a big enough node joins", file=sys.stderr)
        if self.num_gpus:
            gpus = resources.get("GPU", 0)
            if gpus < self.num_gpus:
                print(f"pyexp: warning: each config asks for num_gpus={self.num_gpus:g} but the Ray "
                      f"cluster has {gpus:g} GPU(s); configs wait until a GPU node joins", file=sys.stderr)
                slots = 1
            else:
                slots = min(slots, int(gpus // self.num_gpus))
        return max(1, slots)

    def close(self) -> None:
        """Disconnect from Ray; stops the local Ray instance if this executor started it."""
        with self._lock:
            if self._remote is None:
                return
            self._remote = None
            if self._owned:
                ray = _import_ray()
                if ray.is_initialized():
                    ray.shutdown()
            self._owned = False

    # -- running -----------------------------------------------------------------------

    def submit(self, task: Task) -> Job:
        import cloudpickle

        self._connect()
        prepare(task)
        (task.out / PROBE_FILE).write_text(self._token)
        header = {
            "out": str(task.out), "token": self._token, "cwd": task.cwd,
            "sys_path": list(task.sys_path), "source_dir": self._source_dir,
            # Used only by a worker that cannot see this folder; empty for a fresh config.
            "seed": pack(task.out, skip=_NOT_SEEDED),
        }
        options: dict[str, Any] = {"name": f"pyexp:{task.name}"[:200]}
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        if self.num_gpus is not None:
            options["num_gpus"] = self.num_gpus
        if self._task_env:
            options["runtime_env"] = self._task_env
        try:
            payload = cloudpickle.dumps(task)
            ref = self._remote.options(**options).remote(header, payload)
        except BaseException:
            _unlink(task.out / PROBE_FILE)
            raise
        return RayJob(task, ref, self._streaming)


class RayJob(Job):
    """A config running as a Ray task; ``wait`` writes its output to ``log.out`` as it arrives."""

    def __init__(self, task: Task, ref: Any, streaming: bool):
        super().__init__(task)
        self._ref = ref
        self._streaming = streaming
        self.cancelled = False

    def _items(self) -> Iterator[dict[str, Any]]:
        import ray

        if self._streaming:
            for item_ref in self._ref:
                yield ray.get(item_ref)
        else:
            yield from ray.get(self._ref)

    def wait(self) -> Outcome:
        from ray import exceptions as rex

        task = self.task
        final: dict[str, Any] | None = None
        failure: BaseException | None = None
        tee = None if task.capture else getattr(sys.stdout, "buffer", None)
        try:
            with open(task.log_path, "wb") as log:
                try:
                    for item in self._items():
                        if "log" in item:
                            log.write(item["log"])
                            log.flush()
                            if tee is not None:
                                tee.write(item["log"])
                                tee.flush()
                        else:
                            final = item
                except rex.RayError as exc:
                    failure = exc
        finally:
            _unlink(task.out / PROBE_FILE)
        if final is not None and not final["shared"]:
            unpack(final.get("files"), task.out)
            if final.get("result") is not None:
                atomic_write_bytes(task.result_path, final["result"])
            if final.get("outcome") is not None:
                atomic_write_bytes(task.outcome_path, final["outcome"])
        outcome = store.read_outcome(task.out)
        if outcome is not None:
            return outcome
        if self.cancelled or isinstance(failure, rex.TaskCancelledError):
            return Outcome("error", error="cancelled")  # no result file: --continue runs it again
        if final is not None:
            outcome = Outcome.from_exit(final["returncode"])
        else:
            outcome = Outcome("error", error=_describe_ray_failure(failure))
        return store.publish_outcome(task.out, outcome)

    def cancel(self, force: bool = False) -> None:
        import ray

        self.cancelled = True
        try:
            ray.cancel(self._ref, force=force)
        except Exception:  # noqa: BLE001 - already finished, or the connection is gone
            pass


def _check_reachable(address: str | None) -> None:
    """Fail fast on a host:port nobody listens on (``ray.init`` would wait for minutes)."""
    if not address or address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # let ray.init report the malformed address
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port}: {exc}") from exc


def _packages_missing_from_session(ray: Any) -> str | None:
    """The first package this Ray Client session uploaded that its cluster cannot see, if any.

    ``ray.init`` uploads the working_dir (and py_modules) through the client server to the
    cluster it fronts; the session's own server answers the lookup from the cluster it really
    runs on. Packages named by a remote URI were not uploaded from here and are not checked.
    """
    try:
        from ray.experimental import internal_kv

        exists = internal_kv._internal_kv_exists  # noqa: SLF001 - Ray has no public lookup of its packages
        env = ray.get_runtime_context().runtime_env or {}
    except (ImportError, AttributeError):  # a Ray without it: the session cannot be checked
        return None
    modules = env.get("py_modules") or []
    for uri in [env.get("working_dir"), *(modules if isinstance(modules, list) else [])]:
        if isinstance(uri, str) and uri.startswith("gcs://") and not exists(uri.encode(), namespace=None):
            return uri
    return None


def _describe_ray_failure(exc: BaseException | None) -> str:
    from ray import exceptions as rex

    first = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__
    if isinstance(exc, (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError,
                        rex.LocalRayletDiedError)):
        return f"the Ray worker running this config died ({type(exc).__name__}: {first})"
    return f"Ray could not run this config ({type(exc).__name__}: {first})"


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
