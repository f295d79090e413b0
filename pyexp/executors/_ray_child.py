"""``python -m pyexp.executors._ray_child <task-file>``: run one config under a Ray task.

Like :mod:`pyexp.executors._worker`, plus two things a Ray worker needs: the child dies with
the Ray worker that started it (a force-cancelled task kills its worker with SIGKILL, which
no ``finally`` survives), and on a node that cannot see the driver's folders the task's
``out`` (and ``config.out``) point to a local scratch folder that is shipped back afterwards.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from pathlib import Path


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass
        else:
            if os.getppid() != parent:  # it died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="pyexp-parent-watch").start()


def main(task_file: str) -> int:
    from pyexp.executors.task import run_task, store_outcome
    from pyexp.outcome import Outcome
    from pyexp.store import publish_outcome

    with open(task_file, "rb") as f:
        header = pickle.load(f)
        _die_with_parent(header["parent"])
        # User modules must be importable before the task (which may reference them) is unpickled.
        sys.path[:] = header["sys_path"]
        os.chdir(header["cwd"])
        try:
            task = pickle.load(f)
        except Exception as exc:  # noqa: BLE001 - typically a user module missing on this node
            outcome = Outcome.from_exception(exc)
            outcome.error = (f"{outcome.error} (while loading the experiment on a Ray worker: is that "
                             "module inside the working_dir sent to the cluster, or installed there?)")
            sys.stderr.write(outcome.traceback or "")
            folder = Path(header["folder"])
            folder.mkdir(parents=True, exist_ok=True)
            publish_outcome(folder, outcome)
            return 0
    os.unlink(task_file)

    if header["out"] is not None:
        task.out = Path(header["out"])
        task.out.mkdir(parents=True, exist_ok=True)
        if isinstance(task.config, dict):
            task.config["out"] = task.out
    # Like the subprocess worker: a failure seen after the Ray worker died is not stored.
    store_outcome(task, run_task(task), header["parent"])
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
