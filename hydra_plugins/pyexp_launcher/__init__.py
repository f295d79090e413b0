"""pyexp's Hydra launcher plugin (``hydra/launcher=pyexp``); see :mod:`.pyexp_launcher`."""
