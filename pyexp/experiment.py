"""The ``@pyexp.experiment`` decorator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, overload

if TYPE_CHECKING:
    from .runner import ExperimentRunner


@overload
def experiment(fn: Callable[..., Any]) -> ExperimentRunner: ...


@overload
def experiment(
    fn: None = None, *, name: str | None = None, output_dir: str | Path | None = None,
    executor: Any = None, stash: bool | None = None, viewer: bool | None = None,
    viewer_port: int | None = None, jobs: int | None = None, config_path: str | None = None,
    config_name: str | None = None, timestamp: bool | str | None = None, rerun: bool | None = None,
) -> Callable[[Callable[..., Any]], ExperimentRunner]: ...


def experiment(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Turn ``fn(config[, logger])`` into an :class:`ExperimentRunner`.

    Use bare (``@pyexp.experiment``) or with options: ``name``, ``output_dir``,
    ``executor`` (name or Executor), ``stash``, ``viewer``, ``viewer_port``, ``jobs``,
    and ``config_path``/``config_name`` to compose a Hydra config from YAML groups.
    ``timestamp=False`` (earlier API) stores configs in ``out/<name>/<config>-<hash>/``
    without a timestamp level, skipping those with a result.
    """
    from .runner import ExperimentRunner  # here, so `import pyexp` does not load the runner

    if fn is not None:
        return ExperimentRunner(fn, **options)
    return lambda f: ExperimentRunner(f, **options)
