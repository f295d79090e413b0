"""merge(): dotted paths, whole-value replacement, ** deep merge, purity."""

from __future__ import annotations

import copy

import pytest

from pyexp.config import Config, merge
from pyexp.errors import ConfigError


def test_spec_plain_dict_value_replaces_the_whole_dict():
    base = {"bsdf": {"type": "Diffuse", "color": 5, "roughness": 0.1}}
    assert merge(base, {"bsdf": {"type": "Test", "color": 10}}) == {"bsdf": {"type": "Test", "color": 10}}


def test_spec_double_star_deep_merges_and_keeps_other_keys():
    base = {"bsdf": {"type": "Diffuse", "color": 5, "roughness": 0.1}}
    assert merge(base, {"**bsdf": {"type": "Test", "color": 10}}) == {
        "bsdf": {"type": "Test", "color": 10, "roughness": 0.1}
    }


def test_dotted_key_updates_one_nested_value_and_keeps_siblings():
    base = {"name": "exp", "mlp": {"width": 32, "depth": 2}}
    assert merge(base, {"mlp.width": 64}) == {"name": "exp", "mlp": {"width": 64, "depth": 2}}


def test_dotted_key_creates_missing_intermediate_dicts():
    merged = merge({}, {"a.b.c": 1})
    assert merged == {"a": {"b": {"c": 1}}}
    assert type(merged.a.b) is Config


def test_double_star_with_dotted_path_deep_merges_the_nested_dict():
    base = {"model": {"encoder": {"type": "VGG", "pretrained": False, "depth": 16}, "head": 1}}
    merged = merge(base, {"**model.encoder": {"type": "ResNet", "pretrained": True}})
    assert merged == {"model": {"encoder": {"type": "ResNet", "pretrained": True, "depth": 16}, "head": 1}}


def test_double_star_is_recursive():
    base = {"a": {"b": {"c": 1, "d": 2}, "e": 3}}
    assert merge(base, {"**a": {"b": {"c": 10}}}) == {"a": {"b": {"c": 10, "d": 2}, "e": 3}}


def test_double_star_on_missing_or_non_dict_value_just_sets_it():
    assert merge({}, {"**a": {"b": 1}}) == {"a": {"b": 1}}
    assert merge({"a": 3}, {"**a": {"b": 1}}) == {"a": {"b": 1}}


def test_merge_never_mutates_its_inputs_and_shares_no_containers():
    base = {"mlp": {"width": 32, "depth": 2}, "tags": ["a"]}
    update = {"**mlp": {"act": {"kind": "relu"}}, "extra": {"x": [1]}}
    before = (copy.deepcopy(base), copy.deepcopy(update))
    merged = merge(base, update)
    merged.mlp.width = 0
    merged.mlp.act.kind = "gelu"
    merged.tags.append("b")
    merged.extra.x.append(2)
    assert (base, update) == before


def test_merge_returns_config_for_plain_dicts():
    merged = merge({"a": {"b": 1}}, {"c": 2})
    assert type(merged) is Config and type(merged.a) is Config


def test_dotted_key_replaces_a_parent_that_is_not_a_dict():
    assert merge({"a": 1}, {"a.b": 2}) == {"a": {"b": 2}}
    assert merge({"lr": 0.1, "x": 1}, {"lr.value.y": 3}) == {"lr": {"value": {"y": 3}}, "x": 1}
    assert merge({"a": [1]}, {"**a.b": {"c": 1}}) == {"a": {"b": {"c": 1}}}


@pytest.mark.parametrize("value", [1, "x", None, [1, 2]])
def test_double_star_with_a_value_that_is_not_a_dict_is_a_value_error_naming_the_key(value):
    with pytest.raises(ValueError, match=r"'\*\*model\.encoder'.*drop the '\*\*'") as caught:
        merge({"model": {"encoder": {}}}, {"**model.encoder": value})
    assert isinstance(caught.value, ConfigError)
    with pytest.raises(ValueError, match=r"'\*\*inner'"):
        merge({"a": {}}, {"**a": {"**inner": 3}})  # nested ** keys are checked too


def test_non_dict_update_is_a_config_error():
    with pytest.raises(ConfigError, match="must be a dict"):
        merge({}, [("a", 1)])  # type: ignore[arg-type]
