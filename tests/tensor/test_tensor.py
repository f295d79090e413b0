"""Tensor: numpy-style indexing, glob and dict filters, sel by axis value, export."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from pyexp.config import Config
from pyexp.errors import ConfigError, NoMatchError, PyexpError
from pyexp.outcome import Outcome
from pyexp.store import publish_outcome
from pyexp.result import Result
from pyexp import sweep
from pyexp.tensor import Tensor


def spec_configs() -> Tensor:
    cfgs = sweep([{"name": "exp", "base_lr": 0.01, "mlp": {"width": 64}}], [
        {"name": "lr0.1", "learning_rate": 0.1},
        {"name": "lr0.01", "learning_rate": 0.01},
    ])
    return sweep(cfgs, [{"name": "e10", "epochs": 10}, {"name": "e100", "epochs": 100, "mlp.width": 128}])


def make_results(cfgs: Tensor, root: Path) -> Tensor:
    """Real Result objects over real result files, shaped like the runner builds them."""
    results = []
    for i, cfg in enumerate(cfgs):
        out = root / f"{i}"
        out.mkdir()
        config = Config({**cfg, "out": out})
        publish_outcome(out, Outcome("ok", result={"accuracy": 0.5 + i / 10}))
        results.append(Result(cfg.name, config, out))
    return Tensor(results, cfgs.shape, cfgs.axes, axis_values=cfgs.axis_values)


@pytest.fixture
def results(tmp_path) -> Tensor:
    return make_results(spec_configs(), tmp_path)


def names(t: Tensor) -> list[str]:
    return [x["name"] if isinstance(x, dict) else x.name for x in t]


# -- construction and basics ---------------------------------------------------------
def test_defaults_shape_axes_and_basics():
    t = Tensor(["a", "b", "c"])
    assert (t.shape, t.ndim, t.size, t.axes, len(t)) == ((3,), 1, 3, ("axis0",), 3)
    t2 = Tensor(range(6), shape=(2, 3))
    assert t2.axes == ("axis0", "axis1")
    assert t2.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert list(t2) == [0, 1, 2, 3, 4, 5] and t2.flat == [0, 1, 2, 3, 4, 5]
    assert "shape=(2, 3)" in repr(t2)


def test_shape_and_axes_must_fit():
    with pytest.raises(ConfigError, match="needs 6 elements"):
        Tensor(range(5), shape=(2, 3))
    with pytest.raises(ConfigError, match="axis names"):
        Tensor(range(6), shape=(2, 3), axes=("a",))
    with pytest.raises(ConfigError, match="axis_values"):
        Tensor(range(2), axes=("a",), axis_values={"a": [1]})


def test_iteration_yields_elements_not_subtensors(results):
    assert results.shape == (1, 2, 2)
    assert len(results) == 4
    assert all(isinstance(r, Result) for r in results)
    assert [r.result["accuracy"] for r in results] == [0.5, 0.6, 0.7, 0.8]


def test_map_keeps_shape_axes_and_axis_values():
    cfgs = spec_configs()
    mapped = cfgs.map(lambda c: c.name.upper())
    assert (mapped.shape, mapped.axes, mapped.axis_values) == (cfgs.shape, cfgs.axes, cfgs.axis_values)
    assert mapped[0, 1, 0] == "EXP_LR0.01_E10"


def test_pickle_and_deepcopy(results):
    cfgs = spec_configs()
    for clone in (pickle.loads(pickle.dumps(cfgs)), copy.deepcopy(cfgs)):
        assert (clone.shape, clone.axes, clone.flat, clone.axis_values) == (
            cfgs.shape, cfgs.axes, cfgs.flat, cfgs.axis_values)


# -- spec: Tensor Indexing -------------------------------------------------------------
def test_spec_index_by_position(results):
    first_lr = results[:, 0, :]
    assert isinstance(first_lr, Tensor) and first_lr.shape == (1, 2)
    assert first_lr.axes == ("configs", "epochs+mlp.width")
    assert names(first_lr) == ["exp_lr0.1_e10", "exp_lr0.1_e100"]
    r = results[0, 1, 0]
    assert isinstance(r, Result)
    assert (r.name, r.result["accuracy"]) == ("exp_lr0.01_e10", 0.7)


def test_numpy_semantics_for_tuples_slices_negative_and_ellipsis():
    t = Tensor(range(24), shape=(2, 3, 4), axes=("a", "b", "c"))
    assert t[1,].shape == (3, 4) and t[1,].axes == ("b", "c") and t[1,].flat == list(range(12, 24))
    assert t[1:].shape == (1, 3, 4) and t[1:].flat == list(range(12, 24))  # a lone slice is per axis
    assert t[-1, -1, -1] == 23
    assert t[..., 0].flat == [0, 4, 8, 12, 16, 20] and t[..., 0].axes == ("a", "b")
    assert t[0, ..., 1:3].shape == (3, 2)
    assert t[:, ::2, ::-1][1, 1].flat == [23, 22, 21, 20]
    assert t[:, 1:1].shape == (2, 0, 4)
    with pytest.raises(IndexError, match="out of bounds for axis 1"):
        t[0, 3]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0, 0]
    with pytest.raises(TypeError, match="Tensor indices"):
        t[0.5]


def test_a_plain_int_is_a_flat_row_major_index_like_len_and_iteration(results):
    t = Tensor(range(24), shape=(2, 3, 4))
    assert [t[i] for i in range(len(t))] == list(t) == list(range(24))
    assert (t[0], t[5], t[23], t[-1], t[-24]) == (0, 5, 23, 23, 0)
    for bad in (24, -25):
        with pytest.raises(IndexError, match=f"index {bad} is out of range.*24 elements"):
            t[bad]
    # The first config of a (1, 2) sweep, not the whole first row.
    pair = sweep([{"name": "exp"}], [{"name": "a"}, {"name": "b"}])
    assert pair.shape == (1, 2) and pair[0].name == "exp_a" and pair[1].name == "exp_b"
    assert results[0].name == "exp_lr0.1_e10" and results[-1].name == "exp_lr0.01_e100"
    assert [r.name for r in results] == [results[i].name for i in range(len(results))]


def test_slicing_keeps_axis_values_in_step():
    cfgs = spec_configs()
    assert cfgs[:, ::-1].axis_values["learning_rate"][0]["learning_rate"] == 0.01
    assert "learning_rate" not in cfgs[:, 0].axis_values


# -- spec: Result Filtering ------------------------------------------------------------
def test_spec_glob_on_names_keeps_the_sub_grid(results):
    lr01 = results["exp_lr0.1_*"]
    assert lr01.shape == (1, 1, 2) and lr01.axes == results.axes
    assert names(lr01) == ["exp_lr0.1_e10", "exp_lr0.1_e100"]
    e10 = results["*_e10"]
    assert e10.shape == (1, 2, 1) and names(e10) == ["exp_lr0.1_e10", "exp_lr0.01_e10"]


def test_spec_dict_filters_on_config_values(results):
    lr01 = results[{"config.learning_rate": 0.1}]
    assert lr01.shape == (1, 1, 2) and names(lr01) == ["exp_lr0.1_e10", "exp_lr0.1_e100"]
    specific = results[{"config.learning_rate": 0.1, "config.epochs": 10}]
    assert isinstance(specific, Result) and specific.name == "exp_lr0.1_e10"  # one match: the element
    wide = results[{"config.mlp.width": 128}]
    assert names(wide) == ["exp_lr0.1_e100", "exp_lr0.01_e100"]
    assert results[{"config.learning_rate": 0.01}][0, 0, 1].result == {"accuracy": 0.8}


def test_dict_filter_on_plain_configs_accepts_paths_with_and_without_config():
    cfgs = spec_configs()
    assert names(cfgs[{"config.mlp.width": 128}]) == names(cfgs[{"mlp.width": 128}]) == [
        "exp_lr0.1_e100", "exp_lr0.01_e100"]


def test_matches_that_are_not_a_grid_give_a_1d_match_tensor():
    t = Tensor([{"name": n} for n in ["a1", "b1", "b2", "a2"]], shape=(2, 2), axes=("x", "y"))
    diagonal = t["a*"]
    assert diagonal.shape == (2,) and diagonal.axes == ("match",)
    assert names(diagonal) == ["a1", "a2"]


def test_dict_filter_with_callable_and_list_values():
    t = Tensor([{"name": str(i), "v": i, "dims": (i, i)} for i in range(4)])
    assert names(t[{"v": lambda v: v >= 2}]) == ["2", "3"]
    assert t[{"dims": [1, 1]}]["name"] == "1"  # tuples match lists after a JSON round trip


def test_one_match_is_the_element_several_a_tensor(results):
    r = results["exp_lr0.1_e10"]
    assert isinstance(r, Result) and r.result == {"accuracy": 0.5}
    assert results[{"config.learning_rate": 0.01, "config.epochs": 100}].name == "exp_lr0.01_e100"
    assert isinstance(results["exp_lr0.1_*"], Tensor)
    one = sweep([{"name": "only", "lr": 1}], [{"name": "x"}])
    assert one["only_x"].lr == 1 and one[{"lr": 1}].name == "only_x"


def test_a_dict_value_is_a_recursive_subset(results):
    cfgs = spec_configs()
    nested = cfgs[{"mlp": {"width": 128}}]
    assert names(nested) == names(cfgs[{"mlp.width": 128}]) == ["exp_lr0.1_e100", "exp_lr0.01_e100"]
    assert results[{"config": {"mlp": {"width": 128}, "learning_rate": 0.1}}].name == "exp_lr0.1_e100"
    assert cfgs[{"mlp": {}}].shape == cfgs.shape  # an empty dict matches any dict there
    with pytest.raises(IndexError):
        cfgs[{"learning_rate": {"x": 1}}]  # a number is not a dict


def test_no_match_is_an_index_error_naming_the_query_and_the_closest(results):
    with pytest.raises(IndexError, match=r"'exp_lr0.1_e1'.*did you mean 'exp_lr0.1_e10'") as caught:
        results["exp_lr0.1_e1"]
    assert isinstance(caught.value, PyexpError) and isinstance(caught.value, NoMatchError)
    with pytest.raises(IndexError, match=r"'zzz'; the names are 'exp_lr0.1_e10'"):
        results["zzz"]
    with pytest.raises(NoMatchError, match=r"\{'config.learning_rate': 0.5\}.*config.learning_rate takes 0.1, 0.01"):
        results[{"config.learning_rate": 0.5}]


def test_a_key_no_element_has_names_the_keys_the_configs_have(results):
    with pytest.raises(IndexError, match=r"'config.learnin_rate'.*'config.base_lr'.*"
                                         r"did you mean 'config.learning_rate'") as caught:
        results[{"config.learnin_rate": 0.1}]
    assert isinstance(caught.value, NoMatchError)
    with pytest.raises(NoMatchError, match=r"'mlp.depth'.*'mlp.width'"):
        spec_configs()[{"mlp": {"depth": 2}}]


def test_cfg_is_accepted_like_config_in_dict_queries(results):
    cfgs = spec_configs()
    assert names(results[{"cfg.learning_rate": 0.1}]) == names(results[{"config.learning_rate": 0.1}])
    assert names(cfgs[{"cfg.mlp.width": 128}]) == names(cfgs[{"config.mlp.width": 128}])


def test_filter_on_result_values(results):
    assert results[{"result.accuracy": 0.8}].name == "exp_lr0.01_e100"


# -- sel --------------------------------------------------------------------------------
def test_sel_by_axis_value_on_configs_and_results(results):
    cfgs = spec_configs()
    for t in (cfgs, results):
        picked = t.sel(learning_rate=0.1)
        assert picked.shape == (1, 2) and picked.axes == ("configs", "epochs+mlp.width")
        assert names(picked) == ["exp_lr0.1_e10", "exp_lr0.1_e100"]
        assert t.sel(learning_rate=0.01, epochs=100)[0].name == "exp_lr0.01_e100"
        assert t.sel(learning_rate=[0.01, 0.1]).shape == (1, 2, 2)
        assert names(t.sel(learning_rate=[0.01, 0.1]))[0] == "exp_lr0.01_e10"


def test_sel_on_a_paired_axis_by_one_of_its_keys_and_by_variation_name():
    cfgs = sweep([{"name": "x"}], [{"name": "a", "lr": 1, "wd": 0}, {"name": "b", "lr": 2, "wd": 0}])
    assert cfgs.sel(lr=2)[0].name == "x_b"
    assert cfgs.sel(wd=0).shape == (1, 2)  # several matches keep the axis
    assert cfgs.sel(**{"lr+wd": "a"})[0].name == "x_a"


def test_sel_by_keys_an_axis_stores_without_being_named_after_them():
    jobs = Tensor([{"name": f"x={x},y={y}", "x": x, "y": y} for x, y in [(1, 0), (1, 5), (2, 0)]], axes=("job",),
                  axis_values={"job": [{"name": "x=1,y=0", "x": 1, "y": 0}, {"name": "x=1,y=5", "x": 1, "y": 5},
                                       {"name": "x=2,y=0", "x": 2, "y": 0}]})
    assert names(jobs.sel(y=0)) == ["x=1,y=0", "x=2,y=0"]  # several: the axis stays
    assert jobs.sel(x=1, y=5)["name"] == "x=1,y=5"  # together they leave one index: the axis goes
    assert jobs.sel(x=[1], y=5).shape == (1,)  # a list keeps it
    with pytest.raises(ConfigError, match=r"axis 'job' has x=2 and y=5 together"):
        jobs.sel(x=2, y=5)


def test_sel_falls_back_to_element_values_without_axis_values(tmp_path):
    plain = Tensor(spec_configs().flat, shape=(1, 2, 2), axes=("configs", "learning_rate", "epochs"))
    assert plain.axis_values == {}
    assert names(plain.sel(epochs=100)) == ["exp_lr0.1_e100", "exp_lr0.01_e100"]
    results = make_results(spec_configs(), tmp_path)
    bare = Tensor(results.flat, results.shape, ("configs", "learning_rate", "epochs"))
    assert bare.sel(learning_rate=0.1, epochs=10)[0].name == "exp_lr0.1_e10"


def test_sel_survives_a_json_round_trip_of_axis_values():
    import json

    cfgs = sweep([{}], [{"dims": (1, 2)}, {"dims": (3, 4)}])
    stored = Tensor(cfgs.flat, cfgs.shape, cfgs.axes, axis_values=json.loads(json.dumps(cfgs.axis_values)))
    assert stored.sel(dims=(3, 4))[0].dims == (3, 4)


def test_sel_errors_name_the_axis_and_values():
    cfgs = spec_configs()
    with pytest.raises(ConfigError, match=r"no axis 'lr'.*'learning_rate'"):
        cfgs.sel(lr=0.1)
    with pytest.raises(ConfigError, match=r"learning_rate=0.5.*\[0.1, 0.01\]"):
        cfgs.sel(learning_rate=0.5)


# -- export -----------------------------------------------------------------------------
def test_to_pandas_for_results_and_configs(results):
    frame = results.to_pandas()
    assert list(frame["name"]) == names(results)
    assert list(frame["result.accuracy"]) == [0.5, 0.6, 0.7, 0.8]
    assert list(frame["config.learning_rate"]) == [0.1, 0.1, 0.01, 0.01]
    assert list(frame["config.mlp.width"]) == [64, 128, 64, 128]
    assert frame["error"].isna().all()
    assert list(frame["status"]) == ["done"] * 4 and not frame["stale"].any()
    config_frame = spec_configs().to_pandas()
    assert list(config_frame.columns) == ["name", "base_lr", "mlp.width", "learning_rate", "epochs"]


def test_empty_dict_query_keeps_everything():
    cfgs = spec_configs()
    assert cfgs[{}].shape == cfgs.shape and cfgs[{}].flat == cfgs.flat
