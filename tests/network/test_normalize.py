"""Gatys normalisation: mean activation 1 per filter, the same features up to a per-channel factor."""

import numpy as np
import pytest
import torch
from PIL import Image

from largestyle.cli.main import main
from largestyle.network.vgg import VGG19Features
from largestyle.network.flavours import FLAVOURS
from largestyle.network.normalize import normalize
from largestyle.network.weightfiles import read_weights
from largestyle.network.weights import randomise

LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1")


def network_with(state, flavour):
    network = VGG19Features("relu3_1")
    network.convs.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in network.convs})
    network.set_input(flavour)
    return network


@pytest.fixture(scope="module")
def state():
    network = VGG19Features("relu3_1")
    randomise(network)
    # Uneven channel scales, as trained filters have: normalisation must even them out.
    generator = torch.Generator().manual_seed(1)
    for conv in network.convs.values():
        factors = torch.rand(conv.out_channels, generator=generator) * 5 + 0.1
        conv.weight.mul_(factors.view(-1, 1, 1, 1))
        conv.bias.add_(0.01).mul_(factors)
    return {f"{name}.{part}": getattr(conv, part).detach().clone()
            for name, conv in network.convs.items() for part in ("weight", "bias")}


def images(seed, count=2, size=40):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=generator), size=(size, size),
                                            mode="bilinear", align_corners=False) for _ in range(count)]


def test_every_filter_averages_one_on_the_given_images(state):
    flavour = FLAVOURS["torchvision"]
    measured_on = images(0)
    normalized = network_with(normalize(state, flavour, measured_on), flavour)
    original = network_with(state, flavour)
    for layer in LAYERS:
        means = torch.cat([normalized(x, [layer])[layer] for x in measured_on], dim=3).mean(dim=(0, 2, 3))
        alive = torch.cat([original(x, [layer])[layer] for x in measured_on], dim=3).mean(dim=(0, 2, 3)) > 1e-8
        torch.testing.assert_close(means[alive], torch.ones(int(alive.sum())), rtol=1e-4, atol=1e-4)
        before = torch.cat([original(x, [layer])[layer] for x in measured_on], dim=3).mean(dim=(0, 2, 3))
        assert float(before[alive].std()) > 0.1  # the test starts from uneven channels


def test_features_are_unchanged_up_to_a_channel_factor(state):
    flavour = FLAVOURS["torchvision"]
    normalized = network_with(normalize(state, flavour, images(0)), flavour)
    original = network_with(state, flavour)
    (other,) = images(5, count=1, size=36)
    for layer in LAYERS:
        a, b = original(other, [layer])[layer], normalized(other, [layer])[layer]
        factor = b.sum(dim=(0, 2, 3)) / a.sum(dim=(0, 2, 3)).clamp_min(1e-12)
        torch.testing.assert_close(b, a * factor.view(1, -1, 1, 1), rtol=1e-3, atol=1e-4)


def test_normalize_command_writes_a_normalized_flavour(state, tmp_path, capsys):
    full = {f"features.{i}.{part}": state[f"{name}.{part}"]
            for name, i in (("conv1_1", 0), ("conv1_2", 2), ("conv2_1", 5), ("conv2_2", 7), ("conv3_1", 10))
            for part in ("weight", "bias")}
    source = tmp_path / "partial.pth"
    torch.save(full, source)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, image in enumerate(images(3)):
        Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "normalized.pth"
    assert main(["weights", "normalize", str(source), str(out), "--images", str(folder),
                 "--weights-format", "torchvision"]) == 0
    assert "torchvision-normalized flavour, normalised on 2 images" in capsys.readouterr().out
    written = read_weights(out)
    assert written.flavour == "torchvision-normalized" and written.layers == ("conv1_1", "conv1_2", "conv2_1",
                                                                            "conv2_2", "conv3_1")
    assert FLAVOURS[written.flavour].channels == FLAVOURS["torchvision"].channels
    assert main(["weights", "normalize", str(source), str(out), "--images", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
