"""Hydra on pyexp's command line: overrides, ``-m`` sweep axes, YAML config groups.

Everything after the script name that is not a pyexp flag is a Hydra override,
parsed by Hydra's own ``OverridesParser`` (imported only when there are any).

Runner settings spelled ``pyexp.<key>=v`` are taken out first by :mod:`pyexp.settings`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, OverrideError
from .overrides import parse_overrides, parser

__all__ = ["generate", "sweep_axis"]


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
    override_parser = parser(loader)
    items = []
    for text, override in zip(overrides, parse_overrides(overrides, loader)):
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
            item.parsed = [override_parser.parse_overrides([item.line(i)])[0] for i in range(len(item.values))]
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


def _takes_base(configs_fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(configs_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _where(configs_fn: Any) -> str:
    name = getattr(configs_fn, "__qualname__", "configs")
    code = getattr(configs_fn, "__code__", None)
    return f"{name}() in {code.co_filename}" if code is not None else f"{name}()"


# Long on purpose: the row-major walk over sweep combinations keeps its
# per-combination caches (composed bases, resolved configs) in local variables.
def _build(configs_fn: Callable[..., Any] | None, items: list[_Item], composer: Any) -> Any:
    """The configs of every combination of swept values, row-major: configs' own axes first."""
    from .sweep import as_config_tensor
    from ..tensor import Tensor
    from ._config import Config
    from ._hydra_apply import apply_value, kind_of

    sweeps = [it for it in items if it.sweep]
    sweep_pos = {id(it): n for n, it in enumerate(sweeps)}
    values_items = [it for it in items if not it.group]
    combos = list(itertools.product(*(range(len(it.values)) for it in sweeps)))

    def pick(it: _Item, combo: tuple[int, ...]) -> int:
        return combo[sweep_pos[id(it)]] if it.sweep else 0

    def label(combo: tuple[int, ...]) -> str:
        return " ".join(it.line(pick(it, combo)) for it in items if it.sweep or it.group) or "no overrides"

    # The configs of each combination before the command line's values are re-applied.
    per_combo: dict[tuple[int, ...], Any] = {}
    if composer is None:
        shared = as_config_tensor(configs_fn(), _where(configs_fn))  # type: ignore[misc]
        per_combo = dict.fromkeys(combos, shared)
    else:
        once = None
        stem = (composer.config_name or "config").removesuffix(".yaml")
        for combo in combos:
            # compose() caches by group choices: one Hydra compose per distinct combination.
            composed = composer.compose(tuple(it.line(pick(it, combo)) for it in items if it.group))
            chosen = [it.parsed[pick(it, combo)] for it in values_items]
            if configs_fn is not None and not _takes_base(configs_fn):
                if once is None:
                    once = as_config_tensor(configs_fn(), _where(configs_fn))
                per_combo[combo] = once
                continue
            # Values land before interpolations resolve, so ${lr} elsewhere follows lr=0.1.
            base = Config(_resolve(composer, composed, chosen, label(combo)))
            if configs_fn is None:
                if base.get("name") in (None, ""):
                    dict.__setitem__(base, "name", stem)
                per_combo[combo] = Tensor([base], axes=("configs",))
            else:
                per_combo[combo] = as_config_tensor(configs_fn(base), _where(configs_fn))

    first = per_combo[combos[0]]
    for combo, tensor in per_combo.items():
        if tensor.shape != first.shape:
            raise ConfigError(
                f"{_where(configs_fn)} returned shape {tensor.shape} for {label(combo)} but {first.shape} "
                f"for {label(combos[0])}; with swept overrides, configs(base) must return the same shape "
                "for every combination"
            )
    axes, axis_values = list(first.axes), first.axis_values
    for it in sweeps:
        axis, entries = sweep_axis(it.key, it.spelled, it.values, axes)
        axes.append(axis)
        axis_values[axis] = entries

    # The command line beats configs(): its values are applied to every config it returned
    # (leniently when the base already received them, so +key and ~key do not fail twice).
    reapply = configs_fn is not None
    lenient = composer is not None
    out = []
    for s in range(first.size):
        for combo in combos:
            config = per_combo[combo].flat[s].copy()
            if reapply:
                where = f"config {config.get('name', s)!r}"
                for it in values_items:
                    i = pick(it, combo)
                    apply_value(config, kind_of(it.override), it.key, it.values[i], it.line(i), where, lenient)
            suffix = "_".join(f"{it.key}={it.spelled[i]}" for it, i in zip(sweeps, combo))
            if suffix:
                name = config.get("name")
                dict.__setitem__(config, "name", f"{name}_{suffix}" if name not in (None, "") else suffix)
            out.append(config)
    shape = tuple(first.shape) + tuple(len(it.values) for it in sweeps)
    return Tensor(out, shape, axes, axis_values=axis_values)


def sweep_axis(key: str, spelled: list[str], values: list[Any], taken: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """The named axis one swept override adds (also used by the ``hydra/sweeper=pyexp`` plugin).

    Args:
        key: The override's key (``lr`` for ``+lr=0.1,0.01``).
        spelled: Each value as typed on the command line.
        values: Each value as Python sees it.
        taken: Axis names already used; a repeated key becomes ``lr_2``, ``lr_3``...

    Returns:
        The axis name and one ``{"name": "lr=0.1", "lr": 0.1}`` per value, the form
        ``Tensor.sel`` and ``runs.json`` use.
    """
    axis, n = key, 2
    while axis in taken:
        axis, n = f"{key}_{n}", n + 1
    return axis, [{"name": f"{key}={s}", key: v} for s, v in zip(spelled, values)]


def _resolve(composer: Any, composed: Any, chosen: list[Any], label: str) -> dict[str, Any]:
    """A composed DictConfig with value overrides applied by Hydra's own function, then resolved."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    cfg = composed
    if chosen:
        cfg = OmegaConf.create(composed)  # a copy: the composed base is shared
        OmegaConf.set_struct(cfg, False)  # `key=v` may add a key, as for plain configs
        try:
            ConfigLoaderImpl._apply_overrides_to_config(chosen, cfg)
        except HydraException as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            raise OverrideError(f"{str(exc).strip()}{cause}".replace("\n", " ")) from None
    return composer.to_plain(cfg, label)
