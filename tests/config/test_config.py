"""Config: dict + dot access, nested conversion, pickling, copying, JSON, helpful errors."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from pyexp.config import Config


def test_spec_dict_style_and_dot_notation_read_the_same_values():
    config = Config({"learning_rate": 0.01, "optimizer": {"lr": 0.1}})
    assert config["learning_rate"] == 0.01
    assert config.learning_rate == 0.01
    assert config.optimizer.lr == 0.1
    assert config["optimizer"]["lr"] == 0.1


def test_nested_dicts_become_config_also_inside_lists_and_tuples():
    config = Config({"a": {"b": [{"c": 1}, 2]}, "t": ({"d": 4},)}, extra={"e": 5})
    assert type(config.a) is Config
    assert type(config.a.b[0]) is Config and config.a.b[0].c == 1
    assert type(config.t) is tuple and config.t[0].d == 4
    assert config.extra.e == 5


def test_attribute_write_and_delete_and_nested_assignment_converts():
    config = Config()
    config.out = Path("/tmp/x")
    config.model = {"width": 3}
    config["opt"] = {"lr": 1}
    assert config.out == Path("/tmp/x")
    assert type(config.model) is Config and config.model.width == 3
    assert config.opt.lr == 1
    del config.model
    assert "model" not in config
    with pytest.raises(AttributeError, match="'model'"):
        del config.model


def test_missing_attribute_names_the_key_and_lists_the_existing_ones():
    config = Config({"learning_rate": 0.1, "epochs": 3})
    with pytest.raises(AttributeError) as info:
        config.learning_rat
    message = str(info.value)
    assert "'learning_rat'" in message
    assert "'learning_rate'" in message and "'epochs'" in message
    assert "did you mean 'learning_rate'" in message
    assert not hasattr(config, "missing")
    assert getattr(config, "missing", 7) == 7


def test_private_lookups_raise_plain_attribute_error():
    config = Config({"__deepcopy__": 1})
    with pytest.raises(AttributeError) as info:
        config.__array__  # noqa: B018
    assert str(info.value) == "__array__"
    assert not hasattr(config, "_private")


def test_pickle_and_deepcopy_round_trip_keep_the_type_and_values():
    config = Config({"name": "x", "mlp": {"width": 3, "layers": [{"k": 1}]}, "out": Path("/o")})
    for clone in (pickle.loads(pickle.dumps(config)), copy.deepcopy(config), copy.copy(config), config.copy()):
        assert clone == config
        assert type(clone) is Config and type(clone.mlp) is Config and type(clone.mlp.layers[0]) is Config
        clone.mlp.width = 99
        assert config.mlp.width == 3


def test_json_dumps_works_because_it_is_a_dict():
    config = Config({"a": {"b": [1, {"c": "d"}]}})
    assert json.loads(json.dumps(config)) == {"a": {"b": [1, {"c": "d"}]}}


def test_to_dict_returns_plain_nested_containers():
    config = Config({"a": {"b": [{"c": 1}]}, "p": Path("/x")})
    plain = config.to_dict()
    assert type(plain) is dict and type(plain["a"]) is dict and type(plain["a"]["b"][0]) is dict
    assert plain == {"a": {"b": [{"c": 1}]}, "p": Path("/x")}


def test_building_a_config_copies_nested_containers_of_the_input():
    source = {"mlp": {"width": 3}}
    config = Config(source)
    config.mlp.width = 4
    assert source == {"mlp": {"width": 3}}


def test_update_setdefault_and_or_convert_nested_dicts():
    config = Config({"a": 1})
    config.update({"b": {"c": 2}}, d={"e": 3})
    assert type(config.b) is Config and config.d.e == 3
    assert type(config.setdefault("f", {"g": 1})) is Config
    merged = config | {"h": {"i": 1}}
    assert type(merged) is Config and merged.h.i == 1 and "h" not in config


def test_import_is_cheap_and_does_not_load_yaml_libraries():
    code = (
        "import sys, pyexp.config, pyexp.config.sweep, pyexp.tensor\n"
        "heavy = [m for m in ('omegaconf', 'yaml', 'hydra', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
