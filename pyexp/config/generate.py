"""Phase 1 input: turn a ``configs()`` function (and any CLI overrides) into a Tensor of Config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .sweep import as_config_tensor


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
        from . import hydra_bridge

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
