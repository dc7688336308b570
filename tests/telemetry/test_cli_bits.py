import io

import pytest

from wattwise import cli
from wattwise.models.errors import InvalidInputError
from wattwise.models.ports import PowerFpsSource
from wattwise.telemetry.progress import ProgressBar
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource
from wattwise.telemetry.timeparse import parse_duration_s, parse_instant_s


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_only_on_a_terminal():
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = ProgressBar("fetching", stream=stream, width=10)
        bar(1, 4)
        bar(4, 4)
    assert "\rfetching [##........] 1/4" in tty.getvalue() and tty.getvalue().endswith("4/4\n")
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("text, seconds", [("15s", 15), ("7d", 604800), ("1h30m", 5400), ("90", 90), ("500ms", 0.5)])
def test_durations(text, seconds):
    assert parse_duration_s(text) == seconds


def test_bad_duration_and_time_name_the_flag():
    with pytest.raises(InvalidInputError, match="--since: '7 days' is not a duration"):
        parse_duration_s("7 days", "--since")
    with pytest.raises(InvalidInputError, match="--start"):
        parse_instant_s("yesterday", "--start")
    assert parse_instant_s("2024-05-01T00:00:00Z") == 1714521600.0


def test_fit_needs_both_start_and_end(tmp_path, capsys):
    rc = cli.main(["fit", "--prometheus", "http://127.0.0.1:9", "--start", "0", "--out", str(tmp_path)])
    assert rc == 2 and "give both --start and --end" in capsys.readouterr().err


def test_source_implements_the_port():
    assert isinstance(PrometheusPowerFpsSource(PrometheusClient("http://127.0.0.1:9")), PowerFpsSource)
