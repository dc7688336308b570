"""Seeded mutators for the fuzz tests: valid inputs recorded or bundled, broken on purpose.

Pure functions of a `random.Random`, so one integer seed (drawn by hypothesis, or counted by the
long run in benchmarks/fuzz_doors.py) gives one input, the same on every run. Each mutator
returns what it broke (`names`: the keys along the path it changed), so a test can check that a
refusal's message names the problem.

JSON documents are changed copy-on-write (`put`, `drop`): only the containers on the way to the
change are copied, so mutating a 50 KB NodeList costs microseconds, not a deep copy.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

DEEP = 300   # deeper than the extender's MAX_DEPTH (254)


def _nested(depth: int, kind: str) -> Any:
    doc: Any = 1
    for _ in range(depth):
        doc = [doc] if kind == "list" else {"a": doc}
    return doc


# Values that break types and bounds. NaN and infinities go out as JSON's non-standard tokens
# (`json.dumps(allow_nan=True)` writes NaN, Infinity), integers past 64 bits as digits.
ODD_VALUES: tuple = (
    None, True, False, 0, -1, 1, 0.5, -0.0, 2 ** 31, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, 10 ** 30,
    10 ** 400, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf, "", " ", "\x00", "\u00e9\u2603\U0001d11e",
    "\u202e\u200b", "\ufeff", "null", "true", "0", "-1", "NaN", "1e999", "x" * 5000, [], {}, [None], [1, "a", None],
    {"": None}, {"a": {"b": []}}, list(range(200)), "../../etc/passwd", "%s%n", "<script>",
)
TEXTS = ("", " ", "x", "-1", "0", "3.5", "1e400", "nan", "NaN", "inf", "-inf", "Infinity", "1e6", "1000001",
         "2147483648", "9" * 40, "0x10", "1_000", "+5", " 7 ", "\u0663", "\U0001d7d3", "\u00bd", "5\x00",
         "\u00e9t\u00e9", "\u2603", "\U0001f600" * 30, "a" * 300, "A" * 5000, "tdx", "none", "energy", "balanced",
         "fps", "streams", "4", "8Gi", "500m", "-4", "1Ei", "99999999Ti", "1e308", "true", "null", "\t", "\n",
         "retail/checkout-cams", "Retail/Cams", "a/b/c", "/x", "x/", "-bad-", "kata-qemu-tdx", "tdx+nvidia-cc",
         "sgx,tdx", "tdx,", ",", "+", "carbon", "sum(x)", "sum(", "{}", "[]")


def odd_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.06:
        return _nested(DEEP + rng.randrange(50), rng.choice(("list", "dict")))
    if roll < 0.5:
        return rng.choice(ODD_VALUES)
    if roll < 0.8:
        return rng.choice(TEXTS)
    if roll < 0.9:
        return rng.choice((rng.randrange(-10 ** 6, 10 ** 6), rng.uniform(-1e9, 1e9), rng.random()))
    return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 30)))


# -- JSON documents, copy-on-write -------------------------------------------------------------

def children(value: Any) -> list:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return list(range(len(value)))
    return []


def pick_path(doc: Any, rng: random.Random, stop: float = 0.3) -> tuple:
    """A path into `doc` by a random walk from the root that stops at each container with
    probability `stop`: shallow places (what the door reads) are chosen more than deep ones."""
    path: tuple = ()
    value = doc
    while True:
        keys = children(value)
        if not keys or (path and rng.random() < stop):
            return path
        key = rng.choice(keys)
        path = (*path, key)
        value = value[key]


def get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def put(doc: Any, path: tuple, value: Any) -> Any:
    """`doc` with the value at `path` replaced (containers on the way copied, missing objects
    made), or `doc` itself when the path runs through something that is no container."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        copy: Any = dict(doc)
        inner = doc.get(head)
        if inner is None and rest:
            inner = {}
    elif isinstance(doc, list) and isinstance(head, int) and -len(doc) <= head < len(doc):
        copy, inner = list(doc), doc[head]
    else:
        return doc
    copy[head] = put(inner, rest, value) if rest else value
    return copy


def drop(doc: Any, path: tuple) -> Any:
    """`doc` without the key (or list item) at `path`."""
    parent = get(doc, path[:-1])
    copy = dict(parent) if isinstance(parent, dict) else list(parent)
    del copy[path[-1]]
    return put(doc, path[:-1], copy)


def _respell(key: str, rng: random.Random) -> str:
    return rng.choice((key.lower(), key.upper(), key.swapcase(), key + "s", key[:-1], key + " ", "_" + key,
                       key.replace("N", "n", 1), key[::-1]))


def mutate_json(doc: Any, rng: random.Random) -> tuple[Any, set[str]]:
    """One change somewhere in `doc`; returns the new document and the string keys on the path
    to the change (what a refusal of it should name)."""
    path = pick_path(doc, rng)
    names = {str(k) for k in path if isinstance(k, str)}
    target = get(doc, path)
    op = rng.random()
    if op < 0.45 or not path:
        return put(doc, path, odd_value(rng)), names
    if op < 0.6:
        return drop(doc, path), names
    parent = get(doc, path[:-1])
    if op < 0.7 and isinstance(parent, dict):                 # a key respelled: case, typo
        key = path[-1]
        new = _respell(key, rng)
        changed = drop(doc, path)
        return put(changed, (*path[:-1], new), target) if new else changed, names | {new}
    if op < 0.78 and isinstance(target, dict):                # an unknown key added
        key = rng.choice(("unknown", "Error", "Pods", "items", "Nodes", "NodeNames", "\u2603", "", "x" * 300))
        return put(doc, (*path, key), odd_value(rng)), names | {key}
    if op < 0.86:                                             # wrapped in a list, or a list emptied/doubled
        if isinstance(target, list) and target:
            return put(doc, path, rng.choice(([], target + target, target[::-1], target[:1] * 50))), names
        return put(doc, path, [target]), names
    if op < 0.93 and isinstance(target, str):                 # a string made a number, huge, or unicode
        return put(doc, path, rng.choice((len(target), target * 1000, target + "\u2603", target.upper(),
                                          target[: len(target) // 2]))), names
    return put(doc, path, rng.choice(ODD_VALUES)), names


# Values for the fields the extender reads (quantities, labels, TEE lists, workload names):
# plausible in shape, wrong in range, case, unit or type.
QUANTITIES = ("1e400", "-4", "NaN", "nan", "Infinity", "1Ei", "99999999999Ti", "0.0001m", "1e-400", "4e", "",
              "4 ", "0x10", "\u0664", "1e308", "9" * 400, "-0", "1.5", "1000000000000000000000m", "7Ki", "+8Gi")
LABEL_VALUES = ("true", "True", "TRUE", "1", "yes", "on", "enabled", "false", "", "ready", "Ready", "on ", "x" * 63,
                "\u2603", "eu-central-1a", "ghost-zone", "Intel", "AMD", "NVIDIA-H100-80GB-HBM3", "8", "-1", "1e9")
TEE_TEXTS = ("tdx", "sev-snp", "sgx", "nvidia-cc", "none", "tdx,sev-snp", "sgx+nvidia-cc", "tdx,,", "TDX", " tdx ",
             "tdx+", "+", ",", "trustzone", "tdx,none", "none+tdx", "\u2603", "tdx;sgx", "x" * 5000)


def focus_value(rng: random.Random, kind: str) -> Any:
    """A value for a field of `kind` ("quantity", "label", "tee", "text"), odd in one way."""
    if rng.random() < 0.25:
        return odd_value(rng)
    pool = {"quantity": QUANTITIES, "label": LABEL_VALUES, "tee": TEE_TEXTS}.get(kind, TEXTS)
    return rng.choice(pool)


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


# -- raw bytes -----------------------------------------------------------------------------------

def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Truncated, flipped, non-UTF-8, re-encoded, padded or replaced bytes."""
    op = rng.randrange(11)
    n = len(data)
    if op == 0:
        return data[: rng.randrange(n + 1)]                   # truncated
    if op == 1 and n:
        b = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(n)] = rng.randrange(256)          # bytes flipped
        return bytes(b)
    if op == 2:
        at = rng.randrange(n + 1)
        return data[:at] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xfe\xff")) + data[at:]
    if op == 3:
        return b"\xef\xbb\xbf" + data                         # a UTF-8 byte-order mark
    if op == 4:
        return data.decode("utf-8", "replace").encode("utf-16")
    if op == 5:
        return data + rng.choice((b"}", b"]", b",", b"\n\n{}", b" garbage", b"\x00"))
    if op == 6:
        return b""
    if op == 7:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if op == 8 and n:
        a, b2 = sorted((rng.randrange(n), rng.randrange(n)))
        return data[:a] + data[b2:]                           # a slice cut out
    if op == 9 and n:
        a = rng.randrange(n)
        return data[:a] + data[a: a + rng.randrange(1, 64)] * rng.randrange(2, 20) + data[a:]
    return rng.choice((b"null", b"[]", b"{}", b"0", b'"Pod"', b"{" * 100_000, b"[" * 5000 + b"]" * 5000,
                       b'{"Pod":', b"NaN", b"-", b"\xff\xfe{", b'{"Pod":{}}'))


# -- scaler metadata -----------------------------------------------------------------------------

META_KEYS = ("workload", "query", "queryUnit", "streams", "fpsPerStream", "objective", "carbonWeight", "tee",
             "minReplicas", "maxReplicas", "headroom", "model", "cpu", "memory", "gpu")
ODD_KEYS = ("minReplica", "Streams", "streams ", " workload", "queryFromEnv", "streamsFromEnv", "workloadFromEnv",
            "FromEnv", "scalerAddress", "enableTLS", "unsafeSsl", "caCert", "threshold", "", "\u2603", "k" * 129,
            "x" * 128, "metricName", "name", "namespace")


def mutate_metadata(md: dict[str, str], rng: random.Random) -> tuple[dict[str, str], set[str]]:
    """One change to a trigger's metadata; returns it and the keys it touched."""
    out = dict(md)
    op = rng.random()
    if op < 0.5 or not out:
        key = rng.choice(META_KEYS) if rng.random() < 0.7 or not out else rng.choice(list(out))
        out[key] = rng.choice(TEXTS) if rng.random() < 0.85 else odd_text(rng)
        return out, {key}
    if op < 0.65:
        key = rng.choice(list(out))
        del out[key]
        return out, {key}
    if op < 0.8:
        key = rng.choice(ODD_KEYS)
        out[key] = rng.choice(TEXTS)
        return out, {key.removesuffix("FromEnv") or key}
    if op < 0.9:                                              # a key respelled
        key = rng.choice(list(out))
        new = _respell(key, rng)
        out[new] = out.pop(key)
        return out, {key, new}
    many = {f"k{i}": "v" for i in range(rng.randrange(60, 80))}   # too many keys
    out.update(many)
    return out, {"scalerMetadata"}


def odd_text(rng: random.Random) -> str:
    """A string protobuf can carry (valid UTF-8, no lone surrogates)."""
    roll = rng.random()
    if roll < 0.3:
        return str(rng.choice((rng.randrange(-10 ** 9, 10 ** 9), rng.uniform(-1e12, 1e12), 10 ** rng.randrange(400))))
    if roll < 0.6:
        return "".join(chr(rng.choice((rng.randrange(0x20, 0x7f), rng.randrange(0xa0, 0xd7ff))))
                       for _ in range(rng.randrange(0, 40)))
    return rng.choice(TEXTS) * rng.randrange(1, 2000)
