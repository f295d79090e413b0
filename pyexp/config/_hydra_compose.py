"""Hydra's compose API behind a cache: one ``compose`` per distinct group-choice combination.

Composing costs ~60 ms, so a sweep over values never composes per config: the
configs of one group choice share one composed (unresolved) config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigFileError, OverrideError


class Composer:
    """An initialised Hydra for ``config_dir``; use as a context manager."""

    def __init__(self, config_dir: Path, config_name: str | None):
        self.config_dir = Path(config_dir)
        self.config_name = config_name
        self._cache: dict[tuple[str, ...], Any] = {}
        self._init: Any = None
        self.loader: Any = None

    def __enter__(self) -> "Composer":
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        if not self.config_dir.is_dir():
            raise ConfigFileError(
                f"config_path {str(self.config_dir)!r} is not a directory; config_path is relative "
                "to the experiment file (e.g. config_path='conf')"
            )
        if self.config_name is not None:
            stem = self.config_name[:-5] if self.config_name.endswith(".yaml") else self.config_name
            if not (self.config_dir / f"{stem}.yaml").is_file():
                raise ConfigFileError(
                    f"config_name {self.config_name!r}: {self.config_dir / (stem + '.yaml')} does not "
                    "exist; create it or fix config_name"
                )
        from hydra.version import VersionBase

        # initialize_config_dir sets Hydra's process-wide version base; put it back on exit so a
        # @hydra.main app run later in this process keeps its own defaults.
        self._version_base = VersionBase.instance().getbase()
        self._init = initialize_config_dir(
            config_dir=str(self.config_dir.resolve()), version_base=None,
            job_name=(self.config_name or "app").removesuffix(".yaml"),
        )
        self._init.__enter__()
        self.loader = GlobalHydra.instance().config_loader()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._init is not None:
            from hydra.version import VersionBase

            self._init.__exit__(*exc)
            self._init = None
            VersionBase.instance().version_base = self._version_base

    def is_group(self, override: Any) -> bool:
        """Whether ``override`` picks a config group option (``model=mlp``) rather than a value."""
        if override.package is not None or override.is_hydra_override():
            return True
        key = override.key_or_group
        try:
            return bool(self.loader.repository.group_exists(key))
        except AttributeError:  # a future Hydra without ``repository``: ask the public API
            return bool(self.loader.get_group_options(key))

    def compose(self, overrides: tuple[str, ...]) -> Any:
        """The composed config (an OmegaConf DictConfig, interpolations unresolved), cached."""
        cached = self._cache.get(overrides)
        if cached is None:
            from hydra import compose
            from hydra.errors import HydraException
            from omegaconf import OmegaConf
            from omegaconf.errors import OmegaConfBaseException

            try:
                cached = compose(config_name=self.config_name, overrides=list(overrides))
            except (HydraException, OmegaConfBaseException) as exc:
                shown = " ".join(overrides) or "no overrides"
                raise OverrideError(
                    f"composing {self._where()} with {shown} failed: {_first_line(exc)}"
                ) from exc
            OmegaConf.set_struct(cached, False)  # `key=v` may add keys, as for plain configs
            self._cache[overrides] = cached
        return cached

    def _where(self) -> str:
        name = self.config_name or "(no config_name)"
        return f"{name} in {self.config_dir}"

    def to_plain(self, cfg: Any, label: str) -> dict[str, Any]:
        """Resolve interpolations and return plain containers without the ``hydra``/``pyexp`` nodes."""
        from omegaconf import OmegaConf
        from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

        try:
            plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except MissingMandatoryValue as exc:
            key = getattr(exc, "full_key", None) or "?"
            raise OverrideError(
                f"{label}: {key!r} is mandatory (??? in {self._where()}); set it on the command line, "
                f"e.g. {key}=<value>"
            ) from None
        except OmegaConfBaseException as exc:
            raise OverrideError(f"{label}: cannot resolve the config from {self._where()}: "
                                f"{_first_line(exc)}") from None
        if not isinstance(plain, dict):
            raise ConfigFileError(f"{self._where()} must hold a mapping at the top level")
        plain.pop("hydra", None)
        plain.pop("pyexp", None)
        return plain


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__
