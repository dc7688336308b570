"""Scaling and placement policies compared by the simulator. Each answers: how many replicas
each workload should have (through the HPA, as KEDA would drive it), which node a new pod goes to,
which pod goes on scale-down, and (for energy-aware ones) which nodes to wake or put to sleep."""

from __future__ import annotations

POLICY_NAMES = ("default", "carbon-aware-keda", "peaks", "keda-tuned", "keda-tuned-ca", "keda-tuned-karpenter",
                "keda-tuned-pinned-ca", "wattwise", "oracle")
# wattwise without pre-warming (models/forecast.py), to measure what the forecast gives: on request
OPTIONAL_POLICIES = ("wattwise-reactive",)
KNOWN_POLICIES = POLICY_NAMES + OPTIONAL_POLICIES
PLANNING_POLICIES = ("wattwise", "oracle", "wattwise-reactive")   # call the planner: most of a run's time
PEERS = tuple(n for n in POLICY_NAMES if n not in ("wattwise", "oracle"))   # what WattWise is compared with


def make_policy(name: str, scenario, timing):
    from wattwise.simulations.policies.carbon_aware_keda import CarbonAwareKedaPolicy
    from wattwise.simulations.policies.default import DefaultPolicy
    from wattwise.simulations.policies.keda_pinned import KedaTunedPinnedCaPolicy
    from wattwise.simulations.policies.keda_tuned import (KedaTunedCaPolicy, KedaTunedKarpenterPolicy,
                                                          KedaTunedPolicy)
    from wattwise.simulations.policies.oracle import OraclePolicy
    from wattwise.simulations.policies.peaks import PeaksPolicy
    from wattwise.simulations.policies.wattwise_policy import ReactiveWattwisePolicy, WattwisePolicy

    table = {"default": DefaultPolicy, "carbon-aware-keda": CarbonAwareKedaPolicy, "peaks": PeaksPolicy,
             "keda-tuned": KedaTunedPolicy, "keda-tuned-ca": KedaTunedCaPolicy,
             "keda-tuned-karpenter": KedaTunedKarpenterPolicy, "keda-tuned-pinned-ca": KedaTunedPinnedCaPolicy,
             "wattwise": WattwisePolicy, "oracle": OraclePolicy,
             "wattwise-reactive": ReactiveWattwisePolicy}
    return table[name](scenario, timing)
