"""The fit report as a fixed-width table for people."""

from __future__ import annotations


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(pairs: list[dict]) -> str:
    header = ("workload", "node_class", "used", "excl", "fps min/med/max", "cap fps", "W @min/med/max",
              "MAPE", "MAE W", "model")
    rows = [header]
    for p in pairs:
        rows.append((p["workload"], p["node_class"], str(p["samples_used"]), str(sum(p["samples_excluded"].values())),
                     f"{_num(p['fps_min'], '.1f')}/{_num(p['fps_median'], '.1f')}/{_num(p['fps_max'], '.1f')}",
                     _num(p["capacity_fps"], ".1f"),
                     f"{_num(p['power_w_at_fps_min'], '.1f')}/{_num(p['power_w_at_fps_median'], '.1f')}/"
                     f"{_num(p['power_w_at_fps_max'], '.1f')}",
                     "-" if p["holdout_mape"] is None else f"{100 * p['holdout_mape']:.1f}%",
                     _num(p["holdout_mae_w"], ".2f"), "prior" if p["prior"] else "fitted"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
