"""torchrun as the ``--nproc`` launcher runs it: dies with the launcher, prints nothing of its own.

``python -m minidl.distributed.agent TORCHRUN_ARGS`` is ``python -m torch.distributed.run TORCHRUN_ARGS``
with three differences, so that the launcher (``supervise.py``) can speak for the run in one line:
- it asks the kernel for SIGKILL when its parent, the launcher, dies (``PR_SET_PDEATHSIG``), and exits
  at once if the launcher is already gone: a SIGKILLed launcher takes torchrun, and so its workers, along;
- torchrun's own log lines are silenced;
- when workers fail, torchrun's ``ChildFailedError`` (a 40-line block) is not printed: each failed
  worker's rank, PID and exit code go as JSON to the file named by ``MINIDL_LAUNCH_REPORT``, and it exits 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from minidl.distributed.launch import LAUNCHER_ENV, REPORT_ENV
from minidl.distributed.supervise import die_with_parent


def main(argv: list[str]) -> int:
    die_with_parent(int(os.environ.get(LAUNCHER_ENV, "0")) or None)
    previous = os.environ.get("LOGLEVEL")
    os.environ["LOGLEVEL"] = "CRITICAL"  # torchelastic's loggers take their level from it when they are made
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if previous is None:  # the workers inherit this environment: give them the user's
        os.environ.pop("LOGLEVEL")
    else:
        os.environ["LOGLEVEL"] = previous
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(parse_args(argv))
    except ChildFailedError as error:
        # in the order torchrun saw them: the worker whose death started it first, then those torchrun stopped
        # (SIGTERM, then SIGKILL if one does not end: such a SIGKILL is not the cause, and a lower rank)
        failures = [{"rank": rank, "pid": f.pid, "exitcode": f.exitcode} for rank, f in error.failures.items()]
        report = os.environ.get(REPORT_ENV)
        if report:
            with open(report, "w", encoding="utf-8") as handle:
                json.dump(failures, handle)
        return 1
    except SignalException as error:  # only the launcher signals torchrun itself: when it gives up on the run
        return 128 + int(error.sigval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
