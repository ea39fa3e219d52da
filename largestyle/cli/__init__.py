"""The command line: options generated from the config, subcommands and terminal progress."""
