"""The public surface: a move inside the package must not silently drop a name or a command."""

import argparse

import largestyle
from largestyle.cli.parser import build_parser

PUBLIC = ["render", "Engine", "RenderConfig", "make_config", "LargestyleError", "LargestyleWarning",
          "load_image", "save_image", "run_job", "__version__"]
COMMANDS = {"render", "plan", "batch", "weights"}
WEIGHTS_ACTIONS = {"fetch", "info", "convert", "normalize"}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_package_exports_exactly_the_public_names():
    assert sorted(largestyle.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(largestyle, name) is not None, name


def test_public_names_are_what_they_say():
    assert callable(largestyle.render) and callable(largestyle.run_job)
    assert issubclass(largestyle.LargestyleError, Exception)
    assert issubclass(largestyle.LargestyleWarning, UserWarning)
    assert largestyle.RenderConfig().target_size == largestyle.make_config().target_size
    assert isinstance(largestyle.__version__, str) and largestyle.__version__.count(".") == 2


def test_command_line_offers_every_command():
    commands = subcommands(build_parser())
    assert set(commands) == COMMANDS
    assert set(subcommands(commands["weights"])) == WEIGHTS_ACTIONS


def test_entry_point_is_the_cli_main():
    from largestyle.cli.main import main

    text = (largestyle.__file__.rsplit("/", 2)[0] + "/pyproject.toml")
    assert 'largestyle = "largestyle.cli.main:main"' in open(text).read()
    assert callable(main)
