"""The ``weights`` commands: fetch, info, convert and normalize VGG-19 weights files."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..config.settings import RenderConfig
from ..core.errors import LargestyleError
from ..core.vgg import deepest_of, layer_sequence
from ..geometry.pyramid import fit_long_side, resize
from ..network.flavours import FLAVOURS, normalized_flavour
from ..network.normalize import normalize
from ..network.weightfiles import read_weights, write_compact
from ..network.weights import fetch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def run_weights(args: argparse.Namespace) -> int:
    {"fetch": _fetch, "info": _info, "convert": _convert, "normalize": _normalize}[args.action](args)
    return 0


def _fetch(args: argparse.Namespace) -> None:
    path = fetch(args.flavour, Path(args.dir) if args.dir else None, progress=not args.quiet)
    print(f"saved {path} ({path.stat().st_size / 2 ** 20:.0f} MiB, features only)")


def _info(args: argparse.Namespace) -> None:
    print(describe_weights(read_weights(args.file, args.weights_format)))


def _normalize(args: argparse.Namespace) -> None:
    from ..network.normalize import smallest_side

    found, output = _input_and_output(args)
    images = _normalisation_images(Path(args.images), args.size, smallest_side(found.state))
    state = normalize(found.state, FLAVOURS[found.flavour], images)
    flavour = normalized_flavour(found.flavour)
    path = write_compact(dataclasses.replace(found, state=state, flavour=flavour), output)
    print(f"wrote {path}: {flavour} flavour, normalised on {len(images)} images")


def _convert(args: argparse.Namespace) -> None:
    found, output = _input_and_output(args)
    path = write_compact(found, output)
    print(f"wrote {path}: {found.flavour} flavour, {len(found.layers)} conv layers")


def _input_and_output(args: argparse.Namespace):
    """The weights read from the input of `weights convert|normalize`, and its output, checked first."""
    output = _weights_output(args.input, args.output)
    return read_weights(args.input, args.weights_format), output


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
    ]
    return "\n".join(f"{name:<13}{value}" for name, value in rows)
