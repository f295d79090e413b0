"""Checkpoints: :func:`chkpt` boundaries (``decorator.py``) and their files (``files.py``)."""

from .decorator import chkpt

__all__ = ["chkpt"]
