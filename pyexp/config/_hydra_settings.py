"""Runner settings spelled as Hydra overrides (``pyexp.<key>=v``) or as a YAML ``pyexp:`` node.

See :mod:`pyexp.config.hydra_bridge` for the table of spellings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import OverrideError

#: Settings whose value is a string; ``continue``/``report`` also take ``true``.
_STR_KEYS = {"name", "executor", "output_dir", "continue", "report", "filter"}
_INT_KEYS = {"jobs", "viewer_port"}
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _setting_keys() -> list[str]:
    from ..cli import DEFAULTS

    return sorted(DEFAULTS)


def _parser(config_loader: Any = None) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=config_loader)


def _parse(overrides: list[str], config_loader: Any = None) -> list[Any]:
    from hydra.errors import HydraException

    parser = _parser(config_loader)
    parsed = []
    for text in overrides:
        try:
            parsed += parser.parse_overrides([text])
        except HydraException as exc:
            detail = " ".join(ln.strip() for ln in str(exc).strip().splitlines()[:3])
            raise OverrideError(
                f"cannot parse override {text!r} ({detail}); overrides look like key=value, "
                "+key=value, ++key=value or ~key (quote values with spaces or ,)"
            ) from None
        if not parsed[-1].key_or_group:  # Hydra's grammar lets "=3" through with an empty key
            raise OverrideError(f"override {text!r} has no key; overrides look like key=value")
    return parsed


def split_settings(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take the runner settings (``pyexp.<key>=v``) out of ``overrides``.

    Args:
        overrides: Hydra overrides in command-line order.

    Returns:
        ``(settings, remaining)``: settings keyed like ``pyexp.cli.DEFAULTS`` (note the
        key ``"continue"``), and the config overrides left, in their order.

    Raises:
        OverrideError: An override does not parse, names an unknown ``pyexp.<key>``,
            sweeps or deletes a setting, or gives a value of the wrong type.
    """
    settings: dict[str, Any] = {}
    remaining: list[str] = []
    for text, override in zip(overrides, _parse(overrides)):
        key = override.key_or_group
        if key != "pyexp" and not key.startswith("pyexp."):
            remaining.append(text)
            continue
        if override.is_delete() or override.is_sweep_override() or override.package is not None:
            raise OverrideError(
                f"{text}: runner settings take one value, e.g. pyexp.executor=fork; "
                "they cannot be swept, deleted or given a package"
            )
        value = override.value()
        if key == "pyexp":
            if not isinstance(value, dict):
                raise OverrideError(f"{text}: use pyexp.<setting>=value, e.g. pyexp.executor=fork")
            for sub, sub_value in value.items():
                settings[_check_key(str(sub), text)] = _typed(str(sub), sub_value, str(sub_value), text)
            continue
        name = _check_key(key[len("pyexp."):], text)
        settings[name] = _typed(name, value, override.get_value_string(), text)
    return settings, remaining


def _check_key(name: str, text: str) -> str:
    valid = _setting_keys()
    if name not in valid:
        raise OverrideError(
            f"{text}: unknown runner setting pyexp.{name}; valid keys: {', '.join(valid)}"
        )
    return name


def _typed(name: str, value: Any, raw: str, text: str) -> Any:
    """Coerce a parsed override value to the type of setting ``name``."""
    if name in _STR_KEYS:
        if name in ("continue", "report"):
            if value is True or (isinstance(value, str) and value.lower() == "latest"):
                return "latest"
            if value is False or value is None:
                return None
        if isinstance(value, str):
            return value
        if value is None:
            return None
        if isinstance(value, (int, float)):
            # 2026 or 1e-3 as typed, never a re-formatted number.
            return raw.strip().strip("'\"")
        raise OverrideError(f"{text}: pyexp.{name} takes a string, got {type(value).__name__}")
    if name == "preload":  # pyexp.preload=sklearn.datasets or pyexp.preload=[a,b]
        items = value if isinstance(value, list) else [value]
        if all(isinstance(v, str) for v in items):
            return [n for v in items for n in v.split(",") if n.strip()]
        raise OverrideError(f"{text}: pyexp.preload takes module names, e.g. pyexp.preload=[numpy,scipy]")
    if name in _INT_KEYS:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise OverrideError(f"{text}: pyexp.{name} takes a positive integer, got {raw!r}")
    # The remaining settings are switches.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.lower()]
    raise OverrideError(f"{text}: pyexp.{name} takes true or false, got {raw!r}")


def config_settings(config_dir: Path, config_name: str | None) -> dict[str, Any]:
    """Runner settings from the ``pyexp:`` node of the primary YAML config (no Hydra compose).

    ``conf/config.yaml`` may hold ``pyexp: {executor: fork, jobs: 4}``; the keys and their
    types are those of the ``pyexp.<key>=v`` overrides. Only the primary file is read, so the
    node cannot come from a config group.

    Raises:
        OverrideError: Unknown key or a value of the wrong type (the message names the file).
    """
    if config_name is None:
        return {}
    stem = config_name[:-5] if config_name.endswith(".yaml") else config_name
    path = Path(config_dir) / f"{stem}.yaml"
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from ..errors import ConfigFileError

        raise ConfigFileError(f"{path}: cannot read it ({exc})") from None
    node = data.get("pyexp") if isinstance(data, dict) else None
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise OverrideError(f"{path}: 'pyexp' must be a mapping of runner settings, e.g. pyexp: {{jobs: 2}}")
    where = f"pyexp node of {path}"
    return {_check_key(str(k), where): _typed(str(k), v, str(v), where) for k, v in node.items()}
