"""One config folder's files: their names, the outcome and result, failed attempts' logs.

``pyexp.store`` re-exports every name here and stays the place to ask. Kept apart from the runs:
these helpers act on a single ``<config name>-<hash>/`` folder and need nothing about runs, so
executors, the scheduler and the Logger's neighbours reach them without the run bookkeeping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import outcome as _outcome
from .._files import atomic_link, atomic_write_bytes, drop_leftovers, dump_json
from ..log._constants import MARKER as LOG_MARKER
from ..outcome import Outcome

CONFIG_FILE = "config.json"
RESULT_FILE = "result.pkl"
OUTCOME_FILE = "outcome.json"
LOG_FILE = "log.out"
ATTEMPT_LOG = "log.attempt-{}.out"  # a failed attempt's log.out while the config is retried
CHECKPOINT_DIR = ".checkpoints"
CLAIM_FILE = ".claim"
PAYLOAD_FILE = ".task.pkl"
#: Slurm: the config's job id (``<array>_<index>``), its payload kept for requeued restarts, and
#: submitit's folder in the run (its sbatch scripts, pickles and the jobs' own logs).
SLURM_JOB_FILE = ".slurm_job"
SLURM_PAYLOAD_FILE = ".slurm_task.pkl"
SLURM_DIR = ".slurm"
#: The Hydra launcher's JobReturn minus the return value (status, cfg, hydra cfg, working dir).
HYDRA_JOB_FILE = "hydra_job.pkl"


def result_path(folder: Path | str) -> Path:
    return Path(folder) / RESULT_FILE


def outcome_path(folder: Path | str) -> Path:
    return Path(folder) / OUTCOME_FILE


def hydra_job_path(folder: Path | str) -> Path:
    return Path(folder) / HYDRA_JOB_FILE


def log_path(folder: Path | str) -> Path:
    return Path(folder) / LOG_FILE


def checkpoint_dir(folder: Path | str) -> Path:
    return Path(folder) / CHECKPOINT_DIR


def has_log(folder: Path | str) -> bool:
    """Whether the experiment used a Logger in ``folder``."""
    return (Path(folder) / LOG_MARKER).exists()


def publish_outcome(folder: Path | str, outcome: Outcome, *, result_written: bool = False) -> Outcome:
    """Store a config's outcome (``result.pkl`` then ``outcome.json``); see :func:`pyexp.outcome.publish`."""
    return _outcome.publish(outcome, result_path(folder), outcome_path(folder), result_written=result_written)


def read_outcome(folder: Path | str, *, verify: bool = True) -> Outcome | None:
    """A config's stored outcome (None: pending); a damaged result reads as an error outcome."""
    return _outcome.read(os.path.join(folder, RESULT_FILE), os.path.join(folder, OUTCOME_FILE), verify=verify)


def load_result(folder: Path | str) -> Any:
    """The stored return value of a finished config (StoreError if it cannot be unpickled)."""
    return _outcome.load_value(result_path(folder))


def forget_outcome(folder: Path | str) -> None:
    """Remove a stored outcome and any half-written one (before a config runs again)."""
    _outcome.unpublish(result_path(folder), outcome_path(folder))
    drop_partial_writes(folder)


def link_result(source: Path, target: Path, outcome: Outcome, origin: str) -> bool:
    """``--reuse``: make ``target``'s result the very ``result.pkl`` of ``source`` and publish an
    outcome marked ``reused_from=origin``. False (nothing changed) if the file cannot be linked.

    A hard link, or a symlink across file systems: either way ``result.pkl`` stays a plain
    pickle that ``pickle.load`` reads, and nothing is copied. Results are replaced, never
    written in place, so running the config again later never touches the earlier run's file.
    """
    try:
        atomic_link(result_path(source), result_path(target))
        atomic_write_bytes(outcome_path(target), dump_json({**outcome.record(), "reused_from": origin}))
    except OSError:
        return False
    return True


def keep_attempt_log(folder: Path | str, attempt: int, note: str) -> None:
    """Move ``log.out`` aside as failed attempt ``attempt``'s log, ending with ``note``, before a retry.

    The next attempt writes a fresh ``log.out``; :func:`join_attempt_logs` puts them together.
    """
    kept = Path(folder) / ATTEMPT_LOG.format(attempt)
    try:
        os.replace(log_path(folder), kept)
    except FileNotFoundError:
        pass
    with open(kept, "a", encoding="utf-8") as f:
        f.write(f"\n{note}\n")


def join_attempt_logs(folder: Path | str) -> None:
    """Make ``log.out`` every attempt's log in order (earlier failed ones first), once the last one ended."""
    folder = Path(folder)
    kept = sorted(folder.glob(ATTEMPT_LOG.format("*")), key=lambda p: int(p.name.split("-")[1].split(".")[0]))
    if not kept:
        return
    try:
        last = log_path(folder).read_bytes()
    except FileNotFoundError:
        last = b""
    atomic_write_bytes(log_path(folder), b"".join(p.read_bytes() for p in kept) + last)
    for path in kept:
        path.unlink()


def drop_partial_writes(folder: Path | str) -> None:
    """Remove temp files of result/outcome writes that a kill cut short."""
    for name in (RESULT_FILE, OUTCOME_FILE):
        drop_leftovers(Path(folder), name)


def status_of(outcome: Outcome | None) -> str:
    """The one mapping from a stored outcome to ``"done"``/``"failed"``/``"pending"``."""
    if outcome is None:
        return "pending"
    return "done" if outcome.ok else "failed"



def result_stamp(folder: Path) -> tuple[int, int, int, int] | None:
    """Identity of the folder's outcome (changes whenever a new one is published), or None."""
    try:
        st = os.stat(os.path.join(folder, OUTCOME_FILE))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size

