"""The current plan as people and tools read it: `GET /plan` on the extender's HTTP port, and
`wattwise explain`. Encoding only: every number comes from the plan view as the core made it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from wattwise.runtime import PlanView


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def plan_report(view: PlanView) -> dict[str, Any]:
    snap, plan = view.snapshot, view.plan
    # each workload as the plan of its own objective has it (the one KEDA and the extender follow)
    own = {key: view.for_workload(key).plan for key in plan.workloads}
    placements: dict[str, list[dict[str, Any]]] = {}
    for key, its_plan in own.items():
        for p in sorted((p for p in its_plan.placements if p.workload == key), key=lambda p: p.node):
            placements.setdefault(key, []).append({"node": p.node, "node_class": p.node_class,
                                                   "replicas": p.replicas})
    corrections = {(c["workload"], c["node_class"]): c for c in view.inputs.get("capacity_corrections", ())}
    refit = view.inputs.get("refit")
    refit_of = {(p["workload"], p["node_class"]): p for p in (refit or {}).get("pairs", ())}
    models = []
    for w in snap.workloads:
        for cls in snap.node_classes.values():
            m = snap.model(w, cls)
            if m is None:
                continue
            fitted = not m.prior and ((w.key, cls.name) in snap.models or (w.model_type, cls.name) in snap.models)
            entry = {"workload": w.key, "node_class": cls.name, "kind": "fitted" if fitted else "prior",
                     "source": m.source, "capacity_fps": round(m.capacity_fps, 3)}
            c = corrections.get((w.key, cls.name))
            if c is not None:     # capacity learned from drops: the model's, and why it was lowered
                entry |= {"corrected_from_fps": round(c["corrected_from_fps"], 3), "corrected_at": _iso(c["since_s"]),
                          "correction_reason": c["reason"]}
            decided = refit_of.get((w.key, cls.name))
            if decided is not None:    # what the last refit did with this pair, and why
                entry |= {"last_refit": decided["verdict"], "last_refit_reasons": decided["reasons"]}
                if decided.get("regime_change_s") is not None:   # judged on the samples since this change
                    entry["last_refit_regime_change_at"] = _iso(decided["regime_change_s"])
            models.append(entry)
    active = set(plan.active_nodes)
    carbon = {}
    for zone in sorted({n.zone for n in snap.nodes}):
        r = snap.carbon.get(zone)
        carbon[zone] = ({"g_per_kwh": None, "provider": None, "status": "missing", "age_s": None,
                         "counted_g_per_kwh": snap.settings.carbon_default_g_per_kwh} if r is None else
                        {"g_per_kwh": r.g_per_kwh, "provider": r.source, "status": str(r.status),
                         "signal": str(r.signal), "age_s": r.age_s})
    demand_of = {w.key: w.demand for w in snap.workloads}
    # how much each forecaster has learned, and what it was seeded with (history read back on start)
    history_of = {key: {**h, "seeded_from": _iso(h["seeded_from_s"]) if h.get("seeded_from_s") is not None else None,
                        "seeded_to": _iso(h["seeded_to_s"]) if h.get("seeded_to_s") is not None else None}
                  for key, h in view.inputs.get("forecast_history", {}).items()}

    def forecast(key: str, added_fps: float) -> dict[str, Any] | None:
        """Pre-warming: the demand expected a start-up ahead, and what it added to the plan."""
        d = demand_of.get(key)
        if d is None or d.expected_fps is None:
            return None
        return {"expected_fps": round(d.expected_fps, 3), "lead_s": d.lead_s, "added_fps": round(added_fps, 3)}

    return {
        "plan_version": view.version,
        "generated_at": _iso(plan.now_s),
        "objective": plan.objective,
        "degraded": view.degraded,
        "degraded_reasons": list(view.degraded_reasons),
        "inputs": {
            "nodes": {"count": len(snap.nodes), "source": view.inputs.get("nodes_source", "")},
            "carbon": carbon,
            "models": models,
            "left_out": list(view.inputs.get("left_out", ())),
            # the plan clock: the planner's own settings, and the refresher's (serve's flags)
            "settings": {"headroom": snap.settings.headroom, "scale_down_window_s": snap.settings.scale_down_window_s,
                         **view.inputs.get("settings", {})},
            "refit": None if refit is None else {k: refit[k] for k in ("ok", "error", "finished_s", "window", "next_due_s",
                                                                     "next_due_reason", "written", "not_written", "unmatched_pairs",
                                                                     "unmatched_hint") if k in refit},
        },
        "workloads": [
            {"key": key, "objective": own[key].objective, "replicas": wp.replicas,
             "unplaced_replicas": wp.unplaced_replicas,
             "asked_replicas": wp.asked_replicas, "demand_fps": round(wp.demand_fps, 3),
             "unmet_fps": round(wp.unmet_fps, 3), "held": wp.held, "power_w": round(wp.power_w, 1),
             "carbon_g_per_h": round(wp.carbon_g_per_h, 2), "placements": placements.get(key, []),
             "forecast": forecast(key, wp.forecast_added_fps),
             "forecast_history": history_of.get(key),
             "reasons": list(wp.reasons)}
            for key in sorted(plan.workloads) for wp in [view.workload_plan(key)]],
        "nodes": [{"name": n.name, "node_class": n.node_class, "grid_zone": n.zone,
                   "state": "active" if n.name in active else "idle"} for n in snap.nodes],
        "power_w": round(plan.power_w, 1),
        "carbon_g_per_h": round(plan.carbon_g_per_h, 2),
        "solver": plan.solver,
        "solver_gap": plan.solver_gap,
        "reasons": list(plan.reasons),
    }
