"""register / build: type dispatch, base-class polymorphism, overrides, errors."""

from __future__ import annotations

from abc import ABC

import pytest

from pyexp.config import Config, build, load_config, register
from pyexp.errors import ConfigError, RegistryError, UnknownTypeError


class Model(ABC):
    pass


@register
class MLP(Model):
    def __init__(self, hidden_size: int = 256, num_layers: int = 2):
        self.hidden_size = hidden_size
        self.num_layers = num_layers


@register
class Transformer(Model):
    def __init__(self, d_model: int = 512, num_heads: int = 8):
        self.d_model = d_model
        self.num_heads = num_heads


@register(name="tiny-cnn")
class TinyCNN(Model):
    def __init__(self, channels: int = 1):
        self.channels = channels


@register
class Optimizer:
    def __init__(self, lr: float = 0.1):
        self.lr = lr


def test_spec_build_from_yaml_config(tmp_path):
    (tmp_path / "config.yaml").write_text("model:\n  type: MLP\n  hidden_size: 512\n  num_layers: 4\n")
    config = load_config(tmp_path / "config.yaml")
    model = build(MLP, config["model"])
    assert type(model) is MLP and (model.hidden_size, model.num_layers) == (512, 4)


def test_spec_base_class_polymorphism():
    model = build(Model, {"type": "Transformer", "d_model": 64})
    assert type(model) is Transformer and (model.d_model, model.num_heads) == (64, 8)
    assert type(build(Model, Config(type="MLP"))) is MLP


def test_spec_existing_instance_is_returned_as_is_with_type_check():
    model = MLP()
    assert build(Model, model) is model
    with pytest.raises(RegistryError, match="not a Transformer"):
        build(Transformer, model)


def test_spec_kwargs_override_config_values():
    model = build(MLP, {"type": "MLP", "hidden_size": 512, "num_layers": 4}, hidden_size=1024)
    assert (model.hidden_size, model.num_layers) == (1024, 4)


def test_without_type_the_given_class_is_built():
    assert build(MLP, {"hidden_size": 3}).hidden_size == 3
    assert build(MLP, {}).hidden_size == 256


def test_none_config_is_a_value_error():
    with pytest.raises(ValueError, match=r"build\(MLP, None\).*\{\} for the defaults") as caught:
        build(MLP, None)
    assert isinstance(caught.value, ConfigError)


class Head:
    def __init__(self, backbone: str, scale: float = 1.0, *, bias: bool = False):
        self.backbone, self.scale, self.bias = backbone, scale, bias


def test_extra_positional_args_go_before_the_config_keywords():
    head = build(Head, {"type": "Head", "bias": True}, "resnet")
    assert (head.backbone, head.scale, head.bias) == ("resnet", 1.0, True)
    head = build(Head, {"bias": True}, "vit", 2.0, bias=False)
    assert (head.backbone, head.scale, head.bias) == ("vit", 2.0, False)
    with pytest.raises(RegistryError, match=r"cannot build Head from 3 positional argument\(s\)"):
        build(Head, {}, "a", 1.0, "too many")
    model = MLP()
    with pytest.raises(RegistryError, match="extra arguments"):
        build(MLP, model, 3)


def test_registered_name_and_class_valued_type():
    assert type(build(Model, {"type": "tiny-cnn", "channels": 3})) is TinyCNN
    assert type(build(Model, {"type": Transformer})) is Transformer


def test_type_is_not_passed_and_config_is_not_mutated():
    cfg = Config(type="MLP", hidden_size=5)
    build(MLP, cfg)
    assert cfg == {"type": "MLP", "hidden_size": 5}


def test_chosen_class_must_subclass_the_base():
    with pytest.raises(RegistryError, match=r"'Optimizer' is .*Optimizer, which is not a subclass of Model"):
        build(Model, {"type": "Optimizer"})


def test_unknown_type_lists_registered_names():
    with pytest.raises(KeyError) as info:
        build(Model, {"type": "Resnet"})
    assert isinstance(info.value, UnknownTypeError) and isinstance(info.value, RegistryError)
    message = str(info.value)
    assert message.startswith("unknown type 'Resnet'")  # not quoted as KeyError's str() would be
    assert "'MLP'" in message and "'Transformer'" in message and "@register" in message


def test_unexpected_config_key_names_the_class_and_key():
    with pytest.raises(RegistryError, match=r"cannot build MLP .*hidden_sise"):
        build(Model, {"type": "MLP", "hidden_sise": 3})


def test_two_classes_with_one_name_pick_the_one_fitting_the_base():
    def make():
        @register(name="MLP")
        class Unrelated:
            pass
        return Unrelated

    unrelated = make()
    assert type(build(Model, {"type": "MLP"})) is MLP
    assert type(build(object, {"type": "MLP"})) is unrelated


def test_dotted_module_path_type():
    from collections import OrderedDict

    assert type(build(dict, {"type": "collections.OrderedDict"})) is OrderedDict


def test_register_rejects_non_classes():
    with pytest.raises(RegistryError):
        register(lambda: None)  # type: ignore[arg-type]


def test_register_with_positional_name_and_unregistered_base_by_its_own_name():
    @register("positional-name")
    class Named(Model):
        pass

    class Plain:
        def __init__(self, k: int = 0):
            self.k = k

    assert type(build(Model, {"type": "positional-name"})) is Named
    assert build(Plain, {"type": "Plain", "k": 2}).k == 2


def test_unknown_type_lists_the_fitting_names_first():
    with pytest.raises(RegistryError, match=r"registered Optimizer types are \['Optimizer'\]"):
        build(Optimizer, {"type": "Adam"})


def test_re_registering_the_same_class_path_replaces_it_like_a_rerun_notebook_cell():
    rerun = type("MLP", (Model,), {"__module__": MLP.__module__, "__qualname__": MLP.__qualname__})
    try:
        register(rerun)
        assert type(build(Model, {"type": "MLP"})) is rerun
        with pytest.raises(RegistryError, match="not a subclass of MLP"):
            build(MLP, {"type": "MLP"})  # the old class object is no longer registered under that path
    finally:
        register(MLP)
    assert type(build(Model, {"type": "MLP"})) is MLP
