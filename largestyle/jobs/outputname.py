"""The output file names of a batch's renders: a job's template filled in, or a name made of its inputs."""

from __future__ import annotations

import re
import string
from pathlib import Path


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a plain output template of {name} fields, or None.

    Fields may have a short format such as {content:.20}, but no conversion, attribute,
    index or nested field, and no width beyond a file name's 255 characters.
    """
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as error:
        return f"bad output template: {error}"
    for name, spec, conversion in fields:
        if not name.isidentifier() or conversion is not None or "{" in spec or any(
                len(number) > 3 or int(number) > 255 for number in re.findall(r"\d+", spec)):
            field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return (f"bad output template field {{{field}}}; use {{content}}, {{style}} or a render option "
                    "such as {style_weight}")
    return None


def filled_template(template: str, content: Path, styles: tuple[Path, ...], options: dict) -> str:
    """``template`` with {content}, {style} and {option} filled in; raises as ``str.format`` does."""
    fields = {k: _name_value(v) for k, v in options.items()} | _stems(content, styles)
    return template.format(**fields)


def default_name(content: Path, styles: tuple[Path, ...], varied: dict) -> str:
    """``content_style_option-value.png``, with each varied option; several styles' names joined by +."""
    stems = _stems(content, styles)
    return "_".join([stems["content"], stems["style"]]
                    + [f"{k}-{_name_value(v)}" for k, v in varied.items()]) + ".png"


def _stems(content: Path, styles: tuple[Path, ...]) -> dict[str, str]:
    return {"content": _safe(content.stem), "style": "+".join(_safe(style.stem) for style in styles)}


def _name_value(value) -> str:
    """An option value as it appears in file names: 10.0 -> '10', lists joined by commas."""
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, (list, tuple)):
        text = ",".join(_name_value(v) for v in value)
    else:
        text = str(value)
    return _safe(text)


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]", "-", text)
