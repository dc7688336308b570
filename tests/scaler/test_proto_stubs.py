"""The committed stubs import, match the pinned versions, and carry KEDA's contract exactly."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import grpc
from google.protobuf import __version__ as protobuf_version

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("wattwise.scaler.proto.externalscaler_pb2", "wattwise.scaler.proto.externalscaler_pb2_grpc")


def _pin(name: str) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(rf'"{re.escape(name)}==([0-9.]+)"', text)
    assert m, f"{name} is not pinned in pyproject.toml"
    return m.group(1)


def test_generated_modules_import():
    for name in MODULES:
        importlib.import_module(name)


def test_grpc_matches_pin_and_generated_code():
    grpc_mod = importlib.import_module("wattwise.scaler.proto.externalscaler_pb2_grpc")
    assert grpc.__version__ == _pin("grpcio")
    assert grpc_mod.GRPC_GENERATED_VERSION == _pin("grpcio-tools")


def test_protobuf_runtime_is_compatible_with_gencode():
    src = (ROOT / "scaler" / "proto" / "externalscaler_pb2.py").read_text()
    m = re.search(r"Protobuf Python Version: (\d+)\.(\d+)\.(\d+)", src)
    assert m, "generated module lacks its protobuf gencode version"
    gencode = tuple(int(x) for x in m.groups())
    runtime = tuple(int(x) for x in protobuf_version.split(".")[:3])
    assert protobuf_version == _pin("protobuf")
    assert runtime[0] == gencode[0] and runtime >= gencode, (runtime, gencode)


def test_contract_matches_keda_field_for_field():
    pb = importlib.import_module("wattwise.scaler.proto.externalscaler_pb2")
    svc = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    assert svc.full_name == "externalscaler.ExternalScaler"
    methods = {m.name: (m.input_type.name, m.output_type.name, m.server_streaming) for m in svc.methods}
    assert methods == {
        "IsActive": ("ScaledObjectRef", "IsActiveResponse", False),
        "StreamIsActive": ("ScaledObjectRef", "IsActiveResponse", True),
        "GetMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", False),
        "GetMetrics": ("GetMetricsRequest", "GetMetricsResponse", False),
        "StreamMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", True),
    }
    F = pb.DESCRIPTOR.message_types_by_name
    expected = {
        "ScaledObjectRef": {"name": (1, "string"), "namespace": (2, "string"), "scalerMetadata": (3, "map")},
        "IsActiveResponse": {"result": (1, "bool")},
        "GetMetricSpecResponse": {"metricSpecs": (1, "repeated")},
        "MetricSpec": {"metricName": (1, "string"), "targetSize": (2, "int64"), "targetSizeFloat": (3, "double")},
        "GetMetricsRequest": {"scaledObjectRef": (1, "message"), "metricName": (2, "string")},
        "GetMetricsResponse": {"metricValues": (1, "repeated")},
        "MetricValue": {"metricName": (1, "string"), "metricValue": (2, "int64"), "metricValueFloat": (3, "double")},
    }
    names = {9: "string", 8: "bool", 3: "int64", 1: "double", 11: "message"}
    for msg, fields in expected.items():
        got = {}
        for f in F[msg].fields:
            kind = names[f.type]
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                kind = "map"
            elif f.is_repeated:
                kind = "repeated"
            got[f.name] = (f.number, kind)
        assert got == fields, msg
    assert pb.DESCRIPTOR.package == "externalscaler"
