"""Weight flavours: the input each VGG-19 expects.

The loss terms are divided by their targets' mean squares (``largestyle.gatys.losses``), so no
flavour needs loss weights of its own, whatever the scale of its activations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


# torchvision's ImageNet statistics for RGB input in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The Caffe network takes 0-255 BGR input without dividing by std, so its activations are
# about 256 * 0.226 (0.226: ImageNet's mean std) times torchvision's; scale-free losses ignore it.
CAFFE_ACTIVATION_SCALE = 256 * 0.226
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Flavour:
    name: str
    channels: str  # "RGB" or "BGR": order the network expects
    scale: float  # input pixels in [0, 1] are multiplied by this
    mean: tuple[float, float, float]  # subtracted after scaling, in the network's channel order
    std: tuple[float, float, float]  # then divided by this
    description: str

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """RGB (N, 3, H, W) in [0, 1] -> this network's input."""
        if self.channels == "BGR":
            image = image.flip(-3)
        # Per channel with the constants as numbers: no constant tensor crosses to the image's device.
        return torch.stack([(image[:, channel] * self.scale - mean) / std
                            for channel, (mean, std) in enumerate(zip(self.mean, self.std))], dim=1)


FLAVOURS = {
    "torchvision": Flavour(
        "torchvision", "RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD,
        "torchvision's ImageNet VGG-19 (vgg19-dcbb9e9d.pth): RGB in [0, 1], ImageNet mean and std"),
    "caffe": Flavour(
        "caffe", "BGR", 256.0, CAFFE_MEAN_BGR, (1.0, 1.0, 1.0),
        "the original Caffe VGG-19 as converted for neural-style ports (vgg19-d01eb7cb.pth): "
        "BGR in [0, 256], mean subtracted"),
    "lasagne": Flavour(
        "lasagne", "BGR", 255.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0),
        "Lasagne's normalised VGG-19 (vgg19_normalized.pkl): BGR in [0, 255], filters scaled "
        "to mean activation 1"),
    "gatys": Flavour(
        "gatys", "BGR", 255.0, CAFFE_MEAN_BGR, (1.0, 1.0, 1.0),
        "Gatys et al.'s normalised VGG-19 (vgg_conv.pth): BGR in [0, 255], mean subtracted"),
    "random": Flavour(
        "random", "RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD,
        "largestyle's seeded random network, each layer scaled to mean activation 1"),
}


# Files rescaled by `largestyle weights normalize`: the same input, activations averaging 1.
for _name in ("torchvision", "caffe"):
    FLAVOURS[f"{_name}-normalized"] = dataclasses.replace(
        FLAVOURS[_name], name=f"{_name}-normalized",
        description=FLAVOURS[_name].description + "; filters rescaled to mean activation 1")


def normalized_flavour(name: str) -> str:
    """The flavour of a file after `weights normalize`: activations average 1, same input."""
    return f"{name}-normalized" if f"{name}-normalized" in FLAVOURS else name
