"""Every container of deploy/'s installs that runs WattWise passes arguments the real command line
accepts, as the kubelet passes them (a manifest whose arguments the parser refuses starts a
container that exits at once), and the ports, probes and files those arguments name are the ones
the manifests open, probe and mount."""

from __future__ import annotations

import pytest

from tests.deploy_render import OVERLAYS, SERVE, flag, pod_spec, render, the, wattwise_containers
from wattwise.cli import build_parser


def shipped_args(overlay: str) -> list[str]:
    """`wattwise` arguments of the one serving container of an overlay, exactly as run."""
    return wattwise_containers(render(overlay))[SERVE]


def parse(where: str, argv: list[str]):
    parser, _ = build_parser()
    try:
        return parser.parse_args(argv)
    except SystemExit as e:   # argparse's way of refusing
        pytest.fail(f"{where}: `wattwise {' '.join(argv)}` is refused (exit {e.code})")


def test_there_are_overlays():
    assert {"overlays/quickstart", "overlays/production", "overlays/kepler-0.9"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_args_parse(overlay):
    containers = wattwise_containers(render(overlay))
    assert SERVE in containers
    for where, argv in containers.items():
        args = parse(f"{overlay} {where}", argv)
        assert args.log_json
        assert "$(" not in " ".join(argv), f"{where}: an unexpanded $(NAME): {argv}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_process_serves_both_doors_on_the_ports_the_manifests_open(overlay):
    objects = render(overlay)
    args = parse(overlay, shipped_args(overlay))
    assert args.command == "serve" and args.scaler and args.extender
    assert args.in_cluster and args.scenario is None
    deployment = the(objects, "Deployment", "wattwise")
    (container,) = pod_spec(deployment)["containers"]   # one container, one process
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": args.grpc_port, "health-grpc": args.health_port, "metrics": args.metrics_port,
                     "extender": args.http_port, "health-http": args.extender_health_port}
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == args.health_port   # plaintext gRPC health
    ready = container["readinessProbe"]["httpGet"]
    assert ready["path"] == "/readyz" and ports[ready["port"]] == args.extender_health_port
    assert args.scaler_service == "wattwise-scaler" and the(objects, "Service", args.scaler_service)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_file_an_argument_names_is_mounted(overlay):
    objects = render(overlay)
    spec = pod_spec(the(objects, "Deployment", "wattwise"))
    mounts = [m["mountPath"].rstrip("/") + "/" for m in spec["containers"][0]["volumeMounts"]]
    for a in shipped_args(overlay):
        value = a.partition("=")[2]
        if value.startswith("/"):
            assert any((value + "/").startswith(m) for m in mounts), f"{overlay}: {a} is on no volume"


def test_tls_only_in_production():
    tls_flags = ("--tls-cert", "--tls-key", "--tls-client-ca", "--extender-tls-cert", "--extender-tls-key",
                 "--extender-client-ca")
    quickstart, production = shipped_args("overlays/quickstart"), shipped_args("overlays/production")
    assert not any(flag(quickstart, f) for f in tls_flags)
    assert all(flag(production, f) for f in tls_flags)
    assert [a for a in shipped_args("overlays/kepler-0.9") if not a.startswith("--kepler-schema")] == \
        [a for a in production if not a.startswith("--kepler-schema")]


@pytest.mark.parametrize("overlay, schema", [("overlays/quickstart", "auto"), ("overlays/production", "0.10"),
                                             ("overlays/kepler-0.9", "0.9")])
def test_each_overlay_refits_from_its_kepler_schema(overlay, schema):
    args = parse(overlay, shipped_args(overlay))
    assert args.kepler_schema == schema and args.scrape_interval == "15s"
