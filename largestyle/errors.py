"""The one exception type that reaches users as a plain message."""


class LargestyleError(Exception):
    """A problem the user can fix (bad input, unwritable output, bad option).

    The CLI prints its message on one line and exits with status 2; anything
    else is a bug and keeps its traceback.
    """
