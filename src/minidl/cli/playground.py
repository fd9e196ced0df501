"""``minidl playground``: serve the playground page and open it in a browser."""

from __future__ import annotations

import argparse
import contextlib
import sys

from minidl.errors import ConfigError

INSTALL = "pip install -c constraints.txt -e '.[playground]' (in the minidl checkout)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "playground",
        help="a local web page where minidl trains live",
        description="Serve the minidl playground: a local web page where the real minidl trains a network, "
        "live, with a backprop inspector. Needs the playground extra: " + INSTALL,
    )
    p.add_argument("--port", type=_port, default=8000, help="port to serve on (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(run=run_playground)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, got {value}")
    return value


def run_playground(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError(f"the playground needs starlette and uvicorn: {INSTALL}") from None
    from minidl.playground.server import serve

    if args.host not in ("127.0.0.1", "localhost"):
        print(
            f"minidl playground: warning: serving on {args.host}: other machines can reach this page", file=sys.stderr
        )

    def ready(port: int | None) -> None:
        url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{port}/"
        print(f"minidl playground: serving {url} (Ctrl-C stops)", flush=True)
        if not args.no_browser:
            import webbrowser

            with contextlib.suppress(Exception):  # no browser here: the URL printed above is enough
                webbrowser.open(url)

    serve(args.host, args.port, on_ready=ready)
    return 0
