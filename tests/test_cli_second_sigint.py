"""A second Ctrl-C while ``minidl`` says "interrupted" (the first one stopped the command) prints no traceback:
the clean-clone CI once saw one from tests/test_reliability_small.py's two-SIGINT test when both landed after
training, while the results were written."""

from __future__ import annotations

import io
import os
import signal
from types import SimpleNamespace

from minidl.cli.main import _run


class SecondCtrlC(io.StringIO):
    """stderr that receives a SIGINT while the first line is written."""

    def write(self, text: str) -> int:
        if not self.getvalue():
            os.kill(os.getpid(), signal.SIGINT)
        return super().write(text)


def test_a_second_sigint_while_saying_interrupted_is_ignored(monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    stderr = SecondCtrlC()
    monkeypatch.setattr("sys.stderr", stderr)
    before = signal.getsignal(signal.SIGINT)
    assert _run(SimpleNamespace(run=interrupted, command="train", debug=False)) == 130
    assert stderr.getvalue() == "minidl: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler again
