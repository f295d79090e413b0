"""Executors: where and how each config runs (see :mod:`pyexp.executors.base`)."""
