"""The command line's exit codes."""

EXIT_USAGE = 2  # a bad option or value, an unreadable input, a full disk: the message says what to do
EXIT_FAILED_JOBS = 1  # a batch ran but some of its jobs failed (or could not be planned)
EXIT_INTERRUPTED = 130  # stopped by a signal; progress is saved where there was any
