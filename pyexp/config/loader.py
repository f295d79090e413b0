"""YAML in and out: load_config() with ``imports:`` composition, and to_yaml().

OmegaConf and PyYAML are imported inside the functions so that importing
pyexp stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from ..errors import ConfigError, ConfigFileError, ImportCycleError
from ._config import Config
from .merge import merge

PathLike = Union[str, "os.PathLike[str]"]


def load_config(path: PathLike | list[PathLike] | tuple[PathLike, ...]) -> Config:
    """Load one YAML config file, or several merged in order (later files win).

    A file may list other files under ``imports:`` (paths relative to the
    importing file); they are loaded first, in order, and the file's own keys are
    applied on top with :func:`pyexp.merge` semantics: ``model.hidden_size: 512``
    sets one nested value, ``**model: {...}`` deep-merges, and a plain
    ``model: {...}`` replaces the whole value. OmegaConf ``${...}``
    interpolations are resolved once everything is merged.

    Args:
        path: A YAML file, or a list of them (an empty list gives an empty Config).

    Returns:
        The merged config.

    Raises:
        ConfigFileError: A file is missing, unreadable, not a mapping, or not valid
            YAML (the message names the file, the importing file, and the line).
        ImportCycleError: An ``imports:`` chain loops back (the message shows it).

    Example:
        >>> cfg = load_config("experiment.yaml")   # imports base.yaml
        >>> cfg.model.hidden_size
        512
    """
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    result = Config()  # an empty list of files is an empty config, as in the original pyexp
    for item in paths:
        file = Path(os.fspath(item)).expanduser().absolute()
        result = _apply_file(result, file, chain=(), importer=None, root=file.parent)
    return _resolve_interpolations(result, paths)


def _apply_file(base: Config, file: Path, chain: tuple[Path, ...], importer: Path | None, root: Path) -> Config:
    """Apply ``file`` (its imports first, then its own keys) on top of ``base``.

    Applying rather than loading-then-merging lets a dotted key of a later file
    or import reach into values set by earlier ones.
    """
    real = _real(file)
    if real in chain:
        loop = " -> ".join(_show(p, root) for p in chain + (real,))
        raise ImportCycleError(f"config imports loop back on themselves: {loop}; remove one of these imports")
    data = _read_yaml(file, importer)
    imports = data.pop("imports", None)
    if imports is None:
        imports = []
    elif isinstance(imports, (str, os.PathLike)):
        imports = [imports]
    elif not isinstance(imports, list) or not all(isinstance(i, (str, os.PathLike)) for i in imports):
        raise ConfigFileError(f"{file}: 'imports' must be a list of YAML file paths, got {imports!r}")
    merged = base
    for entry in imports:
        target = Path(os.path.expanduser(os.fspath(entry)))
        if not target.is_absolute():
            target = file.parent / target
        merged = _apply_file(merged, target, chain + (real,), file, root)
    try:
        return merge(merged, data)
    except ConfigError as exc:
        raise ConfigFileError(f"{file}: {exc}") from None


def _read_yaml(file: Path, importer: Path | None) -> dict[Any, Any]:
    import yaml
    from omegaconf import OmegaConf

    if not file.is_file():
        where = f" (imported by {importer})" if importer is not None else ""
        kind = "is a directory, not a file" if file.is_dir() else "not found"
        raise ConfigFileError(f"config file {file} {kind}{where}; check the path")
    try:
        loaded = OmegaConf.load(file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None and start is not mark:
            problem += f" ({context} at line {start.line + 1})"
        if mark is not None and _line(file, mark.line).lstrip().startswith("**"):
            problem += "; YAML reads a leading '*' as an alias: quote deep-merge keys, e.g. '**model': {...}"
        raise ConfigFileError(f"{file}{line}: invalid YAML: {problem}") from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {file}: {exc.strerror or exc}") from None
    except Exception as exc:  # OmegaConf wraps some loader errors in its own types
        raise ConfigFileError(f"{file}: cannot load YAML: {exc}") from None
    if not OmegaConf.is_dict(loaded):
        raise ConfigFileError(
            f"{file}: a config file must hold a mapping of keys to values at the top level, "
            f"not a {type(loaded).__name__}"
        )
    data = OmegaConf.to_container(loaded, resolve=False)
    return dict(data) if isinstance(data, Mapping) else {}


def _line(file: Path, index: int) -> str:
    try:
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return lines[index] if 0 <= index < len(lines) else ""


def _resolve_interpolations(config: Config, paths: list[Any]) -> Config:
    if not _has_interpolation(config):
        return config
    from omegaconf import OmegaConf

    try:
        resolved = OmegaConf.to_container(OmegaConf.create(config.to_dict()), resolve=True)
    except Exception as exc:
        files = ", ".join(str(p) for p in paths)
        raise ConfigFileError(f"{files}: cannot resolve an interpolation: {exc}") from None
    return Config(resolved)


def _has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_interpolation(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_interpolation(v) for v in value)
    return False


def _real(file: Path) -> Path:
    try:
        return file.resolve()
    except OSError:
        return file


def _show(file: Path, root: Path) -> str:
    try:
        return os.path.relpath(file, root.resolve())
    except ValueError:
        return str(file)


def to_yaml(config: Mapping[str, Any]) -> str:
    """The config as YAML text (keys in insertion order; Paths and odd objects as strings).

    Args:
        config: A Config or any mapping.

    Returns:
        YAML text that ``load_config`` reads back to the same values.
    """
    import yaml

    return yaml.safe_dump(_yaml_safe(config), sort_keys=False, default_flow_style=False, allow_unicode=True)


def _yaml_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {(k if isinstance(k, (str, int, float, bool)) else str(k)): _yaml_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_yaml_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)  # numpy/torch scalars: log the number, not its repr
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            plain = item()
        except Exception:
            plain = None
        if isinstance(plain, (bool, int, float, str)):
            return plain
    tolist = getattr(value, "tolist", None)  # small arrays logged as lists
    if callable(tolist) and getattr(value, "ndim", 0) > 0:
        try:
            return _yaml_safe(tolist())
        except Exception:
            pass
    return str(value)
