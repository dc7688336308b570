"""Keep the HiGHS solver's stray prints off stdout in single-threaded commands.

HiGHS (inside scipy) can print a debug line to the C-level stdout even with disp=False, which
would corrupt `wattwise plan --json` and the simulator's table. Redirecting file descriptor 1
affects the whole process, so this is only for code that owns the process and prints nothing
else meanwhile (the plan command, a simulation run); servers must not use it, since their other
threads print (the scaler plans in a worker process anyway).
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def stdout_silenced():
    try:
        fd = sys.stdout.fileno()
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):
        yield  # no real stdout (captured by a test runner, or closed): nothing to protect
        return
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
