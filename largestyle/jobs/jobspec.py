"""One render of a batch, as a batch file describes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobSpec:
    """One render of a batch, fully resolved and validated."""

    name: str            # unique within the batch
    content: Path
    styles: tuple[Path, ...]  # one, or several blended by the style_blend option
    output: Path
    options: dict        # keyword arguments for make_config
    job_dir: Path | None
    line: int            # line of the job's [[job]] header

    def images(self) -> list[tuple[Path, str]]:
        """(path, role) of the content and each style image, as messages about reading them name it."""
        return [(self.content, "content")] + [(style, "style") for style in self.styles]

    @property
    def styles_text(self) -> str:
        """The style images as the batch's lines show them: one path, or several joined by " + "."""
        return " + ".join(map(str, self.styles))
