"""A job's record (job.json): what identifies a render, checked before it is trusted.

A record names the inputs by sha256, every setting, the weights and the version. Its
``identity`` is a hash of everything a resume must match (output-only settings left
out); the checkpoints carry the same identity, so a record that was damaged, edited
or replaced can never make old checkpoints run under new settings.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from pathlib import Path

from ..core.version import __version__
from ..config.settings import RenderConfig, make_config, option_fields, output_only
from ..core.errors import LargestyleError
from ..io.inputs import style_sources

DEFAULT_SETTINGS = json.loads(json.dumps(RenderConfig().to_dict()))
_SHA256 = re.compile(r"[0-9a-f]{64}")


def job_record(content: Path, styles, output: Path, config: RenderConfig, weights_info,
               content_sha256: str, style_sha256s, init_sha256: str | None = None) -> dict:
    """The record of a render of ``content`` in the style of ``styles`` (one path or several) with ``config``."""
    info = weights_info
    styles, style_sha256s = style_sources(styles), style_sources(style_sha256s)
    record = {
        "version": __version__,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "content": {"path": str(Path(content).resolve()), "sha256": content_sha256},
        "styles": [{"path": str(Path(style).resolve()), "sha256": digest}
                   for style, digest in zip(styles, style_sha256s, strict=True)],
        "output": str(Path(output).resolve()),
        "settings": json.loads(json.dumps(config.to_dict())),
        "weights": {"flavour": info.flavour if info else None, "sha256": info.sha256 if info else None,
                    "path": str(info.path) if info and info.path else None},
    }
    if init_sha256 is not None:  # an --init image: a resume must start from the same one
        record["init"] = {"path": str(Path(config.init_image).resolve()), "sha256": init_sha256}
    record["identity"] = identity(record)
    return record


def record_styles(record: dict) -> list:
    """The record's style images ({path, sha256} each); a record made before several styles names one."""
    styles = record.get("styles")
    if styles is None and "style" in record:
        styles = [record["style"]]
    return styles if isinstance(styles, list) else []


def identity(record: dict) -> str:
    """sha256 of what a resume must match: inputs, render settings, weights and version."""
    # A setting missing from an older record counts as its default, as in ``changes``.
    settings = {**DEFAULT_SETTINGS, **record["settings"]}
    essential = {
        "version": record["version"],
        "inputs": [record["content"]["sha256"]] + [style["sha256"] for style in record_styles(record)]
        + ([record["init"]["sha256"]] if isinstance(record.get("init"), dict) else []),
        "settings": {name: value for name, value in sorted(settings.items()) if not output_only(name, settings)},
        "weights": [record["weights"]["flavour"], record["weights"]["sha256"]],
    }
    return hashlib.sha256(json.dumps(essential, sort_keys=True).encode()).hexdigest()


def problem_with(record) -> str | None:
    """Why ``record`` (parsed job.json) is not a valid job record, or None if it is."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    for key, kind in (("version", str), ("created", str), ("output", str), ("identity", str),
                      ("content", dict), ("settings", dict), ("weights", dict)):
        if not isinstance(record.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    styles = record_styles(record)
    if not styles:
        return "'styles' is missing or empty"
    entries = [("content", record["content"])] + [("styles", style) for style in styles]
    for role, entry in entries + ([("init", record["init"])] if "init" in record else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not _SHA256.fullmatch(str(entry.get("sha256"))):
            return f"{role!r} lacks a path or a sha256"
    weights = record["weights"]
    if not all(isinstance(weights.get(k), (str, type(None))) for k in ("flavour", "sha256", "path")):
        return "'weights' is malformed"
    settings = record["settings"]
    known = {f.name for f in option_fields()}
    unknown = sorted(set(settings) - known)
    if unknown:
        return f"it has unknown settings ({', '.join(unknown)})"
    try:
        make_config(**{k: v for k, v in settings.items() if v is not None})
    except (LargestyleError, TypeError, ValueError) as exc:
        return f"its settings are invalid ({exc})"
    try:
        if identity(record) != record["identity"]:
            return "its contents do not match its identity hash (it was edited)"
    except (TypeError, KeyError, AttributeError):
        return "its settings are malformed"
    return None


def changes(old: dict, new: dict, output: bool = False) -> list[str]:
    """What differs between two job records, in words; paths may move, contents may not.

    Settings that only change how the output file is written are left out, or with
    ``output`` are the only ones compared.
    """
    found = []
    for role in ("content", "init") if not output else ():
        was, now = old.get(role) or {}, new.get(role) or {}
        if was.get("sha256") != now.get("sha256"):
            found.append(f"the {role} image ({now.get('path', 'none now')})")
    was, now = record_styles(old), record_styles(new)
    if [style.get("sha256") for style in was] != [style["sha256"] for style in now] and not output:
        found.append(f"the style image{'s' if len(now) > 1 else ''} ({', '.join(style['path'] for style in now)})")
    for name, value in new["settings"].items():
        if output_only(name, new["settings"]) != output:
            continue
        # A setting added since the job was made counts as its default there.
        was = old.get("settings", {}).get(name, DEFAULT_SETTINGS.get(name))
        if was != value:
            found.append(f"--{name.replace('_', '-')} (was {was}, now {value})")
    for name in ("flavour", "sha256") if not output else ():
        if old.get("weights", {}).get(name) != new["weights"][name]:
            found.append(f"the weights' {name}")
    if old.get("version") != new["version"] and not output:
        found.append(f"the largestyle version (was {old.get('version')}, now {new['version']})")
    return found
