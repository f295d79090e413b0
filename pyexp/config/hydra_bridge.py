"""Hydra on pyexp's command line: overrides, ``-m`` sweep axes, YAML config groups.

Everything after the script name that is not a pyexp flag is a Hydra override,
parsed by Hydra's own ``OverridesParser`` (imported only when there are any).

Runner settings as overrides (the ``pyexp`` node)
-------------------------------------------------
Every runner flag also has a Hydra spelling; ``pyexp.<key>=v``, ``+pyexp.<key>=v``
and ``++pyexp.<key>=v`` all mean the same. An explicit flag beats its override.

=============================  ===========================================
flag                           Hydra override
=============================  ===========================================
``--name NAME``                ``pyexp.name=NAME``
``--executor fork``            ``pyexp.executor=fork`` (``'ray://h:1'`` quoted)
``--output-dir DIR``           ``pyexp.output_dir=DIR``
``--continue``                 ``+pyexp.continue=true`` (or ``=latest``)
``--continue=TS``              ``+pyexp.continue=TS`` (kept as the exact string)
``--report`` / ``--report=TS`` ``pyexp.report=true`` / ``pyexp.report=TS``
``--list``                     ``pyexp.list=true``
``--filter REGEX``             ``pyexp.filter='REGEX'`` (quote ``,=()[]{}``)
``-s`` / ``--capture=no``      ``pyexp.capture=false`` (``no``/``yes`` work too)
``--viewer``                   ``pyexp.viewer=true``
``--viewer-port 8080``         ``pyexp.viewer_port=8080``
``--no-stash``                 ``pyexp.stash=false``
``-j 4`` / ``--jobs 4``        ``pyexp.jobs=4``
``-m`` / ``--multirun``        ``pyexp.multirun=true``
``--skip-failed``              ``pyexp.skip_failed=true``
=============================  ===========================================

The same keys may sit in a ``pyexp:`` node of the primary YAML config
(:func:`config_settings`); that node never reaches a config.

Config overrides
----------------
Without ``config_path``, ``configs()`` runs first and each value override then
applies to every config: ``lr=0.5`` sets ``lr`` (adding it if missing),
``+key=v`` adds (error if present), ``++key=v`` adds or replaces, ``~key`` deletes.

With ``-m``, every swept override (``lr=0.1,0.01``, ``range(1,4)``, ``choice(a,b)``,
``glob(*)`` over a config group) appends ONE axis named after its key, after the
configs' own axes, in command-line order; ``Tensor.sel(lr=0.1)`` selects by value.
Each swept value adds ``_<key>=<value>`` to the config name (``exp`` ->
``exp_lr=0.1_model=mlp``), spelled as on the command line, so names are readable
and, after :func:`pyexp.store.sanitize_name`, safe folder names. ``interval()``
cannot be enumerated and is rejected; a sweep without ``-m`` is an error.

With ``@pyexp.experiment(config_path="conf", config_name="config")`` the base
config is composed by Hydra (defaults lists, group choices such as
``model=transformer``, interpolations) ONCE per distinct group-choice combination.
``configs(base)`` then receives it as a plain Config, or, without a configs
function, the composed config is the one config (named by its ``name`` key or by
``config_name``); value overrides are applied to it before interpolations are
resolved, so ``${lr}`` elsewhere follows ``lr=0.1``. The ``hydra`` and ``pyexp``
nodes never reach a config.
"""

from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, OverrideError
from ._hydra_settings import _parse, _parser, config_settings, split_settings

__all__ = ["config_settings", "generate", "split_settings"]


# -- generate ------------------------------------------------------------------------------


@dataclass
class _Item:
    """One config override; a sweep has several ``values``."""

    override: Any
    group: bool
    sweep: bool
    values: list[Any] = field(default_factory=list)  # python values
    spelled: list[str] = field(default_factory=list)  # value as typed, per value
    parsed: list[Any] = field(default_factory=list)  # single-value Override per value (compose path)

    @property
    def key(self) -> str:
        return self.override.key_or_group

    def line(self, i: int) -> str:
        return f"{self.override.get_key_element()}={self.spelled[i]}" if self.spelled[i] is not None \
            else self.override.get_key_element()


def generate(
    configs_fn: Callable[..., Any] | None,
    *,
    overrides: list[str],
    multirun: bool,
    config_dir: Path | None,
    config_name: str | None,
) -> Any:
    """Build the Tensor of Config for a fresh run from ``configs_fn`` plus command-line overrides.

    Args:
        configs_fn: ``configs()`` or ``configs(base)`` (base = the composed YAML config),
            or None to use the composed config itself (needs ``config_dir``).
        overrides: Config overrides in command-line order (runner settings already removed).
        multirun: Whether sweeps are allowed (``-m``); each sweep adds one named axis.
        config_dir: Absolute folder of the YAML config groups, or None.
        config_name: Primary config in ``config_dir`` (``"config"`` for ``config.yaml``).

    Returns:
        A Tensor of Config with shape ``configs shape + (one size per swept key,)``.

    Raises:
        OverrideError: An override cannot be parsed or applied, a sweep lacks ``-m``,
            or an ``interval()`` sweep was given.
        ConfigError: No configs function and no config_dir, or shapes do not agree.
    """
    if configs_fn is None and config_dir is None:
        raise ConfigError(
            "no configs: decorate a function with @<experiment>.configs, pass configs=... to run(), "
            "or give @pyexp.experiment(config_path=..., config_name=...)"
        )
    if config_dir is None:
        return _build(configs_fn, _items(overrides, multirun, None), None)
    from ._hydra_compose import Composer

    with Composer(Path(config_dir), config_name) as composer:
        return _build(configs_fn, _items(overrides, multirun, composer), composer)


def _items(overrides: list[str], multirun: bool, composer: Any) -> list[_Item]:
    from hydra.core.override_parser.types import Override

    loader = composer.loader if composer is not None else None
    parser = _parser(loader)
    items = []
    for text, override in zip(overrides, _parse(overrides, loader)):
        group = composer is not None and composer.is_group(override)
        if not group and override.is_hydra_override():
            raise OverrideError(
                f"{text}: hydra.* settings only apply with config groups "
                "(@pyexp.experiment(config_path=..., config_name=...)); drop it"
            )
        if not group and override.package is not None:
            raise OverrideError(f"{text}: '@package' only applies to config group overrides")
        item = _Item(override, group, override.is_sweep_override())
        if override.is_interval_sweep():
            raise OverrideError(
                f"{text}: interval() is a continuous range that cannot be enumerated into runs; "
                "list the values (lr=0.1,0.01) or use range(start,stop,step)"
            )
        if item.sweep:
            if not multirun:
                raise OverrideError(
                    f"{text} sweeps over several values; add -m (--multirun) to run one config per value"
                )
            raws = _sweep_values(override, text)
            item.values = [Override._convert_value(r) for r in raws]
            item.spelled = [Override._get_value_element_as_str(r) for r in raws]
        else:
            has_value = override.value_type is not None
            item.values = [override.value()]
            item.spelled = [override.get_value_element_as_str() if has_value else None]
        if composer is not None and not group:
            item.parsed = [parser.parse_overrides([item.line(i)])[0] for i in range(len(item.values))]
        items.append(item)
    return items


def _sweep_values(override: Any, text: str) -> list[Any]:
    from hydra.errors import HydraException

    try:
        values = list(override.sweep_iterator())
    except HydraException as exc:
        if "ConfigLoader" in str(exc):
            raise OverrideError(
                f"{text}: glob() picks options of a config group, and {override.key_or_group!r} is not "
                "one; use a list (a,b) or set config_path/config_name on the experiment"
            ) from None
        raise OverrideError(f"{text}: {exc}") from None
    if not values:
        raise OverrideError(f"{text} sweeps over no values; nothing would run")
    return values


def _call_configs(configs_fn: Callable[..., Any], base: Any) -> Any:
    try:
        params = [p for p in inspect.signature(configs_fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        params = []
    if base is not None and params:
        return configs_fn(base)
    return configs_fn()


def _where(configs_fn: Any) -> str:
    name = getattr(configs_fn, "__qualname__", "configs")
    code = getattr(configs_fn, "__code__", None)
    return f"{name}() in {code.co_filename}" if code is not None else f"{name}()"


def _build(configs_fn: Callable[..., Any] | None, items: list[_Item], composer: Any) -> Any:
    from ..generate import as_config_tensor
    from ..tensor import Tensor
    from ._config import Config
    from ._hydra_apply import apply_value, kind_of

    sweeps = [it for it in items if it.sweep]
    group_sweeps = [it for it in sweeps if it.group]

    def compose_overrides(choice: dict[int, int]) -> tuple[str, ...]:
        return tuple(it.line(choice.get(id(it), 0)) for it in items if it.group)

    # One base per distinct group-choice combination (compose is the expensive step).
    bases: dict[tuple[int, ...], Any] = {}
    for combo in itertools.product(*(range(len(it.values)) for it in group_sweeps)):
        choice = {id(it): i for it, i in zip(group_sweeps, combo)}
        if composer is None:
            bases[combo] = as_config_tensor(configs_fn(), _where(configs_fn))  # type: ignore[misc]
            break  # without groups there is exactly one combination
        composed = composer.compose(compose_overrides(choice))
        if configs_fn is None:
            bases[combo] = composed
        else:
            plain = Config(composer.to_plain(composed, _label(group_sweeps, combo)))
            bases[combo] = as_config_tensor(_call_configs(configs_fn, plain), _where(configs_fn))

    first = next(iter(bases.values()))
    if configs_fn is None:
        base_shape, base_axes, axis_values = (1,), ("configs",), {}
    else:
        base_shape, base_axes, axis_values = first.shape, first.axes, first.axis_values
        for combo, tensor in bases.items():
            if tensor.shape != base_shape:
                raise ConfigError(
                    f"{_where(configs_fn)} returned shape {tensor.shape} for {_label(group_sweeps, combo)} "
                    f"but {base_shape} for {_label(group_sweeps, next(iter(bases)))}; when sweeping a "
                    "config group, configs(base) must return the same shape for every choice"
                )

    axes = list(base_axes)
    for it in sweeps:
        axis = it.key
        n = 2
        while axis in axes:
            axis, n = f"{it.key}_{n}", n + 1
        axes.append(axis)
        axis_values[axis] = [{"name": f"{it.key}={s}", it.key: v} for s, v in zip(it.spelled, it.values)]

    sweep_pos = {id(it): n for n, it in enumerate(sweeps)}
    group_index = [sweep_pos[id(it)] for it in group_sweeps]
    values_items = [it for it in items if not it.group]
    out = []
    for s in range(math.prod(base_shape)):
        for combo in itertools.product(*(range(len(it.values)) for it in sweeps)):
            g = tuple(combo[k] for k in group_index)
            suffix = "_".join(f"{it.key}={it.spelled[i]}" for it, i in zip(sweeps, combo))
            if configs_fn is None:
                config = _from_composed(composer, bases[g], values_items, sweep_pos, combo, suffix)
            else:
                config = bases[g].flat[s].copy()
                where = f"config {config.get('name', s)!r}"
                for it in values_items:
                    i = combo[sweep_pos[id(it)]] if it.sweep else 0
                    apply_value(config, kind_of(it.override), it.key, it.values[i], it.line(i), where)
                if suffix:
                    name = config.get("name")
                    dict.__setitem__(config, "name", f"{name}_{suffix}" if name not in (None, "") else suffix)
            out.append(config)
    shape = tuple(base_shape) + tuple(len(it.values) for it in sweeps)
    return Tensor(out, shape, axes, axis_values=axis_values)


def _from_composed(composer: Any, composed: Any, values_items: list[_Item], sweep_pos: dict[int, int],
                   combo: tuple[int, ...], suffix: str) -> Any:
    """One config from a composed DictConfig: value overrides first, then interpolations resolve."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from ._config import Config

    cfg = composed
    chosen = [it.parsed[combo[sweep_pos[id(it)]] if it.sweep else 0] for it in values_items]
    if chosen:
        cfg = OmegaConf.create(composed)  # a copy: the composed base is shared
        OmegaConf.set_struct(cfg, False)
        try:
            ConfigLoaderImpl._apply_overrides_to_config(chosen, cfg)
        except HydraException as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            raise OverrideError(f"{str(exc).strip()}{cause}".replace("\n", " ")) from None
    plain = composer.to_plain(cfg, suffix or "the composed config")
    stem = (composer.config_name or "config").removesuffix(".yaml")
    name = plain.get("name")
    base_name = str(name) if name not in (None, "") else stem
    plain["name"] = f"{base_name}_{suffix}" if suffix else base_name
    return Config(plain)


def _label(group_sweeps: list[_Item], combo: tuple[int, ...]) -> str:
    return " ".join(it.line(i) for it, i in zip(group_sweeps, combo)) or "the composed config"
