"""Phase 1 input: turn a ``configs()`` function (and any CLI overrides) into a Tensor of Config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError


def as_config_tensor(value: Any, where: str) -> Any:
    """Normalise what a configs function returned into a ``Tensor`` of ``Config``.

    Accepts a list/tuple of dicts (shape ``(n,)``), a single dict, or a ``Tensor``
    (e.g. from :func:`pyexp.sweep`), whose shape and axes are kept.
    """
    from .config import Config
    from .tensor import Tensor

    if isinstance(value, Tensor):
        tensor = value
    elif isinstance(value, Mapping):
        tensor = Tensor([value], axes=("configs",))
    elif isinstance(value, (list, tuple)):
        tensor = Tensor(list(value), axes=("configs",))
    else:
        raise ConfigError(
            f"{where} must return a list of config dicts or a sweep() result, "
            f"got {type(value).__name__}"
        )
    if tensor.size == 0:
        raise ConfigError(f"{where} returned no configs; return at least one dict")
    for index, item in enumerate(tensor):
        if not isinstance(item, Mapping):
            raise ConfigError(
                f"{where} returned an item of type {type(item).__name__} at position {index}; "
                "every config must be a dict"
            )
        if "out" in item:
            raise ConfigError(
                f"config {item.get('name', index)!r} from {where} sets 'out', which pyexp reserves "
                "for the config's output folder; rename that key"
            )
    return tensor.map(lambda item: item if isinstance(item, Config) else Config(item))


def generate(
    configs_fn: Callable[..., Any] | None,
    *,
    overrides: list[str],
    multirun: bool,
    config_dir: Path | None,
    config_name: str | None,
    where: str,
) -> Any:
    """Call the configs function and apply CLI overrides / Hydra config groups (Hydra only if needed)."""
    if overrides or config_dir is not None or multirun:
        from .config import hydra_bridge

        return hydra_bridge.generate(
            configs_fn, overrides=overrides, multirun=multirun,
            config_dir=config_dir, config_name=config_name,
        )
    if configs_fn is None:
        raise ConfigError(
            f"{where}: no configs; decorate a function with @<experiment>.configs "
            "or pass configs=... to run()"
        )
    return as_config_tensor(configs_fn(), where)
