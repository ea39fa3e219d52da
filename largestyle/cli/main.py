"""Command line: ``largestyle render CONTENT STYLE -o OUT --target-size N``.

The entry point: parses the arguments (see ``parser``), runs the command and turns the
errors a person can act on into one line and an exit code (see ``exits``).
"""

from __future__ import annotations

import sys

from ..core.atomic import STORAGE_ERRNOS, storage_problem
from ..core.errors import LargestyleError, one_line
from ..engine.checkpoints import RenderInterrupted
from ..engine.memory import is_out_of_memory
from .batch import run_batch
from .exits import EXIT_INTERRUPTED, EXIT_USAGE
from .parser import build_parser
from .render import run_plan, run_render
from .weights import run_weights

COMMANDS = {"render": run_render, "plan": run_plan, "weights": run_weights, "batch": run_batch}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")][:2]
    if words and words[0] in COMMANDS:
        parser.command = " ".join(["largestyle"] + words[:2 if words[0] == "weights" else 1])
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
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
