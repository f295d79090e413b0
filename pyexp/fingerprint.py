"""Code fingerprints: which source files an experiment runs, and a hash of their contents.

The experiment's file is parsed (``ast``) and every ``import`` in it — also those inside
functions, which only run in the child — is resolved to a ``.py`` file of the same project
tree; those files are followed the same way. Modules of the standard library and of
installed packages (anything under ``sys.prefix`` or a ``site-packages`` folder) are not part
of the experiment's code and are left out. The fingerprint is a hash over the sorted
``(relative path, content hash)`` pairs, so it changes exactly when one of those files does.

A run computes it once, in the parent. A recorded state keeps each file's ``(mtime, size)``
and imports beside its hash (in ``runs.json``); computing again from it re-reads only files
whose ``stat`` changed, so a fingerprint of an unchanged project costs a handful of ``stat``
calls and no cache file is written anywhere.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

#: Markers of a project's top folder, nearest first wins (a git work tree beats a package).
_ROOT_MARKERS = (".git",)
_PACKAGE_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


@dataclass(frozen=True)
class CodeState:
    """The experiment's source files as they are now (or were when a run recorded them).

    Attributes:
        fingerprint: 16 hex digits over every file's relative path and content.
        files: Relative path (``/``-separated, from ``root``) -> content hash of that file.
        root: The project's top folder (git work tree, else the folder with pyproject.toml,
            else the experiment file's folder).
        file: The experiment's file, relative to ``root``.
        search: Folders (relative to ``root``) imports were resolved against.
        commit: The git snapshot's commit of the run, when there is one.
        stats: Relative path -> ``[mtime_ns, size, imports]`` when hashed: lets the next
            computation skip files that did not change.
    """

    fingerprint: str
    files: dict[str, str]
    root: str
    file: str
    search: tuple[str, ...] = ()
    commit: str | None = None
    stats: dict[str, list[Any]] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The full record kept in ``runs.json`` (per-file hashes let ``diff-code`` work without git)."""
        return {"fingerprint": self.fingerprint, "commit": self.commit, "root": self.root, "file": self.file,
                "search": list(self.search), "files": dict(self.files), "stats": dict(self.stats)}

    @property
    def short(self) -> dict[str, Any]:
        """What each outcome records: the fingerprint and the snapshot's commit."""
        return {"fingerprint": self.fingerprint, "commit": self.commit}

    @classmethod
    def from_json(cls, data: Any) -> "CodeState | None":
        """The state ``to_json`` wrote, or None for a run that recorded none (or garbage)."""
        if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
            return None
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        stats = data.get("stats") if isinstance(data.get("stats"), dict) else {}
        return cls(data["fingerprint"], {str(k): str(v) for k, v in files.items()}, str(data.get("root", "")),
                   str(data.get("file", "")), tuple(str(s) for s in data.get("search") or ()),
                   data.get("commit") if isinstance(data.get("commit"), str) else None, stats)


def project_root(file: Path) -> Path:
    """The top folder of the project holding ``file``: its git work tree, else its package, else its folder."""
    start = file.parent
    for markers in (_ROOT_MARKERS, _PACKAGE_MARKERS):
        for folder in (start, *start.parents):
            if any(os.path.exists(os.path.join(folder, m)) for m in markers):
                return folder
    return start


def _installed_prefixes() -> tuple[str, ...]:
    """Folders whose modules are installed software, not the project's code."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    return tuple(sorted(prefixes))


def _is_project_file(path: str, root: str, installed: tuple[str, ...]) -> bool:
    if not (path == root or path.startswith(root + os.sep)):
        return False
    if "site-packages" in path or "dist-packages" in path:
        return False
    # A virtualenv inside the project tree is still installed software. The root itself may
    # lie inside a prefix (a project checked out below /usr), so only prefixes below it count.
    return not any(path.startswith(p + os.sep) and p.startswith(root + os.sep) for p in installed)


def search_dirs(file: Path, root: Path, sys_path: Iterable[str] | None = None) -> list[Path]:
    """Where the experiment's imports are found: its folder, then ``sys.path`` entries inside the project."""
    root_s, installed = str(root), _installed_prefixes()
    found: list[Path] = [file.parent]
    for entry in sys.path if sys_path is None else sys_path:
        real = Path(os.path.realpath(entry or os.getcwd()))
        if real not in found and real.is_dir() and _is_project_file(str(real), root_s, installed):
            found.append(real)
    return found


class _Cache:
    """Absolute path -> ``[mtime_ns, size, hash, imports]``, seeded from a recorded state."""

    def __init__(self, seed: CodeState | None):
        self.entries: dict[str, list[Any]] = {}
        if seed is not None:
            for rel, stat in seed.stats.items():
                digest = seed.files.get(rel)
                if digest is not None and isinstance(stat, list) and len(stat) == 3:
                    self.entries[os.path.join(seed.root, *rel.split("/"))] = [stat[0], stat[1], digest, stat[2]]

    def lookup(self, path: str) -> tuple[str, list[list[Any]]] | None:
        """``(content hash, imports)`` of ``path``; parses and hashes it on a miss. None if unreadable."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        hit = self.entries.get(path)
        if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return hit[2], hit[3]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        digest = hashlib.sha256(data).hexdigest()[:16]
        imports = _imports_of(data, path)
        self.entries[path] = [st.st_mtime_ns, st.st_size, digest, imports]
        return digest, imports


def _imports_of(source: bytes, path: str) -> list[list[Any]]:
    """Every import in ``source`` as ``[level, module, names]``; a file that does not parse imports nothing."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError):
        return []
    found: list[list[Any]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend([0, alias.name, []] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append([node.level, node.module or "", [a.name for a in node.names if a.name != "*"]])
    return found


def _module_files(base: str, dotted: str) -> list[str] | None:
    """The files that importing ``dotted`` below ``base`` executes (each package's ``__init__`` and the
    module), or None when ``base`` does not hold that module."""
    files, folder = [], base
    parts = [p for p in dotted.split(".") if p]
    for i, part in enumerate(parts):
        candidate = os.path.join(folder, part)
        init = os.path.join(candidate, "__init__.py")
        if os.path.isfile(init):
            files.append(init)
            folder = candidate
        elif i == len(parts) - 1 and os.path.isfile(candidate + ".py"):
            files.append(candidate + ".py")
        elif os.path.isdir(candidate):
            folder = candidate  # a namespace package: no __init__, the modules below still count
        else:
            return None
    return files


def _resolve(entry: list[Any], importer: str, search: list[str]) -> list[str]:
    level, module, names = entry
    if level:
        base = os.path.dirname(importer)
        for _ in range(level - 1):
            base = os.path.dirname(base)
        bases = [base]
    else:
        bases = search
    for base in bases:
        files = _module_files(base, module) if module else []
        if files is None:
            continue
        # `from pkg import mod` may import a submodule rather than a name.
        pkg = os.path.join(base, *module.split(".")) if module else base
        for name in names:
            sub = _module_files(pkg, name)
            files.extend(sub[-1:] if sub else [])
        return files
    return []


def compute(file: Path | str, seed: CodeState | None = None, commit: str | None = None,
            search: Iterable[str] | None = None, root: Path | str | None = None) -> CodeState:
    """The :class:`CodeState` of the experiment in ``file`` as it is on disk now.

    Args:
        file: The experiment's source file.
        seed: An earlier state of this project: files whose mtime and size it recorded are not read.
        commit: The git snapshot's commit to record with it.
        search: Import folders relative to the root (as a run recorded them); None: from ``sys.path``.
        root: The project's top folder; None: found from ``file``.
    """
    file = Path(os.path.realpath(file))
    root_path = Path(os.path.realpath(root)) if root else project_root(file)
    if search is None:
        dirs = search_dirs(file, root_path)
    else:
        dirs = [Path(os.path.normpath(root_path / s)) for s in search]
    root_s, installed = str(root_path), _installed_prefixes()
    dir_s = [str(d) for d in dirs]
    cache = _Cache(seed)
    hashes: dict[str, str] = {}
    todo = [str(file)]
    while todo:
        path = todo.pop()
        if path in hashes:
            continue
        got = cache.lookup(path)
        if got is None:
            continue  # deleted between the import scan and now: not part of the code any more
        hashes[path] = got[0]
        for entry in got[1]:
            for found in _resolve(entry, path, dir_s):
                real = os.path.realpath(found)
                if real not in hashes and _is_project_file(real, root_s, installed):
                    todo.append(real)
    files = {Path(p).relative_to(root_path).as_posix(): h for p, h in hashes.items()}
    stats = {Path(p).relative_to(root_path).as_posix(): [cache.entries[p][0], cache.entries[p][1], cache.entries[p][3]]
             for p in hashes}
    digest = hashlib.sha256("\n".join(f"{k}\0{v}" for k, v in sorted(files.items())).encode()).hexdigest()[:16]
    relative = tuple(os.path.relpath(d, root_path) for d in dirs)
    return CodeState(digest, files, str(root_path), file.relative_to(root_path).as_posix(), relative, commit,
                     stats)


def now_of(recorded: CodeState) -> CodeState:
    """The same experiment's code as it is on disk today, found the way ``recorded`` was."""
    return compute(Path(recorded.root) / recorded.file, recorded, search=recorded.search, root=recorded.root)


@dataclass
class CodeDiff:
    """How the experiment's sources differ between a run and today."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # imported now, not then
    removed: list[str] = field(default_factory=list)  # imported then, not now (or deleted)

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)


def diff(then: CodeState, now: CodeState) -> CodeDiff:
    """Which source files changed between two states of one experiment."""
    return CodeDiff(
        changed=sorted(k for k in then.files.keys() & now.files.keys() if then.files[k] != now.files[k]),
        added=sorted(now.files.keys() - then.files.keys()),
        removed=sorted(then.files.keys() - now.files.keys()),
    )
