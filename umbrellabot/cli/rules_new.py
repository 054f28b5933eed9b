"""`umbrellabot rules new ID [FILE|-]`: write a commented rule skeleton (rules/skeleton.py)
into the current folder, never over an existing file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from umbrellabot.cli.output import EXIT_OK, stdout
from umbrellabot.errors import UsageError


def cmd_rules_new(args: argparse.Namespace) -> int:
    from umbrellabot.rules.skeleton import skeleton

    try:
        text = skeleton(args.id)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(args.out or f"{args.id}.yaml")
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise UsageError(
            f"{path} exists: not overwritten (give another file, or - for stdout)"
        ) from None
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
    stdout.print(
        f"wrote {path}: edit it, then `umbrellabot rules test {path}`"
        f" and RULES_PATH=default,./{path} to load it beside the default pack",
        soft_wrap=True,
    )
    return EXIT_OK
