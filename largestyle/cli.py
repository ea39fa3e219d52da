"""Command line: ``largestyle render CONTENT STYLE -o OUT --target-size N``.

Render options are generated from ``RenderConfig`` so names, defaults and help
cannot drift from the API.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from pathlib import Path

from . import __version__
from .config import WEIGHT_FORMATS, RenderConfig, make_config, option_fields
from .errors import LargestyleError
from .features import deepest_of, layer_sequence
from .flavours import FLAVOURS, normalized_flavour
from .normalize import normalize
from .pyramid import fit_long_side, resize
from .weightfiles import read_weights, write_compact
from .memory import is_out_of_memory
from .weights import NO_FETCH_ENV, SOURCES, WEIGHTS_DIR_ENV, fetch, find_weights

EXIT_USAGE = 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def _scalar_type(hint) -> type:
    """int, float or str inside hints like ``int | None`` or ``tuple[float, ...] | None``."""
    for arg in typing.get_args(hint) or (hint,):
        if arg is type(None):
            continue
        inner = typing.get_args(arg)
        return inner[0] if inner else arg
    raise TypeError(hint)


def _list_of(kind: type):
    def parse(text: str):
        try:
            return tuple(kind(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}, got {text!r}")
    parse.__name__ = f"list of {kind.__name__}"
    return parse


def _show_default(value) -> str:
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    return str(value).replace("%", "%%")


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """One option per RenderConfig field; unset options keep the config's default."""
    hints = typing.get_type_hints(RenderConfig)
    for field in option_fields():
        meta = field.metadata
        kind = _scalar_type(hints[field.name])
        help_text = meta["help"]
        if field.default is not None:
            help_text += f" (default: {_show_default(field.default)})"
        kwargs = {"default": None, "help": help_text, "metavar": field.name.upper().split("_")[-1]}
        if meta.get("list"):
            kwargs["type"] = _list_of(kind)
            kwargs["metavar"] = "A,B,..."
        elif "parse" in meta:
            kwargs["type"] = str
        elif "choices" in meta:
            kwargs.update(choices=meta["choices"], metavar=None)
        else:
            kwargs["type"] = kind
        parser.add_argument("--" + field.name.replace("_", "-"), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="largestyle", description="Neural style transfer at print resolution.")
    parser.add_argument("--version", action="version", version=f"largestyle {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    render = commands.add_parser("render", help="paint CONTENT in the style of STYLE", parents=[common],
                                 description="Paint CONTENT in the style of STYLE.")
    render.add_argument("content", help="content image (the photo)")
    render.add_argument("style", help="style image (the artwork)")
    render.add_argument("-o", "--output", help="output image, .png or .jpg (default: CONTENT-STYLE.png here)")
    add_render_options(render)
    render.add_argument("-q", "--quiet", action="store_true", help="no progress output (warnings still shown)")

    plan = commands.add_parser("plan", parents=[common], help="show how a render would run, without rendering",
                               description="Each level's size, strategy, tiles, memory and time estimates "
                                           "(from a short calibration run), without rendering.")
    plan.add_argument("content", help="content image (the photo)")
    plan.add_argument("style", help="style image (the artwork)")
    add_render_options(plan)

    weights = commands.add_parser("weights", help="fetch, inspect or convert VGG-19 weights",
                                  description="Fetch, inspect or convert VGG-19 weights.")
    actions = weights.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", parents=[common], help="download a flavour's official weights",
                               description="Download, check the sha256, and keep only the features (about 80 MB).")
    fetch.add_argument("--flavour", choices=tuple(SOURCES), default="torchvision",
                       help="which network (default: torchvision)")
    fetch.add_argument("--dir", help=f"where to keep it (default: ${WEIGHTS_DIR_ENV} or weights/)")
    fetch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    info = actions.add_parser("info", parents=[common], help="describe a weights file")
    info.add_argument("file")
    convert = actions.add_parser("convert", parents=[common], help="any supported format -> compact features-only file")
    convert.add_argument("input")
    convert.add_argument("output")
    normalize = actions.add_parser(
        "normalize", parents=[common], help="rescale every filter to mean activation 1 over some images",
        description="Gatys normalisation: the network's function is unchanged (up to a per-channel factor) "
                    "and the style layers are weighed more evenly. Writes a compact features-only file.")
    normalize.add_argument("input")
    normalize.add_argument("output")
    normalize.add_argument("--images", required=True, help="folder of images to measure the activations on")
    normalize.add_argument("--size", type=int, default=256, help="long side the images are resized to (default: 256)")
    for action in (info, convert, normalize):
        action.add_argument("--weights-format", choices=WEIGHT_FORMATS, help="format of the file (default: detected)")
    return parser


def default_output(content: str, style: str) -> Path:
    return Path(f"{Path(content).stem}-{Path(style).stem}.png")


def run_render(args: argparse.Namespace) -> int:
    from .api import run
    from .imageio import check_output_path, save_image
    from .progress import ProgressPrinter

    config = make_config(**_render_options(args))
    output = check_output_path(args.output or default_output(args.content, args.style))
    if config.weights is None:
        fetch_once(quiet=args.quiet)
    printer = ProgressPrinter(quiet=args.quiet)
    image = run(args.content, args.style, config, printer)
    save_image(image, output)
    if not args.quiet:
        print(f"wrote {output} ({image.shape[2]}x{image.shape[1]})", file=sys.stderr)
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .features import halo
    from .imageio import load_image
    from .planning import describe, seconds_per_pixel

    config = make_config(**_render_options(args))
    content = load_image(args.content, "content")
    load_image(args.style, "style")
    engine = Engine(config)
    levels, budget = engine.plan(*content.shape[-2:])
    print(describe(levels, budget, seconds_per_pixel(engine), halo(engine.layers), engine.memory))
    return 0


def _render_options(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in option_fields() if getattr(args, f.name) is not None}


def fetch_once(quiet: bool) -> None:
    """Without trained weights, try one download; offline, say so and let the render go on."""
    if find_weights() is not None or os.environ.get(NO_FETCH_ENV) == "1":
        return
    print("largestyle: no trained VGG-19 weights found; fetching them once "
          f"(set {NO_FETCH_ENV}=1 to skip)", file=sys.stderr)
    try:
        path = fetch("torchvision", progress=not quiet)
    except LargestyleError as exc:
        print(f"largestyle: warning: {exc}", file=sys.stderr)
    else:
        print(f"largestyle: saved {path}", file=sys.stderr)


def run_weights(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        path = fetch(args.flavour, Path(args.dir) if args.dir else None, progress=not args.quiet)
        print(f"saved {path} ({path.stat().st_size / 2 ** 20:.0f} MiB, features only)")
    elif args.action == "info":
        print(describe_weights(read_weights(Path(args.file), args.weights_format)))
    elif args.action == "normalize":
        found = read_weights(Path(args.input), args.weights_format)
        images = [resize(image[None], fit_long_side(*image.shape[-2:], args.size))
                  for image in load_folder(Path(args.images))]
        state = normalize(found.state, FLAVOURS[found.flavour], images)
        flavour = normalized_flavour(found.flavour)
        path = write_compact(dataclasses.replace(found, state=state, flavour=flavour), Path(args.output))
        print(f"wrote {path}: {flavour} flavour, normalised on {len(images)} images")
    else:
        found = read_weights(Path(args.input), args.weights_format)
        path = write_compact(found, Path(args.output))
        print(f"wrote {path}: {found.flavour} flavour, {len(found.layers)} conv layers")
    return 0


def load_folder(folder: Path) -> list:
    """Every image in ``folder``, as (3, H, W) tensors."""
    from .imageio import load_image

    if not folder.is_dir():
        raise LargestyleError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LargestyleError(f"--images {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    return [load_image(path, "normalisation") for path in files]


def describe_weights(found) -> str:
    flavour = FLAVOURS[found.flavour]
    needed = [name for kind, name in layer_sequence(deepest_of(RenderConfig.content_layers + RenderConfig.style_layers))
              if kind == "conv"]
    usable = all(f"{name}.weight" in found.state for name in needed)
    rows = [
        ("file", found.path),
        ("format", found.format),
        ("flavour", f"{found.flavour}: {flavour.description} (chosen by {found.chosen_by})"),
        ("sha256", found.sha256),
        ("layers", f"{len(found.layers)} conv layers, {found.layers[0]} to {found.layers[-1]}"),
        ("usable", f"{'yes' if usable else 'no'}: the default layers need {needed[0]} to {needed[-1]}"),
        ("loss weights", f"content {flavour.content_weight:g}, style {flavour.style_weight:g}, "
                         f"tv {flavour.tv_weight:g} (defaults for this flavour)"),
    ]
    return "\n".join(f"{name:<13}{value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"render": run_render, "plan": run_plan, "weights": run_weights}[args.command](args)
    except LargestyleError as exc:
        if args.debug:
            raise
        print(f"largestyle: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, RuntimeError) as exc:
        if args.debug or not is_out_of_memory(exc):
            raise
        print("largestyle: error: out of memory; set a smaller --max-memory (or --tile-size) so more "
              "levels are tiled", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("largestyle: interrupted; no output written", file=sys.stderr)
        return 130



if __name__ == "__main__":
    sys.exit(main())
