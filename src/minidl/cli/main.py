"""The ``minidl`` command: subcommands, and one-line errors unless ``--debug``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

from minidl import __version__
from minidl.cli import evaluate, playground, predict, summary, train
from minidl.cli.args import Parser
from minidl.errors import MinidlError
from minidl.limits import clip_line


def build_parser() -> Parser:
    parser = Parser(prog="minidl", description="Train small networks with hand-written backward passes.")
    parser.add_argument("--version", action="version", version=f"minidl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (train, evaluate, predict, summary, playground):
        command.add_parser(subparsers)
    return parser


class GoneStdout:
    """``sys.stdout`` that stops printing once its reader has gone (``| head -3``): the command goes on and
    finishes its work (model, figures, summary). The descriptor then points at /dev/null, so that the
    interpreter's last flush has nowhere to fail either."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._lose()

    def _lose(self) -> None:
        self.gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):  # no descriptor (captured): nothing to do
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    stdout = sys.stdout
    sys.stdout = guard = GoneStdout(stdout)
    try:
        return _run(args)
    finally:
        guard.flush()
        sys.stdout = stdout


def console() -> int:
    """The ``minidl`` console script and ``python -m minidl``: :func:`main`, then SIGINT ignored for good.

    The command is over: a late Ctrl-C (a second one, just after the first stopped the run) must not
    interrupt the interpreter's exit, where it would print "Exception ignored in atexit callback" and a
    traceback from torch's exit handlers."""
    code = main()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored inside, then the previous handler again (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(args: Any) -> int:
    try:
        with warnings.catch_warnings():  # a DataWarning is one line, as errors are
            warnings.showwarning = lambda message, category, *_, **__: print(
                f"minidl {args.command}: warning: {message}", file=sys.stderr
            )
            return args.run(args)
    except KeyboardInterrupt:
        with _sigint_ignored():  # a second Ctrl-C while this is said must not print a traceback
            print("minidl: interrupted", file=sys.stderr)
        return 130
    except (MinidlError, OSError) as error:
        if args.debug:
            raise
        print(f"minidl {args.command}: error: {clip_line(str(error))}", file=sys.stderr)  # never a 50 MB line
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
