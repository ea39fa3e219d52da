"""Limits on what a batch file may ask for, so that a damaged or hostile one is refused in one line.

Read as ``batchlimits.NAME`` where they apply, so that one changed here applies everywhere.
"""

MAX_FILE_BYTES = 16 * 2**20
MAX_JOBS = 10_000         # renders, once lists and vary are expanded
MAX_NESTING = 32          # brackets nested
MAX_KEY_PARTS = 32        # dotted parts of one key
MAX_LIST_VALUES = 64      # items of one list-valued option (there are 16 layers)
MAX_PROBLEM_CHARS = 2000  # an error message is one line of reasonable length
