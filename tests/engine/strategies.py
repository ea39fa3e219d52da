"""The three strategies on tiny images, shared by the tests that check an option in each of them."""

# Shallow layers keep each evaluation cheap; the options below force each strategy at these sizes.
SHALLOW = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
MODES = {
    "whole": dict(target_size=96),
    "exact": dict(target_size=96, tiling="exact", max_memory="1MB", tile_size=48),
    "blend": dict(target_size=64, tiling="blend", max_memory="1MB", tile_size=48, passes=1),
}
