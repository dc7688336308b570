"""What refits learned but could not write, laid over the models directory the live loop reads.

`--models` is often a ConfigMap mounted read-only: the refitter cannot save an accepted model there,
yet a model that passed the gate and is not used is learning in name only (and a plan view saying
"accepted" beside a prior would be untrue). So the refitter hands such models here
(`LearnedOverlay.learn`) and the live loop plans with the directory's set with them on top: "learned,
not persisted" in each such model's `source` (what `GET /plan` shows), lost at restart (`serve` says
so once at start; each refit's `not_written` says so too). Each learned pair or curve stands while the directory's own entry for it is still the one
it replaced: when someone changes that entry (a new ConfigMap), the file wins for that pair only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from wattwise.models.energy import WorkloadClassModel
from wattwise.models.model_set import EnergyModelSource, ModelSet
from wattwise.models.power_curve import PowerCurve

log = logging.getLogger(__name__)

Pair = tuple[str, str]
NOT_PERSISTED = "learned, not persisted"


def same_model(a: WorkloadClassModel | None, b: WorkloadClassModel | None) -> bool:
    """Equal as the file holds them (`WorkloadClassModel`'s own equality skips the power curve)."""
    if a is None or b is None:
        return a is b
    return a == b and list(a.power.coef_) == list(b.power.coef_) and a.intercept_w == b.intercept_w


@dataclass(frozen=True)
class _Learned:
    models: Mapping[Pair, tuple[WorkloadClassModel, WorkloadClassModel | None]]   # learned, what it replaced
    curves: Mapping[str, tuple[PowerCurve, PowerCurve | None]]


class LearnedOverlay:
    """An `EnergyModelSource`: `base` (the models directory) with the learned models on top."""

    def __init__(self, base: EnergyModelSource):
        self._base = base
        self._lock = threading.Lock()
        self._learned = _Learned(MappingProxyType({}), MappingProxyType({}))
        self._generation = 0
        self._seen: tuple[int, int] | None = None     # (base version, generation) of the set made last
        self._set = base.current()
        self._version = self._set.version

    def learn(self, models: Mapping[Pair, tuple[WorkloadClassModel, WorkloadClassModel | None]],
              curves: Mapping[str, tuple[PowerCurve, PowerCurve | None]]) -> None:
        """Refits' models and curves that could not be written, each with the directory's entry it
        replaced (None: the directory had none). They are added to what was learned before."""
        if not models and not curves:
            return
        with self._lock:
            self._learned = _Learned(MappingProxyType({**self._learned.models, **models}),
                                     MappingProxyType({**self._learned.curves, **curves}))
            self._generation += 1

    def persisted(self) -> None:
        """Everything learned is in the directory now (a write succeeded): nothing to lay over."""
        with self._lock:
            if self._learned.models or self._learned.curves:
                self._learned = _Learned(MappingProxyType({}), MappingProxyType({}))
                self._generation += 1

    def learned(self) -> tuple[dict[Pair, WorkloadClassModel], dict[str, PowerCurve]]:
        """What is laid over the directory now (the refitter's models in use)."""
        with self._lock:
            base = self._base.current()
            self._drop_overridden(base)
            return ({p: m for p, (m, _) in self._learned.models.items()},
                    {c: curve for c, (curve, _) in self._learned.curves.items()})

    def current(self) -> ModelSet:
        with self._lock:
            base = self._base.current()
            self._drop_overridden(base)
            if self._seen != (base.version, self._generation):
                self._seen = (base.version, self._generation)
                self._version += 1
                self._set = self._overlaid(base)
            elif base.error != self._set.error:
                self._set = replace(self._set, error=base.error)
            return self._set

    def _overlaid(self, base: ModelSet) -> ModelSet:
        learned = self._learned
        if not learned.models and not learned.curves:
            return replace(base, version=self._version)
        by_pair = dict(base.by_pair)
        by_pair.update({p: replace(m, source=f"{m.source} ({NOT_PERSISTED})") for p, (m, _) in learned.models.items()})
        node_power = dict(base.node_power)
        node_power.update({c: curve for c, (curve, _) in learned.curves.items()})
        n = len(learned.models) + len(learned.curves)
        return ModelSet(MappingProxyType(by_pair), MappingProxyType(node_power), self._version,
                        f"{base.origin} + {n} model(s) and curve(s) {NOT_PERSISTED}", base.error)

    def _drop_overridden(self, base: ModelSet) -> None:
        """A learned entry whose directory entry changed since (someone wrote a newer one) gives way."""
        models = {p: (m, was) for p, (m, was) in self._learned.models.items()
                  if same_model(base.by_pair.get(p), was)}
        curves = {c: (curve, was) for c, (curve, was) in self._learned.curves.items()
                  if base.node_power.get(c) == was}
        if len(models) != len(self._learned.models) or len(curves) != len(self._learned.curves):
            gone = sorted(set(self._learned.models) - set(models))
            log.info("energy models: the directory changed %s since a refit learned them: its own are used now",
                     ", ".join(f"{w} on {c}" for w, c in gone) or ", ".join(sorted(set(self._learned.curves) - set(curves))))
            self._learned = _Learned(MappingProxyType(models), MappingProxyType(curves))
            self._generation += 1
