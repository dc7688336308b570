import subprocess
import sys
from pathlib import Path

import pytest

from wattwise.models.errors import InvalidInputError
from wattwise.models.scenario import load_scenario
from wattwise.models.tee import TeeKind

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "scenarios" / "metro-retail.yaml"
MINIMAL = """name: t
zones: {a: {carbon_g_per_kwh: 100}}
node_classes: {c: {cores: 8, memory_gib: 32, power: {idle_w: 50, max_w: 200}}}
nodes: [{name_prefix: n, class: c, zone: a, count: 2}]
workloads: [{name: w, streams: 3}]
"""




def test_bundled_scenario_is_realistic():
    s = load_scenario(BUNDLED)
    classes = s.snapshot.node_classes
    assert len({n.zone for n in s.snapshot.nodes}) >= 3
    assert any(c.amx for c in classes.values()) and any(not c.amx and not c.has_gpu for c in classes.values())
    kinds = set().union(*(c.tee_kinds for c in classes.values()))
    assert {TeeKind.TDX, TeeKind.SEV_SNP, TeeKind.SGX, TeeKind.NVIDIA_CC} <= kinds
    assert any(w.confidentiality.required for w in s.snapshot.workloads)
    assert any(not w.confidentiality.required for w in s.snapshot.workloads)
    # real SPECpower curves, not straight lines
    assert len(classes["spr-amx-tdx"].power.util) == 11


@pytest.mark.parametrize("edit, where", [
    (lambda t: t.replace("streams: 3", "streams: -3"), "workloads.0.streams"),
    (lambda t: t.replace("class: c", "class: d"), "nodes.0.class"),
    (lambda t: t.replace("zone: a,", "zone: b,"), "nodes.0.zone"),
    (lambda t: t.replace("cores: 8", "cores: 8, turbo: yes"), "node_classes.c.turbo"),
    (lambda t: t.replace("workloads: [{name: w, streams: 3}]", "workloads: [{name: w, streams: 3, tee: [tdz]}]"), "workloads.0.tee"),
    (lambda t: t.replace("idle_w: 50, max_w: 200", "idle_w: 50"), "node_classes.c.power"),
])
def test_broken_files_name_the_field(tmp_path, edit, where):
    path = tmp_path / "s.yaml"
    path.write_text(edit(MINIMAL))
    with pytest.raises(InvalidInputError) as e:
        load_scenario(path)
    assert where in str(e.value) and str(path) in str(e.value)


def test_cli_reports_a_broken_file_in_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL.replace("streams: 3", "streams: [3"))
    r = subprocess.run([sys.executable, "-m", "wattwise", "plan", "--scenario", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not valid YAML" in r.stderr and r.stdout == ""


def test_every_error_is_listed_and_unknown_keys_get_the_closest_known_one(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL.replace("count: 2", "cuont: 2")
                    .replace("streams: 3}", "streams: 3, fps_per_stream: 0}")
                    .replace("carbon_g_per_kwh: 100", "carbon_g_per_kwh: 100, sginal: average")
                    .replace("cores: 8", "cores: 8, turbo: yes"))
    with pytest.raises(InvalidInputError) as e:
        load_scenario(path)
    assert str(e.value) == (
        f"{path}: zones.a.sginal: unknown key (did you mean 'signal'?); "
        "node_classes.c.turbo: unknown key (known here: amx, cores, cpu_model, cpu_vendor, gpu, memory_gib, power, "
        "startup_s, startup_tee_s, tee, wake_energy_j, wake_s); "
        "nodes.0.count: Field required; nodes.0.cuont: unknown key (did you mean 'count'?); "
        "workloads.0.fps_per_stream: Input should be greater than 0")
    assert "more)" not in str(e.value)


def test_an_alias_is_suggested_as_written(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL.replace("class: c", "clas: c"))
    with pytest.raises(InvalidInputError, match=r"nodes\.0\.clas: unknown key \(did you mean 'class'\?\)"):
        load_scenario(path)


def test_cli_prints_every_scenario_error_on_one_line(tmp_path, capsys):
    from wattwise.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL.replace("streams: 3}", "streams: 3, fps_per_stream: 0, latncy_ms: 5}"))
    assert main(["plan", "--scenario", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"wattwise plan: error: {path}: workloads.0.fps_per_stream: Input should be greater than 0; "
        "workloads.0.latncy_ms: unknown key (did you mean 'latency_ms'?)\n")


def test_a_bundled_scenario_is_found_by_name_from_any_directory(tmp_path, monkeypatch, capsys):
    """An installed wattwise ships its scenarios in site-packages: `--scenario eu-nearby` finds
    them from anywhere, `plan` defaults to metro-retail like `simulate`, and a name that is neither
    a file nor bundled lists the bundled ones."""
    from wattwise.cli import main
    from wattwise.models.scenario import bundled_scenarios, scenario_path

    monkeypatch.chdir(tmp_path)
    assert bundled_scenarios() == ["eu-nearby", "metro-retail"]
    assert load_scenario("eu-nearby").spec.name == "eu-nearby"
    assert main(["plan", "--json"]) == 0 and '"objective": "energy"' in capsys.readouterr().out
    (tmp_path / "eu-nearby").write_text("not a scenario")
    assert scenario_path("eu-nearby") == Path("eu-nearby")          # a file of that name comes first
    assert main(["plan", "--scenario", "nope"]) == 2
    assert capsys.readouterr().err == ("wattwise plan: error: nope: cannot read the scenario file: No such file or "
                                       "directory (give a scenario file, or a bundled one by name: eu-nearby, "
                                       "metro-retail)\n")
