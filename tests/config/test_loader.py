"""load_config(): imports, dotted overrides, multiple files, error messages; to_yaml()."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyexp.config import Config, load_config, to_yaml
from pyexp.errors import ConfigError, ConfigFileError, ImportCycleError

BASE = """\
# base.yaml
model:
  hidden_size: 256
  num_layers: 4
learning_rate: 0.001
"""

EXPERIMENT = """\
# experiment.yaml
imports:
  - base.yaml

# Override specific values (dot notation supported)
model.hidden_size: 512
batch_size: 32
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_spec_experiment_imports_base_and_overrides_a_nested_value(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "experiment.yaml", EXPERIMENT)
    config = load_config(tmp_path / "experiment.yaml")
    assert config == {"model": {"hidden_size": 512, "num_layers": 4}, "learning_rate": 0.001, "batch_size": 32}
    assert type(config) is Config and config.model.hidden_size == 512
    assert "imports" not in config


def test_spec_single_file_and_later_files_override_earlier(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "overrides.yaml", "learning_rate: 0.1\nmodel.num_layers: 8\n")
    assert load_config(str(tmp_path / "base.yaml")).learning_rate == 0.001
    config = load_config([tmp_path / "base.yaml", str(tmp_path / "overrides.yaml")])
    assert config == {"model": {"hidden_size": 256, "num_layers": 8}, "learning_rate": 0.1}


def test_imports_resolve_relative_to_the_importing_file_recursively(tmp_path, monkeypatch):
    write(tmp_path, "conf/model/mlp.yaml", "model:\n  type: MLP\n  width: 1\n")
    write(tmp_path, "conf/base.yaml", "imports: [model/mlp.yaml]\nseed: 0\n")
    write(tmp_path, "exp/run.yaml", "imports:\n  - ../conf/base.yaml\nmodel.width: 2\n")
    monkeypatch.chdir(tmp_path / "conf")  # the working directory must not matter
    config = load_config(tmp_path / "exp/run.yaml")
    assert config == {"model": {"type": "MLP", "width": 2}, "seed": 0}


def test_diamond_imports_are_not_a_cycle(tmp_path):
    write(tmp_path, "d.yaml", "x: 1\n")
    write(tmp_path, "b.yaml", "imports: [d.yaml]\nb: 1\n")
    write(tmp_path, "c.yaml", "imports: [d.yaml]\nc: 1\n")
    write(tmp_path, "a.yaml", "imports: [b.yaml, c.yaml]\n")
    assert load_config(tmp_path / "a.yaml") == {"x": 1, "b": 1, "c": 1}


def test_double_star_key_deep_merges_and_plain_key_replaces(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "deep.yaml", "imports: [base.yaml]\n'**model':\n  hidden_size: 1\n")
    write(tmp_path, "flat.yaml", "imports: [base.yaml]\nmodel:\n  hidden_size: 1\n")
    assert load_config(tmp_path / "deep.yaml").model == {"hidden_size": 1, "num_layers": 4}
    assert load_config(tmp_path / "flat.yaml").model == {"hidden_size": 1}


def test_scientific_floats_and_interpolations_follow_omegaconf(tmp_path):
    write(tmp_path, "c.yaml", "lr: 1e-3\nmodel:\n  width: 8\nhead_width: ${model.width}\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.lr == 0.001 and config.head_width == 8


def test_import_cycle_shows_the_chain(tmp_path):
    write(tmp_path, "a.yaml", "imports: [b.yaml]\n")
    write(tmp_path, "b.yaml", "imports: [a.yaml]\n")
    with pytest.raises(ImportCycleError, match=r"a\.yaml -> b\.yaml -> a\.yaml"):
        load_config(tmp_path / "a.yaml")


def test_self_import_is_a_cycle(tmp_path):
    write(tmp_path, "a.yaml", "imports: [a.yaml]\n")
    with pytest.raises(ImportCycleError, match=r"a\.yaml -> a\.yaml"):
        load_config(tmp_path / "a.yaml")


def test_missing_import_names_the_missing_and_the_importing_file(tmp_path):
    importer = write(tmp_path, "experiment.yaml", "imports: [nothere.yaml]\n")
    with pytest.raises(ConfigFileError) as info:
        load_config(importer)
    assert "nothere.yaml" in str(info.value)
    assert f"imported by {importer}" in str(info.value)


def test_missing_top_level_file_names_it(tmp_path):
    with pytest.raises(ConfigFileError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    assert issubclass(ConfigFileError, ConfigError)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigFileError, match=rf"{path}:3: invalid YAML.*line 2"):
        load_config(path)
    path = write(tmp_path, "tabs.yaml", "a: 1\n\tb: 2\n")
    with pytest.raises(ConfigFileError, match=rf"{path}:2: invalid YAML"):
        load_config(path)


def test_top_level_list_and_bad_imports_are_rejected(tmp_path):
    with pytest.raises(ConfigFileError, match="mapping"):
        load_config(write(tmp_path, "list.yaml", "- 1\n- 2\n"))
    with pytest.raises(ConfigFileError, match="'imports' must be a list"):
        load_config(write(tmp_path, "imp.yaml", "imports: {a: 1}\n"))


def test_dotted_path_through_a_scalar_replaces_it(tmp_path):
    assert load_config(write(tmp_path, "c.yaml", "lr: 0.1\nlr.x: 1\n")) == {"lr": {"x": 1}}


def test_a_double_star_key_with_a_scalar_names_the_file_and_key(tmp_path):
    path = write(tmp_path, "c.yaml", "model: {a: 1}\n'**model': 3\n")
    with pytest.raises(ValueError, match=rf"{path}: config key '\*\*model'") as caught:
        load_config(path)
    assert isinstance(caught.value, ConfigFileError)


def test_empty_file_is_an_empty_config(tmp_path):
    assert load_config(write(tmp_path, "empty.yaml", "")) == {}


def test_an_empty_list_of_files_is_an_empty_config():
    for empty in ([], ()):
        loaded = load_config(empty)
        assert type(loaded) is Config and loaded == {}


def test_to_yaml_round_trips_through_load_config_and_stringifies_paths(tmp_path):
    config = Config({"name": "it's a \"test\"\n", "out": Path("/runs/x"), "mlp": {"width": 3, "acts": ("relu", 1.5)},
                     "lr": 1e-3, "flag": True, "none": None})
    text = to_yaml(config)
    assert "out: /runs/x" in text
    assert text.index("name") < text.index("out") < text.index("mlp")  # insertion order kept
    back = load_config(write(tmp_path, "back.yaml", text))
    assert back == {**config.to_dict(), "out": "/runs/x", "mlp": {"width": 3, "acts": ["relu", 1.5]}}


def test_dotted_key_of_a_later_import_reaches_into_an_earlier_import(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "deeper.yaml", "model.num_layers: 8\n")
    write(tmp_path, "exp.yaml", "imports: [base.yaml, deeper.yaml]\n")
    assert load_config(tmp_path / "exp.yaml").model == {"hidden_size": 256, "num_layers": 8}


def test_to_yaml_logs_numpy_scalars_and_arrays_as_numbers():
    np = pytest.importorskip("numpy")
    text = to_yaml({"lr": np.float32(0.5), "n": np.int64(3), "grid": np.arange(3), "obj": object})
    assert "lr: 0.5\n" in text and "n: 3\n" in text and "grid:\n- 0\n- 1\n- 2\n" in text
    assert "obj: <class 'object'>" in text


def test_unquoted_double_star_key_gets_a_quoting_hint(tmp_path):
    path = write(tmp_path, "star.yaml", "model:\n  a: 1\n**model:\n  b: 2\n")
    with pytest.raises(ConfigFileError, match=rf"{path}:3: invalid YAML.*quote deep-merge keys"):
        load_config(path)
