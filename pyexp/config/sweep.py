"""sweep(): the cartesian product of configs and variations, as a Tensor with named axes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..tensor import Tensor
from ._config import Config, _copy, _plain
from .merge import apply_ops, parse_update


# Long on purpose: most of it is the docstring the public API documents.
def sweep(configs: Any, variations: Iterable[Mapping[str, Any]]) -> Tensor:
    """Combine every config with every variation, adding one axis to the shape.

    Element ``[..., j]`` is ``merge(config, variation_j)`` (see :func:`pyexp.merge`:
    ``"a.b"`` keys set nested values, ``"**a"`` deep-merges) with the names joined by
    ``_``: ``"exp"`` + ``"lr0.1"`` -> ``"exp_lr0.1"``. A variation may set several
    keys at once (paired parameters).

    The new axis is named after the variations' keys (leading ``**`` stripped,
    joined with ``+`` in first-seen order), e.g. ``"learning_rate"`` or ``"lr+wd"``;
    the variations are kept in ``Tensor.axis_values`` so that
    ``tensor.sel(learning_rate=0.1)`` works on the configs and on their results.

    Args:
        configs: A list of dicts/Configs (shape ``(n,)``, axis ``"configs"``) or a
            Tensor of them (its shape and axes are kept).
        variations: One dict per value of the new axis.

    Returns:
        A Tensor of Config of shape ``configs.shape + (len(variations),)``.

    Raises:
        ConfigError: No variations, or a config/variation is not a dict.

    Example:
        >>> t = sweep([{"name": "exp"}], [{"name": "lr0.1", "lr": 0.1}, {"name": "lr0.01", "lr": 0.01}])
        >>> t.shape, t.axes, [c.name for c in t]
        ((1, 2), ('configs', 'lr'), ['exp_lr0.1', 'exp_lr0.01'])
    """
    base = _as_tensor(configs)
    variations = list(variations) if not isinstance(variations, Mapping) else [variations]
    if not variations:
        raise ConfigError("sweep() got no variations; pass a non-empty list of dicts, e.g. [{'lr': 0.1}]")
    parsed = []
    keys: dict[str, None] = {}
    for position, variation in enumerate(variations):
        if not isinstance(variation, Mapping):
            raise ConfigError(
                f"sweep() variation #{position} must be a dict, got {type(variation).__name__}: {variation!r}"
            )
        name = variation.get("name")
        name = "" if name is None else str(name)
        rest = {k: v for k, v in variation.items() if k != "name"}
        for k in rest:
            keys[k[2:] if isinstance(k, str) and k.startswith("**") else str(k)] = None
        parsed.append((name, parse_update(rest)))
    axis = _unique_axis("+".join(keys) or "variation", base.axes)

    out = []
    for index, config in enumerate(base):
        if not isinstance(config, Mapping):
            raise ConfigError(f"sweep() config #{index} must be a dict, got {type(config).__name__}: {config!r}")
        base_name = config.get("name")
        base_name = "" if base_name is None else str(base_name)
        for name, ops in parsed:
            merged = apply_ops(config, ops)
            full = f"{base_name}_{name}" if base_name and name else base_name or name
            if full:
                dict.__setitem__(merged, "name", full)
            out.append(merged)
    values = base.axis_values
    values[axis] = [_plain(v) for v in variations]
    return Tensor(out, base.shape + (len(variations),), base.axes + (axis,), axis_values=values)


def _as_tensor(configs: Any) -> Tensor:
    if isinstance(configs, Tensor):
        return configs
    if isinstance(configs, Mapping):
        return Tensor([_copy(configs)], axes=("configs",))
    if isinstance(configs, (list, tuple)):
        return Tensor([c if isinstance(c, Config) else _copy(c) for c in configs], axes=("configs",))
    raise ConfigError(
        f"sweep() needs a list of config dicts or a Tensor from a previous sweep(), got {type(configs).__name__}"
    )


def _unique_axis(axis: str, existing: tuple[str, ...]) -> str:
    if axis not in existing:
        return axis
    n = 2
    while f"{axis}_{n}" in existing:
        n += 1
    return f"{axis}_{n}"


def as_config_tensor(value: Any, where: str) -> Any:
    """Normalise what a configs function returned into a ``Tensor`` of ``Config``.

    Accepts a list/tuple of dicts (shape ``(n,)``), a single dict, or a ``Tensor``
    (e.g. from :func:`pyexp.sweep`), whose shape and axes are kept.
    """
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
