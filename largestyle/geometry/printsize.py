"""Physical print sizes: "24x36in" or "60x90cm" at a dpi -> the output's pixel size.

The rule, also in the README: the print is turned to the content's orientation (a
landscape photo on 24x36in paper is printed 36 in wide). ``inside`` scales the whole
content to the largest size within the print; ``crop`` fills the print exactly and
crops the content's centre to the print's aspect ratio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import LargestyleError

MM_PER_INCH = 25.4
_UNITS_PER_INCH = {"in": 1.0, "cm": MM_PER_INCH / 10, "mm": MM_PER_INCH}


@dataclass(frozen=True)
class PrintSize:
    width: float
    height: float
    unit: str  # "in", "cm" or "mm"

    def inches(self) -> tuple[float, float]:
        per_inch = _UNITS_PER_INCH[self.unit]
        return self.width / per_inch, self.height / per_inch

    def __str__(self) -> str:
        return f"{self.width:g}x{self.height:g}{self.unit}"


def parse_print_size(text: str) -> PrintSize:
    """'24x36in', '60 x 90 cm', '210x297mm' -> PrintSize."""
    match = re.fullmatch(r"\s*(\d*\.?\d+)\s*[x×]\s*(\d*\.?\d+)\s*(in|cm|mm)\s*", str(text).lower())
    if not match or not float(match.group(1)) > 0 or not float(match.group(2)) > 0:
        raise LargestyleError(f"cannot read --print-size {text!r}: use WIDTHxHEIGHT with a unit, "
                              "e.g. 24x36in, 60x90cm or 210x297mm")
    return PrintSize(float(match.group(1)), float(match.group(2)), match.group(3))


def print_pixels(size: PrintSize, dpi: float) -> tuple[int, int]:
    """(width, height) in pixels of the whole print at ``dpi``."""
    width, height = size.inches()
    return max(1, round(width * dpi)), max(1, round(height * dpi))


def output_shape(content_height: int, content_width: int, size: PrintSize, dpi: float,
                 fit: str) -> tuple[int, int]:
    """(height, width) of the output for content of that size on the print."""
    long_px, short_px = sorted(print_pixels(size, dpi), reverse=True)
    if content_width > content_height:
        box_h, box_w = short_px, long_px
    elif content_width < content_height:
        box_h, box_w = long_px, short_px
    else:  # square content: the print as given
        box_w, box_h = print_pixels(size, dpi)
    if fit == "crop":
        return box_h, box_w
    scale = min(box_h / content_height, box_w / content_width)
    return (min(box_h, max(1, round(content_height * scale))),
            min(box_w, max(1, round(content_width * scale))))


def crop_box(content_height: int, content_width: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the content's central part with the aspect ratio height:width."""
    if content_width * height > content_height * width:  # content wider than the output: trim the sides
        crop_h, crop_w = content_height, max(1, round(content_height * width / height))
    else:
        crop_h, crop_w = max(1, round(content_width * height / width)), content_width
    return (content_height - crop_h) // 2, (content_width - crop_w) // 2, crop_h, crop_w


def describe(height: int, width: int, dpi: float) -> str:
    """'10800 x 7200 px = 36 x 24 in (91.4 x 61 cm) at 300 dpi'."""
    w_in, h_in = width / dpi, height / dpi
    return (f"{width} x {height} px = {w_in:.3g} x {h_in:.3g} in "
            f"({w_in * 2.54:.3g} x {h_in * 2.54:.3g} cm) at {dpi:g} dpi")
