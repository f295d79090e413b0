"""register / build: instantiate classes named by a config's ``type`` key."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Callable, TypeVar, overload

from ..errors import ConfigError, RegistryError, UnknownTypeError

T = TypeVar("T")

# name -> classes registered under it, oldest first. Several classes may share a
# name (a notebook cell re-run, two modules with an "MLP"); build() picks the
# newest one that fits the requested base class.
_REGISTRY: dict[str, list[type]] = {}


@overload
def register(cls: type[T], /) -> type[T]: ...


@overload
def register(*, name: str | None = None) -> Callable[[type[T]], type[T]]: ...


def register(cls: type[T] | str | None = None, /, *, name: str | None = None) -> Any:
    """Make a class buildable from a config whose ``type`` is its name.

    Use bare (``@register``, registered under the class name) or with a name
    (``@register(name="mlp")`` or ``@register("mlp")``).

    Args:
        cls: The class (when used as a bare decorator).
        name: The name to register under instead of the class name.

    Returns:
        The class, unchanged (or a decorator that returns it).
    """
    def add(target: type[T]) -> type[T]:
        if not isinstance(target, type):
            raise RegistryError(f"@register decorates classes, got {type(target).__name__}: {target!r}")
        key = name or target.__name__
        same = [c for c in _REGISTRY.get(key, []) if _ident(c) != _ident(target)]
        _REGISTRY[key] = same + [target]
        return target

    if isinstance(cls, str):  # @register("mlp") reads naturally too
        name, cls = cls, None
    if cls is not None:
        return add(cls)
    return add


def build(cls_or_base: type[T], cfg: Any, /, *args: Any, **overrides: Any) -> T:
    """Instantiate ``cfg["type"]`` (a registered class name) with the rest of ``cfg`` as kwargs.

    Without a ``type`` key, ``cls_or_base`` itself is instantiated (the original pyexp
    required ``type``; pyexp builds the base class). ``type`` may also be a class, or a
    dotted ``"module.Class"`` path. The built class must be ``cls_or_base`` or a
    subclass of it.

    Args:
        cls_or_base: The expected class or base class.
        cfg: A Config or dict of constructor arguments (``{}`` for the defaults), or an
            existing instance (returned as is after the type check).
        *args: Positional constructor arguments, passed before the config's keywords
            (``build(Head, cfg, backbone)`` calls ``Head(backbone, **cfg)``).
        **overrides: Constructor arguments that win over ``cfg``.

    Returns:
        The new (or given) instance.

    Raises:
        ConfigError: ``cfg`` is None (a ValueError).
        UnknownTypeError: Unknown ``type`` (a KeyError; the message lists the registered names).
        RegistryError: A class that is not a subclass of ``cls_or_base``, or arguments
            the constructor does not accept (a TypeError).

    Example:
        >>> build(MLP, {"type": "MLP", "hidden_size": 512}, num_layers=4)
    """
    if not isinstance(cls_or_base, type):
        raise RegistryError(f"build() needs a class as first argument, got {cls_or_base!r}")
    if cfg is None:
        raise ConfigError(
            f"build({cls_or_base.__name__}, None): the config is None (a missing config key?); "
            f"pass a dict of arguments ({{}} for the defaults) or an instance"
        )
    if not isinstance(cfg, Mapping):
        return _existing(cls_or_base, cfg, args, overrides)
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    kwargs.update(overrides)
    chosen = _choose(cls_or_base, cfg.get("type"))
    import inspect  # only here: importing it costs more than the rest of pyexp.config

    try:
        inspect.signature(chosen).bind(*args, **kwargs)
    except TypeError as exc:
        given = f"{len(args)} positional argument(s) and " if args else ""
        raise RegistryError(
            f"cannot build {chosen.__name__} from {given}config keys {sorted(map(str, kwargs))}: {exc}"
        ) from None
    except ValueError:
        pass  # no introspectable signature (some builtins): let the call decide
    return chosen(*args, **kwargs)


def _existing(base: type[T], instance: Any, args: tuple[Any, ...], overrides: dict[str, Any]) -> T:
    if not isinstance(instance, base):
        raise RegistryError(
            f"build({base.__name__}, ...) got an instance of {type(instance).__name__}, "
            f"which is not a {base.__name__}"
        )
    if args or overrides:
        raise RegistryError(
            f"build() got an existing {type(instance).__name__} instance and extra arguments; "
            "pass a config dict to build a new one with them"
        )
    return instance


def _choose(base: type, wanted: Any) -> type:
    if wanted is None:
        return base
    if isinstance(wanted, type):
        candidates = [wanted]
    elif isinstance(wanted, str):
        candidates = list(_REGISTRY.get(wanted, []))
        if not candidates and wanted in (base.__name__, base.__qualname__):
            candidates = [base]
        if not candidates and "." in wanted:
            candidates = _import_class(wanted)
        if not candidates:
            fitting = sorted(k for k, v in _REGISTRY.items() if any(issubclass(c, base) for c in v))
            raise UnknownTypeError(
                f"unknown type {wanted!r} for {base.__name__}; registered {base.__name__} types are "
                f"{fitting or '(none)'} (all registered: {sorted(_REGISTRY) or '(none)'}); "
                "decorate the class with @register or fix 'type'"
            )
    else:
        raise RegistryError(f"config key 'type' must be a class name, got {type(wanted).__name__}: {wanted!r}")
    fitting = [c for c in candidates if issubclass(c, base)]
    if not fitting:
        found = candidates[-1]
        raise RegistryError(
            f"type {wanted if isinstance(wanted, str) else found.__name__!r} is "
            f"{found.__module__}.{found.__qualname__}, which is not a subclass of {base.__name__}"
        )
    return fitting[-1]


def _import_class(dotted: str) -> list[type]:
    module_name, _, attr = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return []
    return [found] if isinstance(found, type) else []


def _ident(cls: type) -> tuple[str, str]:
    return (cls.__module__, cls.__qualname__)


def registered() -> dict[str, type]:
    """Registered names and the newest class under each (for error messages and tooling)."""
    return {k: v[-1] for k, v in _REGISTRY.items() if v}
