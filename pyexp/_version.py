"""The package version (ground floor: the Logger records it in every event file)."""

__version__ = "0.1.0"
