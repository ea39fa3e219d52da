"""Job files accept the command line's spelling of a key: ``target-size`` as well as ``target_size``."""

from __future__ import annotations

from ..config.settings import option_fields
from .batchsource import Source

# Keys with an underscore that a job file may also write with a dash.
KNOWN = frozenset(f.name for f in option_fields()) | {"output_dir", "job_dir"}


def canonical(key):
    """``key`` with dashes as underscores when that names a known key; any other key as it is."""
    if isinstance(key, str) and "-" in key and key.replace("-", "_") in KNOWN:
        return key.replace("-", "_")
    return key


def respelled(data: dict, src: Source) -> dict:
    """The parsed file with [defaults], every [[job]] and its vary table in the canonical spelling."""
    if isinstance(data.get("defaults"), dict):
        data["defaults"] = _table(data["defaults"], src, src.defaults_header)
    jobs = data.get("job")
    if isinstance(jobs, list):
        for index, job in enumerate(jobs):
            if isinstance(job, dict):
                jobs[index] = job = _table(job, src, src.job_line(index))
                if isinstance(job.get("vary"), dict):
                    job["vary"] = _table(job["vary"], src, src.job_line(index))
    return data


def _table(table: dict, src: Source, header: int | None) -> dict:
    result = {}
    for key, value in table.items():
        name = canonical(key)
        if name in result:
            line = src.find(header, key) or header or 1
            raise src.error(line, f"{name} is set twice, as {name} and as {name.replace('_', '-')}; keep one")
        result[name] = value
    return result
