"""Command line: thin subcommands over the Python API. The only package that reads argv.

Each command's parser sits beside its handler (runs.py: train, pretrain, eval, predict, export; study.py:
study, report, fit, recipes; tools.py: augment-preview, data check, models). Heavy imports (torch, timm) happen
inside the commands, so `lowdata --help` answers at once.
"""
from __future__ import annotations

import argparse
import sys

from lowdata.errors import Failed, UsageError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_settings_anywhere(parser, argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    from lowdata import stopping

    stopping.install()
    try:
        return args.command(args)
    except UsageError as err:
        print(f"lowdata: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except Failed as err:
        print(f"lowdata: error: {one_line(str(err))}", file=sys.stderr)
        return 1
    except stopping.Stopped as stop:
        print(f"lowdata: stopped by {stop}; {stop.detail}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("lowdata: interrupted; finished epochs are checkpointed, continue with --resume", file=sys.stderr)
        return 130
    except OSError as err:  # a path the user named cannot be written: one line, not a traceback
        from lowdata.io import describe_os_error

        message = describe_os_error(err)
        if message is None:
            raise
        print(f"lowdata: error: {message}", file=sys.stderr)
        return 2


def one_line(message: str, limit: int = 1000) -> str:
    """An error as one bounded line: messages cut the values they echo (errors.shown); this is the net for any
    that does not, keeping the start (what is wrong) and the end (the fix)."""
    message = " ".join(message.split("\n"))
    return message if len(message) <= limit else f"{message[:limit * 2 // 3]} ... {message[-limit // 3:]}"


def parse_with_settings_anywhere(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse argv, accepting key=value settings between flags as well as after them.

    argparse fills a nargs="*" positional from one run of arguments only, so `--data X classes=a,b --epochs 3
    lr=1e-3` would leave `lr=1e-3` unrecognised; and parse_intermixed_args does not support subcommands.
    """
    args, extra = parser.parse_known_args(argv)
    settings = getattr(args, "settings", None)
    unknown = [text for text in extra if settings is None or text.startswith("-")]
    if unknown:  # told by the subcommand's parser, so the hint names its --help
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.settings = list(settings) + extra
    return args


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in one line (the usage block is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    import lowdata
    from lowdata.cli import runs, study, tools

    parser = Parser(prog="lowdata", description="Vision transformers on small data, measured.")
    parser.add_argument("--version", action="version", version=f"lowdata {lowdata.__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in (runs, study, tools):
        module.add_commands(commands)
    for subparser in commands.choices.values():
        subparser.set_defaults(subparser=subparser)
    return parser
