"""The ``minidl`` command: subcommands, and one-line errors unless ``--debug``."""

from __future__ import annotations

import sys
import warnings

from minidl import __version__
from minidl.cli import evaluate, playground, predict, summary, train
from minidl.cli.args import Parser
from minidl.errors import MinidlError


def build_parser() -> Parser:
    parser = Parser(prog="minidl", description="Train small networks with hand-written backward passes.")
    parser.add_argument("--version", action="version", version=f"minidl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (train, evaluate, predict, summary, playground):
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # a DataWarning is one line, as errors are
            warnings.showwarning = lambda message, category, *_, **__: print(
                f"minidl {args.command}: warning: {message}", file=sys.stderr
            )
            return args.run(args)
    except KeyboardInterrupt:
        print("minidl: interrupted", file=sys.stderr)
        return 130
    except (MinidlError, OSError) as error:
        if args.debug:
            raise
        print(f"minidl {args.command}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug in minidl: still one line, the traceback with --debug
        if args.debug:
            raise
        print(
            f"minidl {args.command}: internal error: {type(error).__name__}: {error} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
