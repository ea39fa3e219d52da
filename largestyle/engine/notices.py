"""What a user should know before a render starts: untrained weights, tiles over budget, a small style image."""

from __future__ import annotations

from ..config.settings import RenderConfig
from ..core.messages import Notice
from ..core.units import format_bytes
from ..geometry.pyramid import style_side
from ..network.weights import RANDOM_WEIGHTS_WARNING, WeightsInfo
from .events import LevelPlan


def render_notices(config: RenderConfig, info: WeightsInfo | None, levels: tuple[LevelPlan, ...], budget: int,
                   style_shapes, height: int, width: int) -> list[Notice]:
    """The notices for a height x width render of these levels with style images of ``style_shapes``."""
    notices = []
    if info is not None and info.is_random and config.weights != "random":
        notices.append(Notice("random-weights", RANDOM_WEIGHTS_WARNING))
    for level in levels:
        if level.tiled_bytes and level.tiled_bytes > budget:
            notices.append(Notice("tile-over-budget", (
                f"level {level.index + 1}: {level.tile_size} px tiles need about "
                f"{format_bytes(level.tiled_bytes)}, more than the {format_bytes(budget)} budget; "
                "a smaller --tile-size (or none, to size tiles from the budget) is safer")))
    needed = style_side(config, height, width)
    for number, (style_height, style_width) in enumerate(style_shapes, 1):
        if max(style_height, style_width) < needed:
            which = f"style image {number}" if len(style_shapes) > 1 else "the style image"
            notices.append(Notice("style-upscaled", (
                f"{which} is {style_width}x{style_height} px; at --style-scale "
                f"{config.style_scale:g} the {width}x{height} px output needs it {needed} px on the long "
                f"side, so its texture is enlarged {needed / max(style_height, style_width):.1f}x and will look "
                f"blurry; use a style image of at least {needed} px, or a lower --style-scale")))
    return notices
