"""sweep(): cartesian products, names, dotted and ** keys, named axes, hostile names."""

from __future__ import annotations

import json

import pytest

from pyexp.config import Config, merge
from pyexp.errors import ConfigError
from pyexp import sweep
from pyexp.tensor import Tensor


def spec_sweep() -> Tensor:
    cfgs = [{"name": "exp", "base_lr": 0.01}]
    cfgs = sweep(cfgs, [
        {"name": "lr0.1", "learning_rate": 0.1},
        {"name": "lr0.01", "learning_rate": 0.01},
    ])
    return sweep(cfgs, [
        {"name": "e10", "epochs": 10},
        {"name": "e100", "epochs": 100},
    ])


def test_spec_two_sweeps_give_shape_1_2_2_and_underscore_names():
    cfgs = spec_sweep()
    assert cfgs.shape == (1, 2, 2)
    assert [c.name for c in cfgs] == ["exp_lr0.1_e10", "exp_lr0.1_e100", "exp_lr0.01_e10", "exp_lr0.01_e100"]
    assert cfgs[0, 1, 0] == {"name": "exp_lr0.01_e10", "base_lr": 0.01, "learning_rate": 0.01, "epochs": 10}
    assert all(type(c) is Config for c in cfgs)


def test_spec_sweep_axes_are_named_after_the_swept_keys():
    cfgs = spec_sweep()
    assert cfgs.axes == ("configs", "learning_rate", "epochs")
    assert cfgs.axis_values["learning_rate"] == [
        {"name": "lr0.1", "learning_rate": 0.1}, {"name": "lr0.01", "learning_rate": 0.01}]


def test_spec_dot_notation_updates_only_the_nested_value():
    cfgs = [{"name": "exp", "mlp": {"width": 32, "depth": 2}}]
    cfgs = sweep(cfgs, [
        {"name": "w64", "mlp.width": 64},
        {"name": "w128", "mlp.width": 128},
    ])
    assert cfgs.flat == [
        {"name": "exp_w64", "mlp": {"width": 64, "depth": 2}},
        {"name": "exp_w128", "mlp": {"width": 128, "depth": 2}},
    ]
    assert cfgs.axes == ("configs", "mlp.width")


def test_spec_double_star_in_sweeps_deep_merges():
    cfgs = [{"name": "exp", "model": {"encoder": {"type": "VGG", "depth": 16}}}]
    cfgs = sweep(cfgs, [
        {"name": "test", "**model.encoder": {"type": "ResNet", "pretrained": True}},
    ])
    assert cfgs[0, 0].model.encoder == {"type": "ResNet", "depth": 16, "pretrained": True}
    assert cfgs.axes == ("configs", "model.encoder")


def test_spec_load_config_then_sweep_over_a_nested_value(tmp_path):
    from pyexp.config import load_config

    (tmp_path / "base.yaml").write_text("model:\n  hidden_size: 256\n  num_layers: 4\nlearning_rate: 0.001\n")
    base = load_config(tmp_path / "base.yaml")
    cfgs = sweep([base], [
        {"name": "small", "model.hidden_size": 128},
        {"name": "large", "model.hidden_size": 1024},
    ])
    assert [(c.name, c.model.hidden_size, c.model.num_layers) for c in cfgs] == [
        ("small", 128, 4), ("large", 1024, 4)]


def test_element_is_merge_of_base_and_variation_without_name():
    base = {"name": "b", "x": {"y": 1, "z": 2}}
    variation = {"name": "v", "**x": {"y": 5}, "w": [1]}
    (out,) = sweep([base], [variation])
    assert out == {**merge(base, {k: v for k, v in variation.items() if k != "name"}), "name": "b_v"}


def test_paired_parameters_set_several_keys_and_name_the_axis_with_plus():
    cfgs = sweep([{"name": "exp"}], [
        {"name": "a", "lr": 0.1, "wd": 0.0},
        {"name": "b", "lr": 0.01, "**opt": {"beta": 0.9}},
    ])
    assert cfgs.axes == ("configs", "lr+wd+opt")
    assert cfgs[0, 0] == {"name": "exp_a", "lr": 0.1, "wd": 0.0}
    assert cfgs[0, 1] == {"name": "exp_b", "lr": 0.01, "opt": {"beta": 0.9}}


def test_names_use_whichever_side_is_present():
    assert [c.get("name") for c in sweep([{"x": 1}], [{"name": "v", "x": 2}, {"x": 3}])] == ["v", None]
    assert [c.name for c in sweep([{"name": "b"}], [{"x": 2}, {"name": "", "x": 3}])] == ["b", "b"]


def test_sweep_accepts_a_tensor_and_keeps_its_shape_and_axes():
    grid = Tensor([{"name": f"c{i}", "i": i} for i in range(6)], shape=(2, 3), axes=("row", "col"))
    out = sweep(grid, [{"name": "s0", "seed": 0}, {"name": "s1", "seed": 1}])
    assert out.shape == (2, 3, 2) and out.axes == ("row", "col", "seed")
    assert out[1, 2, 1] == {"name": "c5_s1", "i": 5, "seed": 1}


def test_sweeping_the_same_key_twice_gives_distinct_axis_names():
    cfgs = sweep(sweep([{}], [{"lr": 1}, {"lr": 2}]), [{"lr": 3}])
    assert cfgs.axes == ("configs", "lr", "lr_2")


def test_sweep_outputs_share_no_containers_and_inputs_are_unchanged():
    base = {"name": "exp", "mlp": {"width": 1}}
    variation = {"name": "v", "opt": {"lr": 0.1}}
    cfgs = sweep([base], [variation, {"name": "w"}])
    cfgs[0, 0].mlp.width = 99
    cfgs[0, 0].opt.lr = 99
    assert cfgs[0, 1].mlp.width == 1
    assert base == {"name": "exp", "mlp": {"width": 1}}
    assert variation == {"name": "v", "opt": {"lr": 0.1}}


def test_axis_values_are_json_friendly_for_runs_json():
    cfgs = sweep(spec_sweep(), [{"name": "t", "tags": ("a", "b"), "**m": {"k": 1}}])
    assert json.loads(json.dumps(cfgs.axis_values))["tags+m"] == [{"name": "t", "tags": ["a", "b"], "**m": {"k": 1}}]


@pytest.mark.parametrize("hostile", ["with space", "it's", 'say "hi"', "line\nbreak", "'; echo foo", "a/b\\c*?[x]"])
def test_hostile_names_pass_through_unchanged_and_glob_filter_still_works(hostile):
    cfgs = sweep([{"name": hostile}], [{"name": hostile, "k": 1}, {"name": "plain", "k": 2}])
    assert [c.name for c in cfgs] == [f"{hostile}_{hostile}", f"{hostile}_plain"]
    assert cfgs["*_plain"].k == 2  # one match is the config itself
    assert cfgs[{"name": f"{hostile}_{hostile}"}] is cfgs[0, 0]


def test_empty_variations_is_a_config_error():
    with pytest.raises(ConfigError, match="no variations"):
        sweep([{"name": "exp"}], [])


def test_non_dict_config_or_variation_is_a_config_error_naming_the_position():
    with pytest.raises(ConfigError, match="variation #1"):
        sweep([{}], [{"a": 1}, "lr=0.1"])
    with pytest.raises(ConfigError, match="config #0"):
        sweep(["nope"], [{"a": 1}])
    with pytest.raises(ConfigError, match="list of config dicts"):
        sweep(42, [{"a": 1}])
