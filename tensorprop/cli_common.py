"""What every ``tensorprop`` command-line entry point shares (``tensorprop``, ``python -m tensorprop.phonopy.cli``):
:func:`run` parses, runs the subcommand and turns tensorprop's own errors into one line and exit code 2."""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings

from .errors import LabelWarning, TensorpropError

__all__ = ["run", "remember_parsers"]


def remember_parsers(parser: argparse.ArgumentParser):
    """Give every subcommand's arguments its own parser (``_parser``): its usage goes with its errors."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.set_defaults(_parser=sub)
                remember_parsers(sub)


def _unknown_arguments(parser: argparse.ArgumentParser, args, extra: list[str]):
    """argparse's 'unrecognized arguments' from the subcommand's own parser, with a close flag named."""
    own = getattr(args, "_parser", parser)
    flags = [o for a in own._actions for o in a.option_strings]
    guesses = [g for x in extra if x.startswith("--")
               for g in difflib.get_close_matches(x.split("=", 1)[0], flags, n=1)]
    hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
    own.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """tensorprop's own warnings as one line, ``tensorprop: warning: MESSAGE``; others as Python prints them."""
    if issubclass(category, LabelWarning):
        print(f"tensorprop: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse, run the chosen subcommand, and turn tensorprop's own errors into exit code 2."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown_arguments(parser, args, extra)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except TensorpropError as exc:
        print(f"tensorprop: error: {exc}", file=sys.stderr)
        return 2
