"""One render of a batch, as a batch file describes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobSpec:
    """One render of a batch, fully resolved and validated."""

    name: str            # unique within the batch
    content: Path
    style: Path
    output: Path
    options: dict        # keyword arguments for make_config
    job_dir: Path | None
    line: int            # line of the job's [[job]] header
