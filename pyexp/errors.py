"""Every error pyexp raises on purpose.

User mistakes raise a subclass of :class:`PyexpError` whose message names the
file or key involved and says how to fix it. The CLI prints such an error as a
single line (set ``PYEXP_DEBUG=1`` for the traceback)::

    PyexpError                       (also the built-in in brackets)
    ├── ConfigError              [ValueError]   a config value, key or name is wrong
    │   ├── ConfigFileError                     a YAML file is missing, unreadable or malformed
    │   │   └── ImportCycleError                an ``imports:`` chain loops back on itself
    │   └── OverrideError                       a command-line override cannot be applied
    ├── UsageError               [ValueError]   a command-line argument is unknown or malformed
    ├── NoMatchError             [IndexError]   a Tensor glob or dict query matched no element
    ├── RegistryError            [TypeError]    ``build()`` got a mistyped ``type`` or bad arguments
    │   └── UnknownTypeError     [KeyError]     ``build()`` got a ``type`` nobody registered
    ├── ExecutorError                           an executor cannot start
    │   ├── UnknownExecutorError [KeyError]     an executor name is unknown
    │   └── MissingExtraError    [ImportError]  an optional dependency is not installed
    ├── StoreError                              a run folder or one of its files is missing/corrupt
    │   └── RunNotFoundError     [RuntimeError, FileNotFoundError]  no (such) previous run
    ├── CheckpointError                         a ``@chkpt`` state cannot be saved or restored
    ├── LogError                                a log cannot be written or read
    │   └── TagNotFoundError     [KeyError]     a tag (or a tag at an iteration) is not in the log
    └── ViewerError              [ValueError]   the viewer refuses a path or query

Every class is exported from ``pyexp`` (``pyexp.ConfigError``...).
"""

from __future__ import annotations

# Each error also derives from the built-in an ``except`` clause written for the original
# pyexp catches: ValueError for bad configs and values, KeyError for unknown names,
# IndexError for queries that match nothing, RuntimeError for a run that is not there.


class PyexpError(Exception):
    """Base class of every error pyexp raises on purpose."""


class ConfigError(PyexpError, ValueError):
    """A config value, key or name is wrong."""


class ConfigFileError(ConfigError):
    """A YAML config file is missing, unreadable or malformed."""


class ImportCycleError(ConfigFileError):
    """An ``imports:`` chain imports a file that is already being loaded."""


class OverrideError(ConfigError):
    """A command-line override cannot be parsed or applied."""


class UsageError(PyexpError, ValueError):
    """A command-line argument is unknown or malformed (the CLI prints it as one line, exit 1)."""


class NoMatchError(PyexpError, IndexError):
    """A glob or dict query on a Tensor matched no element (an ``IndexError``, like any bad index)."""


class _UnknownName(KeyError):
    """A KeyError whose ``str()`` is its message (KeyError alone would print it quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RegistryError(PyexpError, TypeError):
    """``build()`` got a type that does not fit its base class, or arguments it cannot use."""


class UnknownTypeError(RegistryError, _UnknownName):
    """``build()`` was asked for a ``type`` no class is registered under (also a KeyError)."""


class ExecutorError(PyexpError):
    """An executor cannot start."""


class UnknownExecutorError(ExecutorError, _UnknownName):
    """No executor has the given name (also a KeyError)."""


class MissingExtraError(ExecutorError, ImportError):
    """An optional dependency is missing; the message names the pip extra."""

    def __init__(self, package: str, extra: str, feature: str):
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{package}' package: "
            f'pip install "pyexp[{extra}]"'
        )


class StoreError(PyexpError):
    """A run folder or one of its files is missing or corrupt."""


class RunNotFoundError(StoreError, RuntimeError, FileNotFoundError):
    """No stored run matches the requested name or timestamp."""


class CheckpointError(PyexpError):
    """A ``@chkpt`` state cannot be saved or restored."""


class LogError(PyexpError):
    """A log cannot be written or read."""


class TagNotFoundError(LogError, _UnknownName):
    """A tag (or a tag at an iteration) is not in the log."""


class ViewerError(PyexpError, ValueError):
    """The viewer was asked for something it refuses to serve (bad path, bad query)."""
