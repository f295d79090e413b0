"""``@chkpt``: checkpoint boundaries with retries, for Experiment methods and plain helper functions."""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Callable, TypeVar, overload

from ..errors import CheckpointError
from ..executors.task import current_out
from . import files as store


F = TypeVar("F", bound=Callable[..., Any])


@overload
def chkpt(fn: F) -> F: ...


@overload
def chkpt(fn: None = None, *, retry: int = 1) -> Callable[[F], F]: ...


def chkpt(fn: Any = None, *, retry: int = 1) -> Any:
    """Make a method (or helper function) a checkpoint boundary, optionally retried.

    On a method of an :class:`Experiment`: before it runs, if
    ``<config out>/.checkpoints/<method>.pkl`` exists, ``self``'s attributes are restored
    from it and the method is skipped (its stored return value is returned); otherwise it
    runs and ``self``'s attributes and its return value are saved there atomically. So
    after a failure, ``--continue`` skips every checkpointed method that had finished.
    A method called with arguments is keyed by its name plus a hash of them
    (``<method>-<hash>.pkl``), so each distinct call has its own checkpoint. The n-th call
    of the same method with the same arguments (a loop of ``self.train_epoch()``) is saved
    as ``<method>-call<n>.pkl``: a resumed run replays the calls in the same order and
    restores each one in turn, up to the first that had not finished.

    On a plain function called inside a ``@pyexp.experiment`` function (or anywhere
    during a config's run): its return value is saved in the running config's
    ``.checkpoints/<function>-<hash of its arguments>.pkl`` and returned from there next time.

    Outside a pyexp run (no config folder) the method or function just runs, with retries.

    Args:
        fn: The method or function (when used bare as ``@chkpt``).
        retry: Total number of attempts, including the first (default 1: no retry).
            ``@chkpt(retry=3)`` runs the method at most 3 times: once, and then up to
            2 more times if it raises an ``Exception``. The attributes a failed attempt
            assigned on ``self`` are rolled back before the next one (objects it mutated
            in place are not). After the last failed attempt the exception propagates
            and the config fails. KeyboardInterrupt and SystemExit are never retried.

    Raises:
        CheckpointError: ``retry`` is not an int >= 1, or the state cannot be pickled
            (the message names the attribute and the method).
    """
    if fn is None:
        _check_retry(retry)
        return lambda f: _wrap(f, retry)
    if not callable(fn):
        raise CheckpointError(f"@chkpt({fn!r}): give the number of attempts by name, as @chkpt(retry={fn!r})")
    _check_retry(retry)
    return _wrap(fn, retry)


def _check_retry(retry: Any) -> None:
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 1:
        raise CheckpointError(f"@chkpt(retry={retry!r}): retry is the total number of attempts, "
                              "an int >= 1 (retry=3 runs the method at most 3 times)")


def _wrap(fn: F, retry: int) -> F:
    if not callable(fn):
        raise CheckpointError(f"@chkpt can only decorate a function or method, not {fn!r}")
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
        raise CheckpointError(f"@chkpt cannot decorate {fn.__qualname__}: async and generator "
                              "functions are not supported")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # A method of an object that keeps its state with pyexp (an Experiment): checked by its
        # hook rather than its class, so this lower layer never imports pyexp.experiment.
        if args and callable(getattr(type(args[0]), "_pyexp_state", None)):
            return _call_method(fn, retry, args[0], args[1:], kwargs)
        return _call_function(fn, retry, args, kwargs)

    wrapper.__pyexp_chkpt__ = retry  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _call_method(fn: Callable[..., Any], retry: int, exp: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    label = f"{type(exp).__name__}.{fn.__name__}()"
    out = exp.__dict__.get("out")
    if out is None:
        return _attempts(lambda: fn(exp, *args, **kwargs), retry, label, exp)
    key = fn.__name__
    if args or kwargs:
        key += f"-{store.digest(_arguments(fn, (exp, *args), kwargs, 1))}"
    # The n-th call with the same key (a method called in a loop) gets its own file, so a
    # resumed run, replaying the same calls in the same order, restores each one in turn.
    calls = exp.__dict__.setdefault("_pyexp_calls", {})
    calls[key] = calls.get(key, 0) + 1
    if calls[key] > 1:
        key += f"-call{calls[key]}"
    path = store.folder(out) / f"{key}{store.SUFFIX}"
    found = store.load(path, f"{label} runs again")
    if found is not None:
        exp.__dict__.update(found.state or {})
        # Calls made inside the skipped method count too, or later calls would get wrong keys.
        exp.__dict__["_pyexp_calls"] = dict(found.calls or calls)
        return found.value
    value = _attempts(lambda: fn(exp, *args, **kwargs), retry, label, exp)
    store.save(path, exp._pyexp_state(), value, label, calls=dict(exp.__dict__["_pyexp_calls"]))
    return value


def _call_function(fn: Callable[..., Any], retry: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    label = f"{fn.__qualname__}()"
    out = current_out()
    if out is None:
        return _attempts(lambda: fn(*args, **kwargs), retry, label, None)
    key = f"{fn.__name__}-{store.digest(fn.__module__, fn.__qualname__, _arguments(fn, args, kwargs, 0))}"
    path = store.folder(out) / f"{key}{store.SUFFIX}"
    found = store.load(path, f"{label} runs again")
    if found is not None:
        return found.value
    value = _attempts(lambda: fn(*args, **kwargs), retry, label, None)
    store.save(path, None, value, label)
    return value


def _arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], skip: int) -> Any:
    """The call's arguments by name, defaults filled in: ``f(3)`` and ``f(n=3)`` share a key."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return (args[skip:], kwargs)  # a bad call fails when the function runs, with Python's own message
    bound.apply_defaults()
    return list(bound.arguments.items())[skip:]


def _attempts(call: Callable[[], Any], retry: int, label: str, exp: Any) -> Any:
    for attempt in range(1, retry + 1):
        before = dict(exp.__dict__) if exp is not None else None
        calls_before = dict(exp.__dict__.get("_pyexp_calls", {})) if exp is not None else {}
        try:
            return call()
        except CheckpointError:
            raise  # a nested checkpoint that cannot be saved fails the same way every time
        except Exception as exc:
            if attempt == retry:
                if retry > 1 and hasattr(exc, "add_note"):  # Python 3.11+
                    exc.add_note(f"pyexp: {label} gave up after {retry} attempts")
                raise
            print(f"pyexp: {label} failed (attempt {attempt} of {retry}): {store.describe_exception(exc)}; "
                  "retrying", file=sys.stderr, flush=True)
            if exp is not None and before is not None:
                _roll_back(exp, before)
                exp.__dict__["_pyexp_calls"] = calls_before
    raise AssertionError("unreachable")  # pragma: no cover


def _roll_back(exp: Any, before: dict[str, Any]) -> None:
    """Undo the attributes a failed attempt assigned; pyexp's own (``_pyexp_*``: the logger) stay."""
    d = exp.__dict__
    for key in [k for k in d if k not in before and not k.startswith("_pyexp")]:
        del d[key]
    d.update({k: v for k, v in before.items() if not k.startswith("_pyexp")})
