"""`wattwise scaler-call`: call a running scaler the way KEDA does and print the answers.

KEDA's order on each poll: GetMetricSpec, GetMetrics (with the metric name the spec returned),
then IsActive. `--stream` instead opens StreamIsActive and prints each push until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc

from wattwise.models.errors import InvalidInputError, require_positive
from wattwise.tls_files import client_context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="127.0.0.1:6000", help="scaler host:port (default 127.0.0.1:6000)")
    parser.add_argument("--name", required=True, help="the ScaledObject's name")
    parser.add_argument("--namespace", default="default", help="the ScaledObject's namespace")
    parser.add_argument("-m", "--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="a trigger metadata entry (repeat for each key)")
    parser.add_argument("--ca-cert", help="PEM CA to verify the scaler's certificate (turns on TLS)")
    parser.add_argument("--client-cert", help="PEM client certificate (mTLS)")
    parser.add_argument("--client-key", help="PEM key of --client-cert")
    parser.add_argument("--server-name", help="TLS server name to verify, when it differs from the address")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="deadline per call (default 10)")
    parser.add_argument("--stream", action="store_true", help="open StreamIsActive and print pushes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _metadata(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError("-m", f"{item!r} is not KEY=VALUE", "e.g. -m workload=checkout-cams")
        out[key.strip()] = value
    return out


def _channel(args) -> grpc.Channel:
    """The channel to the scaler: plaintext, TLS (--ca-cert) or mTLS (--client-cert with --client-key)."""
    if bool(args.client_cert) != bool(args.client_key):
        raise InvalidInputError("--client-cert/--client-key", "give both or neither")
    if not (args.ca_cert or args.client_cert):
        return grpc.insecure_channel(args.address)
    # readable PEM, checked as explain checks it (gRPC would log C-core lines and fail to connect instead)
    client_context(("--ca-cert", args.ca_cert), ("--client-cert", args.client_cert), ("--client-key", args.client_key))
    read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
    creds = grpc.ssl_channel_credentials(read(args.ca_cert), read(args.client_key), read(args.client_cert))
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.address, creds, options=options)


def run(args: argparse.Namespace) -> int:
    from wattwise.scaler.proto import externalscaler_pb2 as pb
    from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

    require_positive(args.timeout_s, "--timeout-s", "give seconds per call, e.g. 10")
    ref = pb.ScaledObjectRef(name=args.name, namespace=args.namespace, scalerMetadata=_metadata(args.metadata))
    with _channel(args) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        try:
            if args.stream:
                for msg in stub.StreamIsActive(ref):
                    print(f"StreamIsActive: result={msg.result}", flush=True)
                print("StreamIsActive: stream ended (status OK)")
                return 0
            spec = stub.GetMetricSpec(ref, timeout=args.timeout_s)
            name = spec.metricSpecs[0].metricName
            metrics = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name), timeout=args.timeout_s)
            active = stub.IsActive(ref, timeout=args.timeout_s)
        except grpc.RpcError as e:
            print(f"wattwise scaler-call: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    result = {
        "metricSpecs": [{"metricName": s.metricName, "targetSize": s.targetSize, "targetSizeFloat": s.targetSizeFloat}
                        for s in spec.metricSpecs],
        "metricValues": [{"metricName": v.metricName, "metricValue": v.metricValue,
                          "metricValueFloat": v.metricValueFloat} for v in metrics.metricValues],
        "isActive": active.result,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for s in result["metricSpecs"]:
        print(f"GetMetricSpec: {s['metricName']} target {s['targetSizeFloat']:g} (int {s['targetSize']}, AverageValue)")
    for v in result["metricValues"]:
        print(f"GetMetrics:    {v['metricName']} = {v['metricValueFloat']:g} (int {v['metricValue']}) "
              f"-> the HPA asks for {v['metricValue']} replicas")
    print(f"IsActive:      {result['isActive']}")
    return 0
