"""pyexp's user errors are also the built-in errors the original pyexp raised, so old except clauses work."""

from __future__ import annotations

import pytest

import pyexp
from pyexp.errors import PyexpError


def _runs_nowhere(tmp_path):
    @pyexp.experiment(name="never", output_dir=tmp_path)
    def never(config):
        return config

    return never


def test_bad_config_values_are_value_errors():
    with pytest.raises(ValueError, match=r"'\*\*m'") as caught:
        pyexp.merge({"m": {}}, {"**m": 1})
    assert isinstance(caught.value, PyexpError)
    with pytest.raises(ValueError):
        pyexp.build(dict, None)


def test_unknown_names_are_key_errors():
    with pytest.raises(KeyError, match="unknown type 'Nope'") as caught:
        pyexp.build(object, {"type": "Nope"})
    assert isinstance(caught.value, PyexpError)
    with pytest.raises(KeyError, match="unknown executor 'threads'") as caught:
        pyexp.get_executor("threads")
    assert isinstance(caught.value, PyexpError)


def test_queries_that_match_nothing_are_index_errors():
    with pytest.raises(IndexError) as caught:
        pyexp.sweep([{"name": "a"}], [{"name": "b"}])["zzz"]
    assert isinstance(caught.value, PyexpError)


def test_no_previous_run_and_an_unknown_run_are_runtime_errors(tmp_path):
    never = _runs_nowhere(tmp_path)
    with pytest.raises(RuntimeError, match="no runs of this experiment") as caught:
        never.results()
    assert isinstance(caught.value, PyexpError)
    with pytest.raises(RuntimeError, match="'2024-01-25_14-30-00'"):
        never.results(timestamp="2024-01-25_14-30-00")
