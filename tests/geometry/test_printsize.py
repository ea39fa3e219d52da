"""Print-size arithmetic: physical sizes to pixels, orientation, fit inside or crop."""

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.core.errors import LargestyleError
from largestyle.geometry.printsize import PrintSize, crop_box, describe, output_shape, parse_print_size, print_pixels
from largestyle.geometry.pyramid import content_side, crop, output_frame, style_side


@pytest.mark.parametrize("text, expected", [
    ("24x36in", PrintSize(24, 36, "in")),
    ("60 x 90 cm", PrintSize(60, 90, "cm")),
    ("210x297mm", PrintSize(210, 297, "mm")),
    ("8.5X11IN", PrintSize(8.5, 11, "in")),
])
def test_parse(text, expected):
    assert parse_print_size(text) == expected


@pytest.mark.parametrize("text", ["24x36", "24in", "0x36in", "24x36ft", "axbin", ""])
def test_parse_rejects_with_an_example(text):
    with pytest.raises(LargestyleError, match="24x36in"):
        parse_print_size(text)
    with pytest.raises(LargestyleError):
        make_config(print_size=text)


def test_pixels_at_dpi():
    assert print_pixels(parse_print_size("24x36in"), 300) == (7200, 10800)
    assert print_pixels(parse_print_size("60x90cm"), 300) == (7087, 10630)  # 23.62 x 35.43 in
    assert print_pixels(parse_print_size("254x127mm"), 100) == (1000, 500)


def test_print_turns_to_the_contents_orientation():
    size = parse_print_size("24x36in")
    assert output_shape(3000, 4500, size, 300, "crop") == (7200, 10800)  # landscape: 36 in wide
    assert output_shape(4500, 3000, size, 300, "crop") == (10800, 7200)  # portrait: 36 in high
    assert output_shape(1000, 1000, size, 300, "crop") == (10800, 7200)  # square: as written (24 wide)


def test_inside_fits_the_whole_content_within_the_print():
    size = parse_print_size("24x36in")
    assert output_shape(3000, 4000, size, 300, "inside") == (7200, 9600)  # 4:3 -> 32 x 24 in
    assert output_shape(1000, 4000, size, 300, "inside") == (2700, 10800)  # a panorama: width-bound
    for content in ((3000, 4000), (1000, 4000), (4000, 3000), (999, 1001)):
        h, w = output_shape(*content, size, 300, "inside")
        box_h, box_w = (10800, 7200) if content[0] > content[1] else (7200, 10800)
        assert h <= box_h and w <= box_w and (h == box_h or w == box_w)
        assert h / w == pytest.approx(content[0] / content[1], rel=2e-3)


def test_crop_box_is_central_with_the_outputs_aspect():
    assert crop_box(3000, 4000, 7200, 10800) == (166, 0, 2667, 4000)  # trims top and bottom
    assert crop_box(3000, 6000, 7200, 10800) == (0, 750, 3000, 4500)  # trims the sides
    assert crop_box(100, 150, 20, 30) == (0, 0, 100, 150)  # already the right shape


def test_describe_states_pixels_and_physical_size():
    assert describe(7200, 10800, 300) == "10800 x 7200 px = 36 x 24 in (91.4 x 61 cm) at 300 dpi"


def test_output_frame_and_what_the_inputs_need():
    plain = make_config(target_size=512)
    assert output_frame(plain, 300, 600) == ((256, 512), None)
    assert content_side(plain, 3000, 6000) == 512 and content_side(plain, 30, 60) == 60
    assert style_side(make_config(target_size=512, style_scale=0.5), 256, 512) == 256
    cropped = make_config(print_size="2x1in", dpi=100, print_fit="crop")
    (shape, box) = output_frame(cropped, 300, 400)
    assert shape == (100, 200) and box == (50, 0, 200, 400)
    image = torch.arange(300 * 400.0).view(1, 300, 400)
    assert torch.equal(crop(image, box), image[:, 50:250, :])
    # the crop is 400 px wide for a 200 px output: half the content's resolution is enough
    assert content_side(cropped, 300, 400) == 200
