"""The `umbrellabot` command line: argparse commands, `scan`, and the exit codes scripts use."""

from umbrellabot.cli.main import build_parser, main
from umbrellabot.cli.output import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_CANNOT_RUN", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
