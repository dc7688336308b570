import io

import pytest

from wattwise import cli
from wattwise.models.errors import InvalidInputError
from wattwise.models.ports import PowerFpsSource
from wattwise.telemetry.progress import ProgressBar
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource
from wattwise.telemetry.timeparse import parse_duration_s, parse_instant_s

from .fake_http import serve


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


@pytest.fixture
def unwritable_out(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "models"


@pytest.mark.parametrize("flags, expected", [
    (["--timeout", "0"], "--timeout: 0.0 is not a positive number (give how long one Prometheus query may take"),
    (["--retries", "-1"], "--retries: -1 is less than 0 (give how often to retry a failed query"),
    (["--min-samples", "-3"], "--min-samples: -3 is less than 1 (give the training samples a pair needs"),
    (["--out", "UNWRITABLE"], "--out: {blocked} is a file, so {out} cannot be a folder"),
])
def test_fit_flags_are_one_line_before_any_query(tmp_path, unwritable_out, capsys, flags, expected):
    """Found at once, not after fetching and fitting a week of history: nothing reaches Prometheus."""
    flags = [str(unwritable_out) if f == "UNWRITABLE" else f for f in flags]
    with serve(503) as (url, calls):
        rc = cli.main(["fit", "--prometheus", url, "--out", str(tmp_path / "models"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    expected = expected.format(blocked=unwritable_out.parent, out=unwritable_out)
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"wattwise fit: error: {expected}"), err
    assert calls == []
