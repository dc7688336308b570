"""An output folder checked before a long run (a simulation, a 7-day fit): it can be made and
written, or one line says why not, before minutes of work are spent."""

from __future__ import annotations

import tempfile
from pathlib import Path

from wattwise.models.errors import InvalidInputError


def check_out_dir(text: str, contents: str, flag: str = "--out") -> Path:
    """`text` as a folder that can be made and written (`contents`: what goes in it, for the hint).
    Leaves nothing behind: the folder itself is made only when the results are written."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(flag, f"{out} is a file, not a folder", f"give a folder for {contents}")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInputError(flag, f"{existing} is a file, so {out} cannot be a folder", f"choose another {flag}")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".wattwise-write-check-"):
            pass
    except OSError as e:
        raise InvalidInputError(flag, f"cannot write in {existing}: {e.strerror}",
                                "choose a folder you can write to") from None
    return out
