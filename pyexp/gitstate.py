"""Reproducible code snapshots: a commit of the work tree as it is, pinned under refs/pyexp/.

``git stash create`` misses untracked files and its commits are garbage once unreferenced. Here
the work tree (tracked and untracked-but-not-ignored files) is added to a *temporary* index
(``GIT_INDEX_FILE``), written as a tree, committed with HEAD as parent (none in a repo without
commits) and pinned as ``refs/pyexp/<ref_name>`` so ``git gc`` keeps it. The user's index,
work tree, HEAD and branches are never touched. Browse a snapshot with
``git show refs/pyexp/<name>`` or ``git checkout <hash> -- .``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]+")
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "pyexp", "GIT_AUTHOR_EMAIL": "pyexp@localhost",
    "GIT_COMMITTER_NAME": "pyexp", "GIT_COMMITTER_EMAIL": "pyexp@localhost",
}


class _GitFailed(Exception):
    pass


def sanitize_ref(name: str) -> str:
    """Turn ``name`` into a valid ref suffix (``git check-ref-format`` rules)."""
    parts = []
    for part in _BAD_REF_CHARS.sub("_", name).split("/"):
        part = part.replace("..", "_").replace("@{", "_")
        part = part.lstrip(".").rstrip(".")
        if part.endswith(".lock"):
            part = part[:-5] + "_lock"
        if part:
            parts.append(part)
    return "/".join(parts) or "snapshot"


MAX_UNTRACKED_BYTES = 50 * 2**20


def snapshot(path: Path, ref_name: str, exclude: Sequence[str | os.PathLike[str]] = (),
             max_untracked_bytes: int | None = MAX_UNTRACKED_BYTES) -> str | None:
    """Commit the work tree containing ``path`` without touching it; pin it at refs/pyexp/.

    Args:
        path: Any file or folder inside a git work tree.
        ref_name: Name under ``refs/pyexp/`` (e.g. ``"<experiment>/<timestamp>"``); characters
            git forbids in ref names are replaced by ``_``.
        exclude: Paths (absolute or relative to the work tree) left out of the snapshot, e.g.
            the experiment's output folder when it is not git-ignored.
        max_untracked_bytes: Untracked files larger than this are left out with a warning
            naming them (a forgotten dataset or model file should not bloat the repository);
            None keeps every file. Tracked files are always included.

    Returns:
        The commit hash, or None outside a git work tree or when git is not installed. Other
        git failures warn and return None: a missing snapshot must not stop an experiment.
    """
    path = Path(path)
    start = path if path.is_dir() else path.parent
    if shutil.which("git") is None or not start.exists():
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_INDEX_FILE", "GIT_WORK_TREE")}
    try:
        top = _git(["rev-parse", "--show-toplevel"], start, env).strip()
    except _GitFailed:
        return None  # not a work tree (or a bare repository)
    if not top:
        return None
    try:
        return _snapshot(Path(top), sanitize_ref(ref_name), exclude, env, max_untracked_bytes)
    except (_GitFailed, OSError) as exc:
        warnings.warn(f"pyexp could not snapshot the git state of {top}: {exc}", stacklevel=2)
        return None


def _is_ignored(top: Path, relative: Path, env: dict[str, str]) -> bool:
    try:
        _git(["check-ignore", "-q", "--", relative.as_posix()], top, env)
    except _GitFailed:
        return False  # exit 1: not ignored
    return True


def _snapshot(top: Path, ref: str, exclude: Sequence[str | os.PathLike[str]],
              env: dict[str, str], max_untracked_bytes: int | None) -> str:
    tree = _worktree_tree(top, exclude, env, max_untracked_bytes)
    try:
        parent = _git(["rev-parse", "--verify", "-q", "HEAD^{commit}"], top, env).strip()
    except _GitFailed:
        parent = ""  # a repository without commits yet
    args = ["commit-tree", tree, "-m", f"pyexp snapshot {ref}"]
    if parent:
        args[2:2] = ["-p", parent]
    cenv = env
    try:
        _git(["var", "GIT_COMMITTER_IDENT"], top, env)
        _git(["var", "GIT_AUTHOR_IDENT"], top, env)
    except _GitFailed:
        cenv = {**_FALLBACK_IDENTITY, **env}  # no user.name/email configured
    commit = _git(args, top, cenv).strip()
    _git(["update-ref", "-m", "pyexp snapshot", f"refs/pyexp/{ref}", commit], top, env)
    return commit


def changed_since(path: Path, commit: str, exclude: Sequence[str | os.PathLike[str]] = ()) -> list[tuple[str, str]]:
    """Files of the work tree holding ``path`` that differ from snapshot ``commit``.

    The work tree is taken as a snapshot would take it (tracked and untracked, not ignored
    files, without touching the index), so a file created since counts as added.

    Returns:
        ``(status, path)`` pairs sorted by path: status ``A`` added, ``M`` modified, ``D``
        deleted (``T`` type change); paths are relative to the work tree's top.

    Raises:
        StoreError: ``path`` is not in a git work tree, or ``commit`` is not in its repository.
    """
    from .errors import StoreError

    start = Path(path) if Path(path).is_dir() else Path(path).parent
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_INDEX_FILE", "GIT_WORK_TREE")}
    if shutil.which("git") is None:
        raise StoreError("git is not installed: cannot compare with the run's snapshot")
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], start, env).strip())
        _git(["cat-file", "-e", f"{commit}^{{commit}}"], top, env)
    except _GitFailed as exc:
        raise StoreError(f"{start}: cannot find snapshot {commit[:12]} in its git repository ({exc})") from None
    try:
        tree = _worktree_tree(top, exclude, env, MAX_UNTRACKED_BYTES)
        out = _git(["diff", "--name-status", "-z", "--no-renames", commit, tree], top, env)
    except _GitFailed as exc:
        raise StoreError(f"{top}: cannot compare the work tree with snapshot {commit[:12]} ({exc})") from None
    parts = out.split("\0")
    pairs = [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2) if parts[i]]
    return sorted(pairs, key=lambda p: p[1])


def _worktree_tree(top: Path, exclude: Sequence[str | os.PathLike[str]], env: dict[str, str],
                   max_untracked_bytes: int | None) -> str:
    """A tree object of the work tree (tracked + untracked, not ignored), built in a temporary index."""
    index = top / _git(["rev-parse", "--git-path", "index"], top, env).strip()
    with tempfile.TemporaryDirectory(prefix="pyexp-git-") as tmp:
        tmp_index = Path(tmp) / "index"
        if index.exists():
            # Starting from the user's index lets git reuse its cached file stats (fast); the
            # copy is what gets modified, never the original.
            shutil.copyfile(index, tmp_index)
        genv = dict(env, GIT_INDEX_FILE=str(tmp_index))
        pathspec = ["--", "."]
        for item in exclude:
            item_path = Path(item)
            if item_path.is_absolute():
                try:
                    item_path = item_path.resolve().relative_to(top.resolve())
                except ValueError:
                    continue  # outside the work tree: nothing to exclude
            if _is_ignored(top, item_path, env):
                continue  # already left out; git add refuses a pathspec naming an ignored path
            pathspec.append(f":(exclude,literal){item_path.as_posix()}")
        if max_untracked_bytes is not None:
            big = _large_untracked(top, genv, max_untracked_bytes, pathspec)
            if big:
                warnings.warn(f"pyexp's git snapshot of {top} leaves out {len(big)} untracked "
                              f"file(s) over {max_untracked_bytes} bytes: {big[:5]}; git-ignore "
                              "or commit them", stacklevel=3)
                pathspec += [f":(exclude,literal){name}" for name in big]
        _git(["add", "-A", *pathspec], top, genv)
        return _git(["write-tree"], top, genv).strip()


def _large_untracked(top: Path, env: dict[str, str], limit: int, pathspec: list[str]) -> list[str]:
    names = _git(["ls-files", "-z", "--others", "--exclude-standard", *pathspec], top, env)
    big = []
    for name in filter(None, names.split("\0")):
        try:
            if (top / name).stat().st_size > limit:
                big.append(name)
        except OSError:
            continue
    return big


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _GitFailed(f"git {args[0]}: {exc}") from exc
    if done.returncode != 0:
        raise _GitFailed(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[:500]}")
    return done.stdout
