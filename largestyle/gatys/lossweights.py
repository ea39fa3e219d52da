"""The loss weights of a render, resolved once: the user's where set, else the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.settings import DEFAULT_LOSS_WEIGHTS, RenderConfig


@dataclass(frozen=True)
class LossWeights:
    """Everything that weighs the loss terms: the three term weights and the layers they apply to."""

    content: float
    style: float
    tv: float
    content_layers: tuple[str, ...]
    style_layers: dict[str, float]  # style layer -> its share of the style term (the shares sum to 1)

    def __post_init__(self):
        for name in ("content", "style", "tv"):
            if not isinstance(getattr(self, name), (int, float)):
                raise ValueError(f"the {name} weight is missing ({getattr(self, name)!r}): resolve it first")

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the loss reads, content layers first, each once."""
        return tuple(dict.fromkeys(self.content_layers + tuple(self.style_layers)))


def resolve_loss_weights(config: RenderConfig) -> LossWeights:
    """The weights a render uses: those set in ``config``, else the defaults (the same for every weights file)."""
    defaults = DEFAULT_LOSS_WEIGHTS
    chosen = (config.content_weight, config.style_weight, config.tv_weight)
    content, style, tv = (default if value is None else value for value, default in zip(chosen, defaults))
    return LossWeights(content, style, tv, tuple(config.content_layers), config.layer_weights)
