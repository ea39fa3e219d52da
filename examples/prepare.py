"""Write the demo's inputs: scikit-image's cat photo and a generated painting.

The painting is made here, from a seed, so the demo needs no download: short
thick brush strokes in a night-sky palette that follow a swirling flow field.
"""

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from skimage import data

PALETTE = [(18, 38, 92), (33, 72, 156), (64, 118, 196), (110, 160, 214), (232, 205, 86),
           (246, 226, 140), (30, 60, 40), (200, 120, 40)]


def painting(size=(600, 450), strokes=6000, seed=7) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new("RGB", size, PALETTE[0])
    draw = ImageDraw.Draw(image)
    centres = rng.uniform((0, 0), (width, height), size=(4, 2))
    for _ in range(strokes):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        # Strokes curl around the nearest of a few centres, like eddies in a night sky.
        cx, cy = centres[np.argmin(np.hypot(centres[:, 0] - x, centres[:, 1] - y))]
        angle = math.atan2(y - cy, x - cx) + math.pi / 2 + rng.normal(0, 0.2)
        near = math.hypot(x - cx, y - cy) < 0.12 * width
        colour = PALETTE[rng.choice([4, 5, 7]) if near else rng.choice([0, 1, 2, 3, 3, 6])]
        colour = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in colour)
        length = rng.uniform(8, 22)
        end = (x + length * math.cos(angle), y + length * math.sin(angle))
        draw.line([(x, y), end], fill=colour, width=int(rng.integers(3, 7)))
    return image.filter(ImageFilter.SMOOTH)


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.chelsea()).save(out / "chelsea.png")
    painting().save(out / "painting.png")
    print(f"wrote {out / 'chelsea.png'} and {out / 'painting.png'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/inputs")
