"""The run's inputs as rows a person reads: trace file names (never absolute paths: the report may
be shared), scenario, length, step, seed, and what each peer was given by hand."""

from __future__ import annotations

from pathlib import PurePath

import pandas as pd

from wattwise.simulations.headline import _tuning_text


def file_name(path: str) -> str:
    return PurePath(str(path)).name


def when(text: str) -> str:
    """'2023-06-01 00:00 UTC' from the summary's '2023-06-01 00:00:00+00:00'."""
    t = pd.Timestamp(text)
    t = t.tz_convert("UTC") if t.tzinfo is not None else t
    return t.strftime("%Y-%m-%d %H:%M UTC")


def days(n: float) -> str:
    return f"{n:g} day" if n == 1 else f"{n:g} days"


def _carbon_row(info: dict) -> str:
    source = info.get("source", "")
    if source == "constant from scenario":
        return "constant (from the scenario)"
    parts = [file_name(source)]
    if "mean_g_per_kwh" in info:
        parts.append(f"mean {info['mean_g_per_kwh']:g} gCO2eq/kWh")
    parts.append(f"{info.get('gaps_filled', 0)} gaps filled")
    return ", ".join(parts)


def _tuning(tuning: dict) -> str:
    return "; ".join(text for k, v in tuning.items() if (text := _tuning_text(k, v))) or "nothing"


def input_rows(summary: dict) -> list[tuple[str, str]]:
    inputs, sc = summary["inputs"], summary["scenario"]
    rows = [("scenario", f"{sc['name']} ({file_name(sc['path'])}), objective {sc['objective']}"),
            ("cluster", f"{sc['nodes']} nodes in {len(sc['node_classes'])} classes ({', '.join(sc['node_classes'])}); "
                        f"{sc['workloads']} workloads"),
            ("length", f"{days(inputs['days'])} in {inputs['steps']:,} steps of {inputs['step_s']:g} s; "
                       "charts average 15 minutes")]
    demand = inputs.get("demand") or {}
    if demand.get("source"):
        wrapped = sum((demand.get("wrapped_samples") or {}).values())
        rows.append(("demand trace", f"{file_name(demand['source'])} ({demand['rows']:,} rows, {demand['mode']}), "
                                     f"from {when(inputs['demand_start'])}"
                                     + (f"; {wrapped:,} samples wrapped past its ends" if wrapped else "")))
    else:
        rows.append(("demand", "constant, from the scenario"))
    for zone, info in (inputs.get("carbon") or {}).items():
        rows.append((f"carbon, {zone}", _carbon_row(info)))
    rows.append(("carbon from", when(inputs["carbon_start"])))
    rows.append(("seed", str(inputs["seed"])))
    rows.append(("policies", ", ".join(inputs.get("policies", summary["policies"]))))
    head = summary.get("headline") or {}
    for name, tuning in (head.get("peers_were_given") or {}).items():
        rows.append((f"{name} was given", _tuning(tuning)))
    if head.get("wattwise_was_given"):
        rows.append(("wattwise was given", _tuning(head["wattwise_was_given"])))
    missing = head.get("peers_missing_sla") or {}
    if missing:
        rows.append(("peers missing the SLA", ", ".join(f"{n} {v:.2%}" for n, v in missing.items())))
    scheduler = (inputs.get("timing") or {}).get("scheduler") or {}
    if scheduler.get("source"):
        rows.append(("wattwise's scheduler", f"{file_name(scheduler['source'])}, extender weight "
                                              f"{scheduler.get('extender_weight')}"))
    return rows
