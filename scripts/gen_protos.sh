#!/usr/bin/env bash
# Regenerate the committed gRPC stubs in scaler/proto/ from scaler/proto/externalscaler.proto.
# Uses the pinned grpcio-tools from the venv (see pyproject.toml). The proto is copied into a
# temporary tree laid out as wattwise/scaler/proto/ so the generated grpc module imports its
# messages as `wattwise.scaler.proto.externalscaler_pb2` (the installed package name).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/wattwise/scaler/proto"
cp "$repo/scaler/proto/externalscaler.proto" "$tmp/wattwise/scaler/proto/"
"$python" -m grpc_tools.protoc -I "$tmp" \
  --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
  wattwise/scaler/proto/externalscaler.proto
for f in externalscaler_pb2.py externalscaler_pb2.pyi externalscaler_pb2_grpc.py; do
  cp "$tmp/wattwise/scaler/proto/$f" "$repo/scaler/proto/$f"
done
echo "regenerated: scaler/proto/externalscaler_pb2{.py,.pyi,_grpc.py} with $("$python" -m grpc_tools.protoc --version)"
