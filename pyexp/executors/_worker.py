"""``python -m pyexp.executors._worker <payload>``: run one task in this fresh interpreter."""

from __future__ import annotations

import os
import pickle
import sys


def main(payload_path: str) -> int:
    from pyexp.executors._child import follow_runner_output

    follow_runner_output()
    with open(payload_path, "rb") as f:
        header = pickle.load(f)
        if header.get("parent"):
            from pyexp.executors._process import watch_parent

            watch_parent(header["parent"])
        if header.get("claim_fd") is not None:
            # Held open until we exit, but not handed on to programs the experiment starts.
            os.set_inheritable(header["claim_fd"], False)
        # User modules must be importable before the task (which may reference them) is unpickled.
        sys.path[:] = header["sys_path"]
        os.chdir(header["cwd"])
        task = pickle.load(f)
    os.unlink(payload_path)

    from pyexp.executors.task import run_task, store_outcome

    outcome = run_task(task)
    store_outcome(task, outcome, header.get("parent"))
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
