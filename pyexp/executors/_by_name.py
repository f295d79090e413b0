"""Which functions and classes travel to a fork-served config by name instead of by value.

The pyexp process pickles each task with :func:`task_pickler`: a function or class of its
``__main__`` becomes a reference ``(MAIN_REF, name, wrapped)`` when the fork-server's
``__mp_main__`` holds the very same code under that top-level name (directly, or as what a
decorator wraps, like ``@pyexp.experiment``); anything else goes by value with cloudpickle. In the
child, :class:`TaskUnpickler` resolves the references, so the function runs with the module's
own globals, as it would in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import types
from typing import Any, Callable

#: Persistent-id tag of a function or class looked up by name in ``__mp_main__``.
MAIN_REF = "pyexp-main"


def fingerprint(obj: Any) -> str | None:
    """A digest of a function's (or a class's methods') code: equal only for the same source."""
    if isinstance(obj, types.FunctionType):
        codes = [obj.__code__]
    elif isinstance(obj, type):
        codes = [v.__code__ for _, v in sorted(vars(obj).items()) if isinstance(v, types.FunctionType)]
        codes.insert(0, obj.__qualname__)  # type: ignore[arg-type]
    else:
        return None
    digest = hashlib.sha1()
    for code in codes:
        _digest_code(digest, code)
    return digest.hexdigest()


def _digest_code(digest: Any, code: Any) -> None:
    # Not marshal.dumps: its output depends on reference counts, so it differs between processes.
    if isinstance(code, frozenset):  # `x in {"a", "b"}`: its order changes with the hash seed
        digest.update(repr(sorted(map(repr, code))).encode())
        return
    if not isinstance(code, types.CodeType):
        digest.update(repr(code).encode())
        return
    digest.update(code.co_code)
    digest.update(repr((code.co_filename, code.co_firstlineno, code.co_names, code.co_varnames)).encode())
    for const in code.co_consts:
        _digest_code(digest, const)


def catalog(module: types.ModuleType) -> dict[str, dict[str, str | None]]:
    """For each top-level name: the fingerprint of the object and of what it wraps (a decorator)."""
    found: dict[str, dict[str, str | None]] = {}
    for name, obj in list(vars(module).items()):
        entry = {"direct": fingerprint(obj), "wrapped": fingerprint(getattr(obj, "__wrapped__", None))}
        if entry["direct"] or entry["wrapped"]:
            found[name] = entry
    return found


class TaskUnpickler(pickle.Unpickler):
    """Resolves the parent's ``__main__`` functions and classes in this process's ``__mp_main__``."""

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 3 and pid[0] == MAIN_REF:
            obj = getattr(sys.modules["__mp_main__"], pid[1])
            return obj.__wrapped__ if pid[2] else obj
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def task_pickler(theirs: dict[str, dict[str, str | None]]) -> Callable[[Any], bytes]:
    """A function pickling a task for a fork-server whose main module has catalog ``theirs``."""
    import cloudpickle

    refs: dict[int, tuple[Any, Any]] = {}

    def reference(obj: Any) -> Any:
        if id(obj) not in refs:
            ref = None
            name = obj.__qualname__
            top = getattr(sys.modules.get("__main__"), name, None) if name.isidentifier() else None
            wrapped = top is not obj and getattr(top, "__wrapped__", None) is obj
            if top is obj or wrapped:
                expected = theirs.get(name, {}).get("wrapped" if wrapped else "direct")
                if expected is not None and expected == fingerprint(obj):
                    ref = (MAIN_REF, name, wrapped)
            refs[id(obj)] = (obj, ref)  # obj kept alive so its id is not reused
        return refs[id(obj)][1]

    class Pickler(cloudpickle.CloudPickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == "__main__":
                return reference(obj)
            return None

    def dumps(task: Any) -> bytes:
        buf = io.BytesIO()
        Pickler(buf, protocol=5).dump(task)
        return buf.getvalue()

    return dumps
