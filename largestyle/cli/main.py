"""Command line: ``largestyle render CONTENT STYLE -o OUT --target-size N``.

Render options are generated from ``RenderConfig`` so names, defaults and help
cannot drift from the API.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import typing
from pathlib import Path

from ..core.version import __version__
from ..core.atomic import STORAGE_ERRNOS, remove_stale_temporaries, storage_problem
from ..engine.checkpoints import RenderInterrupted
from ..config.settings import CHECKPOINT_EVALUATIONS, CHECKPOINT_SECONDS, WEIGHT_FORMATS, RenderConfig, make_config, option_fields
from ..core.errors import LargestyleError, one_line
from ..core.vgg import deepest_of, layer_sequence
from ..network.flavours import FLAVOURS, normalized_flavour
from ..network.normalize import normalize
from ..geometry.pyramid import fit_long_side, resize
from ..network.weightfiles import read_weights, write_compact
from ..engine.memory import is_out_of_memory
from ..network.weights import NO_FETCH_ENV, SOURCES, WEIGHTS_DIR_ENV, fetch, find_weights

EXIT_USAGE = 2
EXIT_FAILED_JOBS = 1
EXIT_INTERRUPTED = 130
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
            kwargs.update(choices=meta["choices"], metavar=None, type=kind)
        else:
            kwargs["type"] = kind
        parser.add_argument("--" + field.name.replace("_", "-"), **kwargs)


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restart", action="store_true",
                        help="discard the job directory's checkpoints and start over")
    parser.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVALUATIONS, metavar="N",
                        help="save in-level progress every N loss evaluations "
                             f"(default: {CHECKPOINT_EVALUATIONS}), or sooner by --checkpoint-minutes")
    parser.add_argument("--checkpoint-minutes", type=float, default=CHECKPOINT_SECONDS / 60, metavar="M",
                        help=f"... or every M minutes, whichever comes first (default: {CHECKPOINT_SECONDS / 60:g})")


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
    render = commands.add_parser("render", help="paint CONTENT in the style of STYLE", parents=[common],
                                 description="Paint CONTENT in the style of STYLE.")
    render.add_argument("content", help="content image (the photo)")
    render.add_argument("style", help="style image (the artwork)")
    render.add_argument("-o", "--output", help="output image: .png, .jpg or .tif (default: CONTENT-STYLE.png here)")
    add_render_options(render)
    add_job_options(render)
    render.add_argument("--job-dir", help="where checkpoints, progress and the report are kept "
                                          "(default: OUTPUT's name with .job, beside it)")
    render.add_argument("-q", "--quiet", action="store_true", help="no progress output (warnings still shown)")

    batch = commands.add_parser("batch", parents=[common], help="run the renders listed in a TOML job file",
                                description="Run every render in JOBS (a TOML file), one after another: "
                                            "finished ones are skipped, a partial one resumes, a failed one is "
                                            "recorded and the batch goes on.")
    batch.add_argument("jobs", help="the job file (see README: Batch renders)")
    batch.add_argument("--dry-run", action="store_true", help="list what would run, with each job's plan")
    add_job_options(batch)
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress output (warnings still shown)")

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
    from ..jobs.job import run_job
    from ..io.write import check_output_path
    from .progress import ProgressPrinter

    config = make_config(**_render_options(args))
    output = check_output_path(args.output or default_output(args.content, args.style), config.bit_depth)
    if config.weights is None:
        fetch_once(quiet=args.quiet)
    with StopRequests() as stop:
        run_job(Path(args.content), Path(args.style), output, config, Path(args.job_dir) if args.job_dir else None,
                args.restart, stop.watch(ProgressPrinter(quiet=args.quiet)), stop, _policy(args))
    if not args.quiet:
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _policy(args: argparse.Namespace):
    from ..engine.checkpoints import CheckpointPolicy

    if args.checkpoint_every < 1 or not args.checkpoint_minutes > 0:
        raise LargestyleError("--checkpoint-every must be at least 1 and --checkpoint-minutes above 0")
    return CheckpointPolicy(args.checkpoint_every, args.checkpoint_minutes * 60)


class StopRequests:
    """SIGINT and SIGTERM ask a render to stop at its next safe point; a second one stops at once.

    While no render is under way (inputs and weights loading, between batch jobs) there is
    nothing to save, so a signal stops at once: the process never waits on a slow read.
    """

    def __init__(self):
        self.signal = None
        self.rendering = False

    def __call__(self) -> bool:
        return self.signal is not None

    def watch(self, callback):
        """``callback`` wrapped so that the render's start and end switch between stopping modes."""
        from ..engine.events import RenderFinished, RenderStarted

        def watched(event):
            if isinstance(event, (RenderStarted, RenderFinished)):
                self.rendering = isinstance(event, RenderStarted)
            callback(event)

        return watched

    def _handle(self, number, frame):
        if self.signal is not None or not self.rendering:
            raise KeyboardInterrupt
        self.signal = number
        print("largestyle: stopping at the next safe point to save a checkpoint "
              "(Ctrl-C again to stop at once, losing the work since the last one)", file=sys.stderr)

    def __enter__(self) -> StopRequests:
        self._previous = {number: signal.signal(number, self._handle) for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def run_batch(args: argparse.Namespace) -> int:
    from ..jobs.batch import index_entries, input_problem, run_batch as run_jobs, state_of, summary_table
    from ..jobs.batchfile import index_path, load_batch
    from ..io.read import probe_size
    from .progress import ProgressPrinter
    from ..jobs.report import write_index

    specs = load_batch(args.jobs)  # every job's settings and paths, checked together
    if args.dry_run:
        unplanned = 0
        probed: dict[tuple, tuple[int, int] | str] = {}  # (path, role, max pixels) -> size or problem
        unreadable: dict[str, int] = {}  # problem -> jobs it stops

        def probe(path: Path, role: str, max_pixels: int) -> tuple[int, int] | str:
            key = (path, role, max_pixels)
            if key not in probed:
                problem = input_problem(path, role)  # without opening: a pipe would block
                try:
                    probed[key] = problem or probe_size(path, role, max_pixels=max_pixels)
                except LargestyleError as exc:
                    probed[key] = str(exc)
            return probed[key]

        for number, spec in enumerate(specs, 1):
            print(f"[{number}/{len(specs)}] {spec.name}: {spec.content} in the style of {spec.style} -> "
                  f"{spec.output} ({state_of(spec, args.restart)})")
            try:
                config = make_config(**spec.options)
                sizes = [probe(path, role, config.max_input_pixels)
                         for path, role in ((spec.content, "content"), (spec.style, "style"))]
                problems = [size for size in sizes if isinstance(size, str)]
                for problem in problems:
                    unreadable[problem] = unreadable.get(problem, 0) + 1
                if problems:
                    raise LargestyleError("; ".join(problems))
                print(_plan_text(spec.content, spec.style, config, content_size=sizes[0]))
            except LargestyleError as exc:
                unplanned += 1
                print(f"cannot plan: {exc}")
        if unreadable:
            print("missing or unreadable inputs (their jobs would fail):")
            for problem, count in unreadable.items():
                print(f"  {problem} ({count} job{'s' if count != 1 else ''})")
        return EXIT_FAILED_JOBS if unplanned else 0

    def progress(spec):
        print(f"largestyle: job {spec.name}: {spec.content} in the style of {spec.style} -> {spec.output}",
              file=sys.stderr)
        return stop.watch(ProgressPrinter(quiet=args.quiet))

    remove_stale_temporaries(index_path(args.jobs))  # the index of a batch that was killed while writing it
    with StopRequests() as stop:
        outcomes = run_jobs(specs, progress, stop, _policy(args), args.restart)
    try:
        index = write_index(index_path(args.jobs), index_entries(outcomes))
    except OSError as exc:  # the renders stand; only their overview is missing
        index = None
        print(f"largestyle: warning: cannot write the index {index_path(args.jobs)}: {exc.strerror or exc}",
              file=sys.stderr)
    print(summary_table(outcomes))
    if index is not None:
        print(f"index: {index}")
    if any(outcome.status == "interrupted" for outcome in outcomes):
        print("largestyle: batch stopped; progress is saved: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED_JOBS if any(outcome.status == "failed" for outcome in outcomes) else 0


def run_plan(args: argparse.Namespace) -> int:
    print(_plan_text(args.content, args.style, make_config(**_render_options(args))))
    return 0


def _plan_text(content_path, style_path, config, content_size: tuple[int, int] | None = None) -> str:
    """The plan of one render; ``content_size`` is the content's (width, height) when the caller
    has already probed both images (a batch's dry run probes each file once)."""
    from ..engine.buffers import MappedCanvases
    from ..engine.engine import Engine
    from ..core.vgg import halo
    from ..io.read import probe_size
    from ..engine.estimate import describe, seconds_per_pixel
    from ..geometry.printsize import describe as describe_size
    from ..geometry.pyramid import output_frame

    if content_size is None:
        width, height = probe_size(content_path, "content", max_pixels=config.max_input_pixels)
        probe_size(style_path, "style", max_pixels=config.max_input_pixels)
    else:
        width, height = content_size
    # Plans as a render would, with a job directory for buffers larger than --max-ram (planning maps nothing).
    engine = Engine(config, canvases=MappedCanvases(Path(".")))
    levels, budget = engine.plan(height, width)
    size = describe_size(*output_frame(config, height, width)[0], config.dpi)
    # The calibration runs (and loads the network) once per device and network in a process.
    return (describe(levels, budget, seconds_per_pixel(engine), halo(engine.layers), engine.memory)
            + f"\noutput: {size}" + (f" (print {config.print_size}, {config.print_fit})" if config.print_size else ""))


def _render_options(args: argparse.Namespace) -> dict:
    options = {f.name: getattr(args, f.name) for f in option_fields() if getattr(args, f.name) is not None}
    if "print_size" in options and "target_size" in options:
        raise LargestyleError("--print-size sets the output's pixel size (with --dpi); drop --target-size")
    return options


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
    from ..network.normalize import smallest_side

    if args.action == "fetch":
        path = fetch(args.flavour, Path(args.dir) if args.dir else None, progress=not args.quiet)
        print(f"saved {path} ({path.stat().st_size / 2 ** 20:.0f} MiB, features only)")
    elif args.action == "info":
        print(describe_weights(read_weights(args.file, args.weights_format)))
    elif args.action == "normalize":
        output = _weights_output(args.input, args.output)
        found = read_weights(args.input, args.weights_format)
        images = _normalisation_images(Path(args.images), args.size, smallest_side(found.state))
        state = normalize(found.state, FLAVOURS[found.flavour], images)
        flavour = normalized_flavour(found.flavour)
        path = write_compact(dataclasses.replace(found, state=state, flavour=flavour), output)
        print(f"wrote {path}: {flavour} flavour, normalised on {len(images)} images")
    else:
        output = _weights_output(args.input, args.output)
        found = read_weights(args.input, args.weights_format)
        path = write_compact(found, output)
        print(f"wrote {path}: {found.flavour} flavour, {len(found.layers)} conv layers")
    return 0


def _normalisation_images(folder: Path, size: int, need: int) -> list:
    """The images of `weights normalize`, long side ``size``; an elongated one enlarged until its short
    side is ``need``, the least the deepest layer can see."""
    from ..geometry.pyramid import fit_short_side

    if size < need:
        raise LargestyleError(f"--size {size} is too small: the deepest layer sees the images {need} times "
                              f"smaller; use --size {need} or more")
    images = []
    for image in load_folder(folder):
        shape = fit_long_side(*image.shape[-2:], size)
        if min(shape) < need:
            shape = fit_short_side(*image.shape[-2:], need)
        images.append(resize(image[None], shape))
    return images


def _weights_output(source: str, output: str) -> str:
    """The output of `weights convert|normalize`, checked before any work is done.

    It may not be the input (the same path, a symbolic or a hard link to it: the write
    would destroy what it is made from) nor a folder; temporary files of it that a
    killed run left (held by no live process) are removed.
    """
    from ..core.atomic import remove_stale_temporaries
    from ..core.pathsafety import same_file

    from ..network.download import write_problem

    path = Path(output)
    if same_file(source, output):
        raise LargestyleError(f"output {output} is the input {source}: writing it would destroy the weights "
                              "it is made from; choose another output file")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        is_folder, parent_exists = path.is_dir(), parent.is_dir()
    except OSError as exc:  # a name too long, a loop of links, ...
        raise LargestyleError(write_problem(output, exc, "choose another output file")) from None
    if is_folder:
        raise LargestyleError(f"cannot write {output}: it is a folder; choose an output file name")
    if not parent_exists:
        raise LargestyleError(f"cannot write {output}: directory {parent} does not exist; "
                              "create it or choose another output file")
    remove_stale_temporaries(path)
    return output


def load_folder(folder: Path) -> list:
    """Every image in ``folder``, as (3, H, W) tensors."""
    from ..io.read import load_image

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
    parser = build_parser()
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")][:2]
    if words and words[0] in ("render", "batch", "plan", "weights"):
        parser.command = " ".join(["largestyle"] + words[:2 if words[0] == "weights" else 1])
    args = parser.parse_args(argv)
    try:
        return {"render": run_render, "plan": run_plan, "weights": run_weights,
                "batch": run_batch}[args.command](args)
    except LargestyleError as exc:
        if args.debug:
            raise
        print(f"largestyle: error: {one_line(exc)}", file=sys.stderr)  # names and quotes may hold line breaks
        return EXIT_USAGE
    except OSError as exc:
        # A full, read-only or failing disk met where no message was prepared for it.
        if args.debug or exc.errno not in STORAGE_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"largestyle: error: {where}{storage_problem(exc)}; free some space or choose another place, then "
              "run the same command again (a render resumes from its last checkpoint)", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, RuntimeError) as exc:
        if args.debug or not is_out_of_memory(exc):
            raise
        print("largestyle: error: out of memory; set a smaller --max-memory (or --tile-size) so more "
              "levels are tiled", file=sys.stderr)
        return 1
    except RenderInterrupted as exc:
        print(f"largestyle: {exc}; progress is saved: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("largestyle: interrupted; no output written (run the same command again to resume "
              "from the last checkpoint)", file=sys.stderr)
        return EXIT_INTERRUPTED
