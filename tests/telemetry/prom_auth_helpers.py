"""Shared by the Prometheus credential tests: a bcrypt hash for Prometheus's `basic_auth_users`,
a web configuration file, an argument list of `--prometheus-*` flags, and small test doubles."""

from __future__ import annotations

import ssl
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tests.scaler.certs import Pki

END_S = (time.time() - 3600) // 15 * 15          # promtool writes only blocks in the past
STEP_S, POINTS = 15, 40
WORKLOAD = "retail/cams"
QUERY = 'sum(wattwise_active_streams{namespace="retail",workload="cams"})'


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash (cost 4: fast, which is all a test needs) with the `bcrypt` package if it is
    installed, else with the C library's crypt(3) (libxcrypt does bcrypt, `$2b$`)."""
    try:
        import bcrypt
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)     # crypt: deprecated, still in 3.11/3.12
            import crypt
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if not hashed or not hashed.startswith("$2"):
            raise RuntimeError("no bcrypt: pip install bcrypt (crypt(3) here does not do bcrypt)") from None
        return hashed
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def web_config(path: Path, pki: Pki, users: dict[str, str]) -> Path:
    """Prometheus's --web.config.file: TLS with client certificates required, and basic auth."""
    lines = ["tls_server_config:", f"  cert_file: {pki.server_cert}", f"  key_file: {pki.server_key}",
             "  client_auth_type: RequireAndVerifyClientCert", f"  client_ca_file: {pki.ca_cert}",
             "basic_auth_users:"]
    lines += [f"  {user}: '{bcrypt_hash(password)}'" for user, password in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def client_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def series() -> str:
    """Demand (a ScaledObject's query), the per-pod FPS gauges and a carbon-intensity gauge,
    constant over ten minutes."""
    lines = ["# TYPE grid_carbon_intensity gauge"]
    lines += [f'grid_carbon_intensity{{zone="DE"}} 312.5 {t:.0f}' for t in _times()]
    lines.append("# TYPE wattwise_active_streams gauge")
    lines += [f'wattwise_active_streams{{namespace="retail",workload="cams",pod="gw"}} 48 {t:.0f}' for t in _times()]
    for metric, value in (("infer_fps", 14.0), ("drop_fps", 3.0)):
        lines.append(f"# TYPE {metric} gauge")
        lines += [f'{metric}{{namespace="retail",pod="cams-a"}} {value} {t:.0f}' for t in _times()]
    return "\n".join(lines + ["# EOF", ""])


def _times():
    return [END_S - (POINTS - 1 - k) * STEP_S for k in range(POINTS)]


@dataclass(frozen=True)
class Pod:
    namespace: str = "retail"
    name: str = "cams-a"
    workload: str = WORKLOAD
    node: str = "node-1"
    ready: bool = True
    ready_since_s: float | None = None    # as kube.workload_pods.PodRecord


class Pods:
    known = True

    def pods(self):
        return [Pod()]


class Cluster:
    """What `serve`'s builders ask of the Kubernetes adapter."""

    def workload_pods(self):
        return Pods()
