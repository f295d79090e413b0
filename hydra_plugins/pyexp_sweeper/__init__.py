"""pyexp's Hydra sweeper plugin (``hydra/sweeper=pyexp``); see :mod:`.pyexp_sweeper`."""
