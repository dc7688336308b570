"""Energy models from a directory: every `*.json` in it (models/persistence format, what
`wattwise fit --out DIR` writes), reloaded when a file changes, appears or goes.

A Kubernetes ConfigMap mounted as a volume swaps its files atomically through a `..data`
symlink; names starting with a dot are its internals and are skipped, and the files are read
through their symlinks, so an update is seen at the next check. A directory that cannot be read,
or a file that does not parse, keeps the previous models (reported in `ModelSet.error` and the
log once), never an empty set that would silently send every pair back to its prior.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Callable

from wattwise.models import persistence
from wattwise.models.errors import InvalidInputError, WattWiseError
from wattwise.models.model_set import ModelSet

log = logging.getLogger(__name__)

NOT_MODELS = frozenset({"fit-report.json"})   # what `wattwise fit --out` writes beside the models


def model_files(directory: Path) -> list[Path]:
    """The model files of a directory, in name order: every `*.json` but dot-files (a ConfigMap's
    internals, a writer's temporary) and `wattwise fit`'s report, so `--models` may also point at the
    folder `wattwise fit --out` wrote. The refitter reads the same files (`telemetry/refit.py`)."""
    return sorted(p for p in directory.iterdir()
                  if p.suffix == ".json" and not p.name.startswith(".") and p.name not in NOT_MODELS)


class ModelDirectory:
    def __init__(self, path: str | Path, check_every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InvalidInputError("--models", f"{self.path} is not a directory",
                                    "give the folder `wattwise fit --out` wrote, or a mounted ConfigMap")
        self._check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: tuple = ()
        self._checked_s = -float("inf")
        self._set = ModelSet(origin=str(self.path))
        self._reported = ""
        self.current()

    def current(self) -> ModelSet:
        with self._lock:
            now = self._clock()
            if now - self._checked_s >= self._check_every_s:
                self._checked_s = now
                self._reload_if_changed()
            return self._set

    def _reload_if_changed(self) -> None:
        try:
            files = model_files(self.path)
            signature = tuple((p.name, st.st_mtime_ns, st.st_size, st.st_ino) for p in files for st in (p.stat(),))
        except OSError as e:
            self._fail(f"cannot read {self.path}: {e.strerror}")
            return
        if signature == self._signature:
            return
        try:
            by_pair, node_power, seen = {}, {}, {}
            for p in files:
                models, curves = persistence.load(p)
                for m in models:
                    key = (m.workload, m.node_class)
                    if key in seen:
                        raise InvalidInputError(p.name, f"the pair {m.workload} on {m.node_class} is also in "
                                                        f"{seen[key]}", "keep each pair in one file")
                    seen[key] = p.name
                    by_pair[key] = m
                node_power.update(curves)
        except (WattWiseError, OSError, ValueError, TypeError) as e:   # a file we could not read: keep what we had
            self._fail(str(e) if isinstance(e, (WattWiseError, OSError)) else f"{type(e).__name__}: {e}")
            return
        self._signature = signature
        self._set = ModelSet(MappingProxyType(by_pair), MappingProxyType(node_power), self._set.version + 1,
                             str(self.path))
        self._reported = ""
        log.info("energy models: %d pairs and %d node power curves from %d file(s) in %s (version %d)",
                 len(by_pair), len(node_power), len(files), self.path, self._set.version)

    def _fail(self, error: str) -> None:
        self._set = ModelSet(self._set.by_pair, self._set.node_power, self._set.version, self._set.origin, error)
        if error != self._reported:
            log.warning("energy models: %s; keeping the %d pairs loaded before", error, len(self._set.by_pair))
            self._reported = error

