"""Command line: ``largestyle render CONTENT STYLE -o OUT --target-size N``.

Render options are generated from ``RenderConfig`` so names, defaults and help
cannot drift from the API.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from . import __version__
from .config import RenderConfig, make_config, option_fields
from .errors import LargestyleError

EXIT_USAGE = 2


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    render = commands.add_parser("render", help="paint CONTENT in the style of STYLE",
                                 description="Paint CONTENT in the style of STYLE.")
    render.add_argument("content", help="content image (the photo)")
    render.add_argument("style", help="style image (the artwork)")
    render.add_argument("-o", "--output", help="output image, .png or .jpg (default: CONTENT-STYLE.png here)")
    add_render_options(render)
    render.add_argument("-q", "--quiet", action="store_true", help="no progress output (warnings still shown)")
    render.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def default_output(content: str, style: str) -> Path:
    return Path(f"{Path(content).stem}-{Path(style).stem}.png")


def run_render(args: argparse.Namespace) -> int:
    from .api import run
    from .imageio import check_output_path, save_image
    from .progress import ProgressPrinter

    options = {f.name: getattr(args, f.name) for f in option_fields() if getattr(args, f.name) is not None}
    config = make_config(**options)
    output = check_output_path(args.output or default_output(args.content, args.style))
    printer = ProgressPrinter(quiet=args.quiet)
    image = run(args.content, args.style, config, printer)
    save_image(image, output)
    if not args.quiet:
        print(f"wrote {output} ({image.shape[2]}x{image.shape[1]})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"render": run_render}[args.command](args)
    except LargestyleError as exc:
        if args.debug:
            raise
        print(f"largestyle: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, RuntimeError) as exc:
        if args.debug or not _out_of_memory(exc):
            raise
        print("largestyle: error: out of memory; set a smaller --max-memory (or --tile-size) so more "
              "levels are tiled", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("largestyle: interrupted; no output written", file=sys.stderr)
        return 130


def _out_of_memory(exc: BaseException) -> bool:
    """True for host or device out-of-memory errors, which PyTorch raises in several forms."""
    import torch
    text = str(exc).lower()
    return (isinstance(exc, (MemoryError, torch.OutOfMemoryError))
            or any(sign in text for sign in ("out of memory", "can't allocate memory", "not enough memory")))


if __name__ == "__main__":
    sys.exit(main())
