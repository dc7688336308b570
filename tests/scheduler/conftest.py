from __future__ import annotations

import pytest

from wattwise.models.scenario import load_scenario
from wattwise.runtime import StaticPlanSource
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from .helpers import SCENARIO, recorded_node_list


@pytest.fixture(scope="session")
def source() -> StaticPlanSource:
    return StaticPlanSource(load_scenario(SCENARIO).snapshot)


@pytest.fixture(scope="module")
def extender(source):
    """The extender on loopback with the recorded nodes in its cache."""
    handle = start_extender(source, "127.0.0.1", 0, StaticNodeCache.from_node_json(recorded_node_list()["items"]))
    yield handle
    handle.stop(2.0)
