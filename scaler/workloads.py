"""Moved to the core: `wattwise.models.workload_build` (a ScaledObject's request to a Workload).
Re-exported here for the scaler's modules that still import it from this path."""

from wattwise.models.workload_build import build_workload, demand_fps, fps_per_stream, objective_of

__all__ = ["build_workload", "demand_fps", "fps_per_stream", "objective_of"]
