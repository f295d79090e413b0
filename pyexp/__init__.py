"""pyexp: run every config of an experiment in isolation, cache it, resume it, report on it."""
