"""VGG-19's geometry as data: layer names, strides, receptive fields, halos and the pixel grid.

Pure arithmetic on the architecture, with no weights and no torch: the planner, the
tiling geometry and the network module all read it from here.
"""

from __future__ import annotations

LAYER_NAMES = (
    "relu1_1", "relu1_2",
    "relu2_1", "relu2_2",
    "relu3_1", "relu3_2", "relu3_3", "relu3_4",
    "relu4_1", "relu4_2", "relu4_3", "relu4_4",
    "relu5_1", "relu5_2", "relu5_3", "relu5_4",
)

# Output channels of each conv block; a 2x2 pooling layer separates blocks.
BLOCK_CHANNELS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))

# VGG-19's largest stride (four 2x2 poolings). Tiles, cores and halos start on multiples of
# it so that a window's pooled feature grids line up with the whole image's.
GRID = 16
# The four poolings need at least this many pixels on every side of what the network sees.
MIN_SIDE = GRID


def layer_sequence(deepest: str) -> list[tuple[str, str]]:
    """[(kind, name)] from the input to ``deepest``: kinds 'conv', 'pool'."""
    if deepest not in LAYER_NAMES:
        raise ValueError(f"unknown layer {deepest!r}")
    sequence = []
    for b, block in enumerate(BLOCK_CHANNELS):
        if b:
            sequence.append(("pool", f"pool{b}"))
        for i in range(len(block)):
            name = f"{b + 1}_{i + 1}"
            sequence.append(("conv", f"conv{name}"))
            if f"relu{name}" == deepest:
                return sequence
    raise AssertionError("unreachable")


def deepest_of(layers) -> str:
    """The deepest of ``layers`` in network order."""
    return max(layers, key=LAYER_NAMES.index)


def receptive_field(layer: str) -> tuple[int, int]:
    """(size, stride) in input pixels of one unit of ``layer``: relu5_1 -> (156, 16)."""
    size, jump = 1, 1
    for kind, _ in layer_sequence(layer):
        size += 2 * jump if kind == "conv" else jump
        jump *= 1 if kind == "conv" else 2
    return size, jump


def stride(layer: str) -> int:
    """Input pixels per feature position of ``layer``: relu4_2 -> 8."""
    return receptive_field(layer)[1]


def channels(layer: str) -> int:
    """Feature channels of ``layer``: relu4_2 -> 512."""
    block, index = (int(part) for part in layer[4:].split("_"))
    return BLOCK_CHANNELS[block - 1][index - 1]


def halo(layers) -> int:
    """Context (px) a tile needs on each side for ``layers`` to match the untiled network.

    The receptive-field radius of the deepest layer, rounded up to a multiple of
    ``GRID`` so that a tile's pooled feature grids line up with the whole image's:
    80 px for relu5_1.
    """
    radius = receptive_field(deepest_of(layers))[0] // 2
    return -(-radius // GRID) * GRID


def conv_channels() -> dict[str, tuple[int, int]]:
    """conv name -> (in_channels, out_channels) for the full VGG-19."""
    result, previous = {}, 3
    for b, block in enumerate(BLOCK_CHANNELS):
        for i, out in enumerate(block):
            result[f"conv{b + 1}_{i + 1}"] = (previous, out)
            previous = out
    return result
