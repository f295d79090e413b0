"""Run configs as Slurm jobs through submitit: one job array per run, results in the run store.

``SlurmExecutor`` hands the scheduler's pending configs to submitit as ONE job array (``-j N``
becomes the array's ``%N``), records each config's Slurm job id (``<array>_<index>``) in its
folder, and then waits by watching the run store (see :mod:`._slurm_watch`). Inside the job
the config runs in a child of the job's fresh interpreter (:mod:`._slurm_child`), writing ``log.out`` and its result into its own folder, so the run
folder looks the same whichever executor filled it, and a detached run can be picked up later
by ``--continue`` from any machine that sees the folder.
"""

from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from .._files import atomic_write_bytes
from ..errors import ConfigError, ExecutorError, MissingExtraError
from ..store import SLURM_DIR, SLURM_JOB_FILE, SLURM_PAYLOAD_FILE, outcome_path
from ._slurm_child import RunConfig
from ._slurm_watch import ENDED_STATES, SlurmJob, Watcher, squeue_states
from .base import Executor, Job, prepare
from .task import Task

#: The options of :class:`SlurmExecutor`, as ``pyexp.slurm.<key>=`` and YAML ``slurm:`` keys.
OPTIONS = ("partition", "time", "cpus_per_task", "gpus_per_node", "mem", "account", "qos",
           "constraint", "setup", "additional_parameters", "requeue")
_STR_OPTIONS = ("partition", "account", "qos", "constraint")
_TOOLS = ("sbatch", "srun", "squeue", "scancel")

#: sbatch's complaint -> the option that caused it.
_REJECTIONS = [
    (re.compile(r"partition", re.I), "partition"),
    (re.compile(r"--time|time limit", re.I), "time"),
    (re.compile(r"account", re.I), "account"),
    (re.compile(r"qos", re.I), "qos"),
    (re.compile(r"feature|constraint", re.I), "constraint"),
    (re.compile(r"gres|gpu", re.I), "gpus_per_node"),
    (re.compile(r"memory|--mem", re.I), "mem"),
    (re.compile(r"cpus|processors", re.I), "cpus_per_task"),
]
#: Options that together describe the node a job needs ("node configuration is not available").
_RESOURCES = ("cpus_per_task", "mem", "gpus_per_node", "constraint")


class SlurmExecutor(Executor):
    """Runs every config as a task of a Slurm job array, submitted with submitit.

    Args:
        partition: Slurm partition (``--partition``); ``None``: the cluster's default.
        time: Time limit per config: minutes (``30``) or Slurm's spelling (``"2:00:00"``,
            ``"1-12:00:00"``); ``None``: the partition's default.
        cpus_per_task: CPUs per config (``--cpus-per-task``).
        gpus_per_node: GPUs per config (``--gpus-per-node``), a count or ``"type:count"``.
        mem: Memory per config (``--mem``): ``"16G"``, or megabytes as an int.
        account: Account to charge (``--account``).
        qos: Quality of service (``--qos``).
        constraint: Node features required (``--constraint``).
        setup: Shell lines run in the job before the config (``module load ...``,
            ``source venv/bin/activate``).
        additional_parameters: Any other sbatch option, e.g. ``{"mail-type": "END"}``.
        requeue: Requeue a config that is preempted or reaches its time limit; it resumes
            from its ``@chkpt`` checkpoints in its folder.
    """

    def __init__(self, partition: str | None = None, time: int | str | None = None,
                 cpus_per_task: int | None = None, gpus_per_node: int | str | None = None,
                 mem: int | str | None = None, account: str | None = None, qos: str | None = None,
                 constraint: str | None = None, setup: list[str] | None = None,
                 additional_parameters: dict[str, Any] | None = None, requeue: bool = False):
        self.options = check_options({
            "partition": partition, "time": time, "cpus_per_task": cpus_per_task,
            "gpus_per_node": gpus_per_node, "mem": mem, "account": account, "qos": qos,
            "constraint": constraint, "setup": setup, "additional_parameters": additional_parameters,
            "requeue": requeue,
        })
        self._watcher = Watcher(requeue=bool(requeue))

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if v not in (None, False, [], {}))
        return f"SlurmExecutor({given})"

    def with_options(self, **options: Any) -> "SlurmExecutor":
        """A copy with ``options`` replaced (``pyexp.slurm.<key>=`` overrides on the command line)."""
        return SlurmExecutor(**{**self.options, **options})

    @property  # type: ignore[override]
    def max_workers(self) -> int:
        """Every pending config goes to Slurm at once; ``-j N`` caps the array with ``%N``."""
        return 1 << 30

    # -- checks before anything is written --------------------------------------------

    def validate(self, count: int = 1, jobs: int | None = None) -> None:
        """Raise ExecutorError unless Slurm is reachable and accepts these options.

        One ``sbatch --test-only`` of the array that ``count`` configs would make, so a bad
        partition, time, memory... is reported (naming the option) before the run writes anything.
        """
        _require_tools()
        _import_submitit()
        command = ["sbatch", "--test-only", *self._sbatch_flags(max(1, count), jobs)]
        script = "#!/bin/bash\ntrue\n"
        proc = subprocess.run(command, input=script, capture_output=True, text=True)
        if proc.returncode != 0:
            raise self._rejected(proc.stderr or proc.stdout)

    def _sbatch_flags(self, count: int, jobs: int | None) -> list[str]:
        """The sbatch options submitit will write, as command-line flags (for ``--test-only``)."""
        o = self.options
        flags = [f"--array=0-{count - 1}%{min(count, jobs or count)}"]
        for key in ("partition", "time", "cpus_per_task", "gpus_per_node", "mem", "account", "qos",
                    "constraint"):
            if o[key] is not None:
                flags.append(f"--{key.replace('_', '-')}={o[key]}")
        for key, value in (o["additional_parameters"] or {}).items():
            flags.append(f"--{key.replace('_', '-')}" if value is True else f"--{key.replace('_', '-')}={value}")
        return flags

    def _rejected(self, stderr: str) -> ExecutorError:
        text = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())[:400]
        if "node configuration" in text.lower():
            asked = [k for k in _RESOURCES if self.options[k] is not None]
            if asked:
                shown = ", ".join(f"{k}={self.options[k]!r} (pyexp.slurm.{k})" for k in asked)
                return ExecutorError(f"executor 'slurm': no node of the partition offers {shown}: {text}; "
                                     "ask for less, or choose another partition")
        for pattern, key in _REJECTIONS:
            if pattern.search(text) and (self.options.get(key) is not None or key == "partition"):
                value = self.options.get(key)
                shown = f"{key}={value!r}" if value is not None else f"the default {key}"
                return ExecutorError(
                    f"executor 'slurm': Slurm rejects {shown} (pyexp.slurm.{key}): {text}; "
                    + ("see `sinfo -s` for the partitions" if key == "partition" else "fix that option")
                )
        return ExecutorError(f"executor 'slurm': sbatch rejects the job: {text}; "
                             "fix the Slurm options (pyexp.slurm.<key>=...)")

    # -- submitting ------------------------------------------------------------------

    def submit(self, task: Task) -> Job:
        return self.submit_many([task])[0]

    def submit_many(self, tasks: list[Task], jobs: int | None = None) -> list[Job]:
        """Submit ``tasks`` as one job array, or reattach to the jobs still running them.

        A config whose recorded job is still queued or running in Slurm (``--continue`` after
        ``--detach``) is waited for, not submitted again.

        Args:
            tasks: The configs to run; their folders exist.
            jobs: At most this many run at once (the array's ``%N``); ``None``: no cap.
        """
        if not tasks:
            return []
        _require_tools()
        alive = _alive_jobs(tasks)
        fresh = [t for t in tasks if t.out not in alive]
        found: dict[Path, SlurmJob] = {t.out: SlurmJob(t, alive[t.out], self._watcher)
                                       for t in tasks if t.out in alive}
        if fresh:
            for task, job_id in zip(fresh, self._submit_array(fresh, jobs)):
                found[task.out] = SlurmJob(task, job_id, self._watcher)
        ordered = [found[t.out] for t in tasks]
        self._watcher.watch(ordered)
        return list(ordered)

    def _submit_array(self, tasks: list[Task], jobs: int | None) -> list[str]:
        submitit = _import_submitit()
        import cloudpickle

        run_dir = tasks[0].out.parent
        calls = []
        for task in tasks:
            prepare(task)
            _unlink(task.out / SLURM_JOB_FILE)
            # The same payload as the subprocess executor's: where to import from, then the task.
            header = pickle.dumps({"sys_path": task.sys_path, "cwd": task.cwd, "parent": None,
                                   "claim_fd": None})
            body = cloudpickle.dumps(_detached_copy(task))
            atomic_write_bytes(task.out / SLURM_PAYLOAD_FILE, header + body)
            calls.append(RunConfig(str(task.out), requeue=bool(self.options["requeue"]),
                                   time_known=self.options["time"] is not None))
        ex = submitit.SlurmExecutor(folder=run_dir / SLURM_DIR, python=sys.executable)
        ex.update_parameters(**self._submitit_parameters(len(tasks), jobs, run_dir.parent.name))
        try:
            submitted = ex.submit_array(calls)
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal, as submitit relays it
            raise self._rejected(str(exc)) from None
        ids = [str(job.job_id) for job in submitted]
        for task, job_id in zip(tasks, ids):
            atomic_write_bytes(task.out / SLURM_JOB_FILE, f"{job_id}\n".encode())
        return ids

    def _submitit_parameters(self, count: int, jobs: int | None, name: str) -> dict[str, Any]:
        o = self.options
        params: dict[str, Any] = {
            "job_name": f"pyexp:{name}"[:100], "stderr_to_stdout": True,
            "array_parallelism": min(count, jobs or count),
            # submitit writes a 5-minute limit unless told otherwise; None keeps the partition's.
            "time": minutes(o["time"]),
        }
        for key in ("partition", "cpus_per_task", "gpus_per_node", "mem", "account", "qos",
                    "constraint", "setup"):
            if o[key] is not None:
                params[key] = o[key]
        extra = dict(o["additional_parameters"] or {})
        extra["requeue" if o["requeue"] else "no-requeue"] = True
        params["additional_parameters"] = extra
        return params


def minutes(time: int | str | None) -> int | None:
    """A Slurm time limit in whole minutes (rounded up); ``None`` stays ``None``."""
    if time is None or isinstance(time, int):
        return time
    days, _, clock = time.rpartition("-") if "-" in time else ("0", "", time)
    parts = [int(p) for p in clock.split(":")]
    if days != "0" or "-" in time:
        hours, minutes_, seconds = (parts + [0, 0, 0])[:3]  # days-hours[:minutes[:seconds]]
    elif len(parts) == 3:
        hours, minutes_, seconds = parts
    elif len(parts) == 2:
        hours, (minutes_, seconds) = 0, parts
    else:
        hours, minutes_, seconds = 0, parts[0], 0
    total = int(days) * 1440 + hours * 60 + minutes_
    return total + (1 if seconds else 0)


_TIME = re.compile(r"^(\d+-)?\d+(:\d+){0,2}$")


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Validate the Slurm options; a bad one raises ConfigError naming ``pyexp.slurm.<key>``."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown Slurm option(s) {', '.join(unknown)} (pyexp.slurm.{unknown[0]}); "
                          f"valid: {', '.join(OPTIONS)}")
    out = {key: options.get(key) for key in OPTIONS}
    requeue = out["requeue"]
    if isinstance(requeue, str) and requeue.lower() in ("true", "yes", "on", "false", "no", "off"):
        requeue = requeue.lower() in ("true", "yes", "on")
    if requeue is not None and not isinstance(requeue, bool):
        raise ConfigError(f"Slurm option requeue={requeue!r} (pyexp.slurm.requeue) must be true or false")
    out["requeue"] = bool(requeue)

    def bad(key: str, what: str) -> ConfigError:
        return ConfigError(f"Slurm option {key}={out[key]!r} (pyexp.slurm.{key}) must be {what}")

    for key in _STR_OPTIONS:
        if out[key] is not None and (not isinstance(out[key], str) or not out[key].strip()):
            raise bad(key, "a non-empty string")
    t = out["time"]
    if t is not None and not ((isinstance(t, int) and not isinstance(t, bool) and t > 0)
                              or (isinstance(t, str) and _TIME.match(t.strip()))):
        raise bad("time", 'minutes (e.g. 30) or Slurm\'s "hours:minutes:seconds" / "days-hours:minutes"')
    if isinstance(t, str):
        out["time"] = t.strip()
    for key in ("cpus_per_task",):
        v = out[key]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise bad(key, "a positive integer")
    g = out["gpus_per_node"]
    if g is not None and not ((isinstance(g, int) and not isinstance(g, bool) and g >= 0)
                              or (isinstance(g, str) and g.strip())):
        raise bad("gpus_per_node", 'a GPU count, or "type:count"')
    m = out["mem"]
    if m is not None and not ((isinstance(m, int) and not isinstance(m, bool) and m > 0)
                              or (isinstance(m, str) and re.match(r"^\d+[KMGT]?B?$", m.strip(), re.I))):
        raise bad("mem", 'an amount like "16G" or "500M" (or megabytes as an integer)')
    setup = out["setup"]
    if setup is not None:
        if isinstance(setup, str) or not all(isinstance(line, str) for line in setup):
            raise bad("setup", "a list of shell lines")
        out["setup"] = list(setup)
    extra = out["additional_parameters"]
    if extra is not None:
        if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
            raise bad("additional_parameters", 'a mapping of sbatch options, e.g. {"mail-type": "END"}')
        out["additional_parameters"] = dict(extra)
    return out


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise MissingExtraError("submitit", "slurm", "executor='slurm'") from None
    return submitit


def _require_tools() -> None:
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise ExecutorError(
            f"executor 'slurm': {', '.join(missing)} not found on PATH; run pyexp on a Slurm login "
            "node, or install Slurm's client tools (Debian: apt-get install slurm-client)"
        )


def _detached_copy(task: Task) -> Task:
    """The task as the job sees it: the runner's claim descriptor means nothing on a compute node."""
    import copy

    clone = copy.copy(task)
    clone.claim_fd = None
    return clone


def recorded_job(folder: Path) -> str | None:
    """The Slurm job id recorded in a config folder, or None."""
    try:
        return (Path(folder) / SLURM_JOB_FILE).read_text().strip() or None
    except OSError:
        return None


def _alive_jobs(tasks: Iterable[Task]) -> dict[Path, str]:
    """The tasks whose recorded Slurm job is still queued or running: ``{folder: job id}``.

    A folder with a stored outcome is left out: the job published it as its last act, so it is
    done even if squeue still shows it (COMPLETING), and the task is a new attempt (``--retry``,
    ``--continue`` of a failed config) that must be submitted, not reattached to the old job.
    """
    recorded = {t.out: job for t in tasks
                if not outcome_path(t.out).exists() and (job := recorded_job(t.out)) is not None}
    if not recorded:
        return {}
    try:
        states = squeue_states(recorded.values())
    except OSError as exc:
        raise ExecutorError(f"executor 'slurm': cannot ask Slurm which jobs still run ({exc})") from None
    return {out: job for out, job in recorded.items()
            if job in states and states[job][0] not in ENDED_STATES}


def job_states(folders: Iterable[Path]) -> dict[Path, str]:
    """``{folder: "queued" | "running" | "failed"}`` for config folders without a result that
    record a Slurm job Slurm still shows ("failed": it ended, e.g. TIMEOUT, with no result).

    One squeue call, and none at all when no folder records a job (``--list``).
    """
    recorded = {Path(f): job for f in folders if (job := recorded_job(Path(f))) is not None}
    if not recorded or shutil.which("squeue") is None:
        return {}
    try:
        states = squeue_states(recorded.values())
    except OSError:
        return {}
    found = {}
    for folder, job in recorded.items():
        state = states.get(job, ("", ""))[0]
        if state == "PENDING" or state == "REQUEUED" or state.startswith("REQUEUE"):
            found[folder] = "queued"
        elif state in ENDED_STATES:
            found[folder] = "failed"
        elif state:
            found[folder] = "running"
    return found


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


__all__ = ["OPTIONS", "SlurmExecutor", "check_options", "job_states", "minutes", "recorded_job"]
