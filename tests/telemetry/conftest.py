"""`prometheus_factory`: call it with OpenMetrics text, get a running, loaded Prometheus."""

from __future__ import annotations

import pytest

from tests.prometheus_fixture import PrometheusFixtureError, missing_binaries, start_prometheus, INSTALL_HINT


@pytest.fixture
def prometheus_factory(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL_HINT}", pytrace=False)
    started = []

    def make(openmetrics_text: str | None, **kwargs):
        try:
            prom = start_prometheus(openmetrics_text, tmp_path_factory.mktemp("prometheus"), **kwargs)
        except PrometheusFixtureError as e:
            pytest.fail(str(e), pytrace=False)
        started.append(prom)
        return prom

    yield make
    for prom in started:
        prom.stop()
