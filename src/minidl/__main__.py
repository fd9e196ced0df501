"""``python -m minidl`` runs the command-line interface."""

import signal

from minidl.cli.main import main

if __name__ == "__main__":
    code = main()
    # the command is over: a late Ctrl-C (a second one, just after the first stopped the run) must not
    # interrupt the interpreter's exit, where it would print "Exception ignored in atexit callback"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(code)
