import dataclasses

import pytest

from largestyle.config.settings import RenderConfig, make_config, option_fields
from largestyle.core.vgg import LAYER_NAMES
from largestyle.core.units import format_bytes
from largestyle.core.errors import LargestyleError


def test_defaults_validate():
    config = RenderConfig()
    config.validate()
    assert config.target_size == 512 and config.content_layers == ("relu4_2",)
    assert make_config() == config
    assert all(layer in LAYER_NAMES for layer in config.content_layers + config.style_layers)


@pytest.mark.parametrize("options", [
    {"content_weight": -1.0},
    {"style_weight": -0.1},
    {"tv_weight": -5},
    {"style_scale": 0},
    {"target_size": 8},
    {"content_layers": ("relu6_1",)},
    {"style_layers": ("relu1_1", "conv2_1")},
    {"content_layers": (), "style_layers": ()},
    {"tile_size": 40},
    {"tile_size": 16},
    {"tile_size": 0},
    {"device": "gpu"},
    {"device": "cuda:"},
    {"device": "cuda:x"},
    {"style_layer_weights": (1.0, 2.0)},
    {"iterations": 0},
    {"first_level_factor": 0},
    {"history_size": 0},
    {"passes": 0},
    {"max_memory": 0},
    {"init": ""},
    {"pooling": "min"},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_invalid_values_raise(options):
    with pytest.raises(LargestyleError):
        RenderConfig(**options)
    with pytest.raises(LargestyleError):
        dataclasses.replace(RenderConfig(), **options)


@pytest.mark.parametrize("options", [
    {"tile_size": 32}, {"tile_size": 48}, {"device": "cuda:1"}, {"device": "cpu"}, {"device": "cuda"},
    {"content_layers": ()}, {"style_layers": ()}, {"content_weight": 0.0}, {"init": "noise"},
    {"pooling": "max"}, {"style_layer_weights": (1, 2, 3, 4, 5)},
])
def test_valid_edge_values_accepted(options):
    RenderConfig(**options)


def test_error_message_names_the_option():
    with pytest.raises(LargestyleError, match="tile-size"):
        RenderConfig(tile_size=40)
    with pytest.raises(LargestyleError, match="relu9_9"):
        RenderConfig(content_layers=("relu9_9",))


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RenderConfig().iterations = 5


def test_make_config_rejects_unknown_names():
    with pytest.raises(LargestyleError, match="bogus"):
        make_config(bogus=1)
    with pytest.raises(LargestyleError, match="style_weights"):
        make_config(iterations=5, style_weights=2)


def test_make_config_converts_lists_and_memory():
    config = make_config(content_layers=["relu3_1"], style_layers=["relu1_1", "relu2_1"],
                         style_layer_weights=[1, 3], max_memory="2GB")
    assert config.content_layers == ("relu3_1",)
    assert config.style_layers == ("relu1_1", "relu2_1")
    assert config.style_layer_weights == (1, 3)
    assert config.max_memory == 2 * 10**9
    assert make_config(max_memory="512MiB").max_memory == 512 * 2**20
    assert make_config(max_memory=1000).max_memory == 1000
    assert make_config(max_memory=None).max_memory is None
    hash(config)  # tuples keep the frozen config hashable


def test_make_config_reports_bad_memory():
    with pytest.raises(LargestyleError, match="lots"):
        make_config(max_memory="lots")


def test_layer_weights_sum_to_one():
    equal = RenderConfig().layer_weights
    assert list(equal) == list(RenderConfig().style_layers)
    assert sum(equal.values()) == pytest.approx(1.0)
    assert len(set(equal.values())) == 1
    weighted = make_config(style_layers=["relu1_1", "relu2_1", "relu3_1"], style_layer_weights=[1, 1, 2]).layer_weights
    assert weighted == pytest.approx({"relu1_1": 0.25, "relu2_1": 0.25, "relu3_1": 0.5})
    assert make_config(style_layers=()).layer_weights == {}


def test_to_dict_round_trips():
    config = make_config(iterations=7, content_layers=["relu2_1"])
    assert RenderConfig(**config.to_dict()) == config


def test_every_option_has_help():
    for f in option_fields():
        assert f.metadata.get("help"), f.name


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2 * 2**20) == "2.0 MiB"
    assert format_bytes(3 * 2**30) == "3.0 GiB"


def test_negative_style_layer_weight_raises():
    with pytest.raises(LargestyleError):
        make_config(style_layers=["relu1_1", "relu2_1"], style_layer_weights=[2, -1])
