"""The argument parser: render options generated from ``RenderConfig``, the commands and their options.

Render options come from the config's field metadata, so names, defaults and help
cannot drift from the API.
"""

from __future__ import annotations

import argparse
import typing

from ..config.settings import CHECKPOINT_EVALUATIONS, CHECKPOINT_SECONDS, WEIGHT_FORMATS, RenderConfig, option_fields
from ..core.errors import LargestyleError
from ..core.version import __version__
from ..network.weights import SOURCES, WEIGHTS_DIR_ENV
from .exits import EXIT_USAGE

QUIET_HELP = "no progress output (warnings still shown)"


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
            kwargs.update(choices=meta["choices"], metavar=None, type=kind)
        else:
            kwargs["type"] = kind
        parser.add_argument("--" + field.name.replace("_", "-"), **kwargs)


def render_options(args: argparse.Namespace) -> dict:
    """The render options given on the command line, by RenderConfig field name."""
    options = {f.name: getattr(args, f.name) for f in option_fields() if getattr(args, f.name) is not None}
    if "print_size" in options and "target_size" in options:
        raise LargestyleError("--print-size sets the output's pixel size (with --dpi); drop --target-size")
    return options


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restart", action="store_true",
                        help="discard the job directory's checkpoints and start over")
    parser.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVALUATIONS, metavar="N",
                        help="save in-level progress every N loss evaluations "
                             f"(default: {CHECKPOINT_EVALUATIONS}), or sooner by --checkpoint-minutes")
    parser.add_argument("--checkpoint-minutes", type=float, default=CHECKPOINT_SECONDS / 60, metavar="M",
                        help=f"... or every M minutes, whichever comes first (default: {CHECKPOINT_SECONDS / 60:g})")


def checkpoint_policy(args: argparse.Namespace):
    """The CheckpointPolicy that the job options (see add_job_options) ask for."""
    from ..engine.checkpoints import CheckpointPolicy

    if args.checkpoint_every < 1 or not args.checkpoint_minutes > 0:
        raise LargestyleError("--checkpoint-every must be at least 1 and --checkpoint-minutes above 0")
    return CheckpointPolicy(args.checkpoint_every, args.checkpoint_minutes * 60)


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line and a pointer to --help, not the whole usage."""

    # The command whose --help to point at; argparse reports some errors from the top-level parser.
    command: str | None = None

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"largestyle: error: {message}; see '{self.command or self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="largestyle", description="Neural style transfer at print resolution.")
    parser.add_argument("--version", action="version", version=f"largestyle {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_render(commands, common)
    _add_batch(commands, common)
    _add_plan(commands, common)
    _add_weights(commands, common)
    return parser


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("content", help="content image (the photo)")
    parser.add_argument("styles", nargs="+", metavar="STYLE",
                        help="style image (the artwork); several are blended, weighted by --style-blend")


def _add_render(commands, common: argparse.ArgumentParser) -> None:
    render = commands.add_parser("render", help="paint CONTENT in the style of STYLE", parents=[common],
                                 description="Paint CONTENT in the style of STYLE.")
    _add_inputs(render)
    render.add_argument("-o", "--output", help="output image: .png, .jpg or .tif (default: CONTENT-STYLE.png here)")
    add_render_options(render)
    add_job_options(render)
    render.add_argument("--job-dir", help="where checkpoints, progress and the report are kept "
                                          "(default: OUTPUT's name with .job, beside it)")
    render.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def _add_batch(commands, common: argparse.ArgumentParser) -> None:
    batch = commands.add_parser("batch", parents=[common], help="run the renders listed in a TOML job file",
                                description="Run every render in JOBS (a TOML file), one after another: "
                                            "finished ones are skipped, a partial one resumes, a failed one is "
                                            "recorded and the batch goes on.")
    batch.add_argument("jobs", help="the job file (see README: Batch renders)")
    batch.add_argument("--dry-run", action="store_true", help="list what would run, with each job's plan")
    add_job_options(batch)
    batch.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def _add_plan(commands, common: argparse.ArgumentParser) -> None:
    plan = commands.add_parser("plan", parents=[common], help="show how a render would run, without rendering",
                               description="Each level's size, strategy, tiles, memory and time estimates "
                                           "(from a short calibration run), without rendering.")
    _add_inputs(plan)
    add_render_options(plan)


def _add_weights(commands, common: argparse.ArgumentParser) -> None:
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
