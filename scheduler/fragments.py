"""Names-mode replies joined from JSON entries encoded once per node.

With nodeCacheCapable: true a request is a pod and up to thousands of node names whose verdicts
and costs `decide.py` already holds. What is left per call is finding each name and writing the
reply, and building dicts and lists to encode costs several times more than finding the names. So
each node's entry of a reply (`"name"`, `"name":"reason"`, `{"Host":"name","Score":n}`) is encoded
once and kept, and a reply joins the requested nodes' entries:

- `NameIndex.find` reads the names straight from the request bytes into positions, and the reply
  is written from those positions, both by the C accelerator `_names.c` (no Python object per
  name: ~0.1 ms for 5,000 names where Python needs ~0.5 ms). It takes kube-scheduler's plain form
  only and returns None for the rest (escapes, unknown or repeated names...): the caller then
  decodes the JSON and asks `NameIndex.positions`;
- `NameIndex.positions` finds decoded names in one C-level call (operator.itemgetter over a dict of
  4-byte positions, joined into a numpy array), or says that one is unknown or repeated; numpy
  then picks the entries of each section in request order. This is also the whole path when the
  accelerator is not built (`accelerated()` says which).

The replies parse to exactly what `wire.filter_result` and `wire.host_priority_list` give for the
same names (tests/scheduler/test_fragments.py checks it).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Hashable, Mapping
from operator import itemgetter
from typing import Any

import numpy as np

from wattwise.models.scoring import MAX_SCORE
from wattwise.scheduler import wire

try:
    from wattwise.scheduler import _names
except ImportError:   # not built (no C compiler at install): the pure-Python path answers all
    _names = None

PASSED, FAILED, UNRESOLVABLE = 0, 1, 2   # the sections of an ExtenderFilterResult
FILTER_ORDER = bytes((FAILED, UNRESOLVABLE, PASSED))   # as wire.FILTER_PIECES writes them
_POSITION = np.dtype(np.uint32)   # native order, as _names writes positions
# Positions of nodes in a NameIndex, native uint32: a memoryview from `find` (the accelerator's
# path, which needs no numpy), a numpy array from `positions` (either path).
Positions = np.ndarray | memoryview
_PAD = _names.PAD if _names is not None else 0   # zero bytes an entry buffer for _names ends with


def accelerated() -> bool:
    """Whether the C accelerator of names-mode requests is built and used."""
    return _names is not None


class NameIndex:
    """The node names of a node set, in its `entries` order: each one's position, and its
    HostPriorityList entry for each score (encoded on first use). Valid as long as the names and
    their order are, whatever else changes in the nodes."""

    def __init__(self, names: list[str]):
        self.names = names
        # Keys are fresh copies, allocated one after the other: a look-up compares the request's
        # string with the key's, and packed keys miss the CPU cache less (~20% faster at 5,000).
        self._positions = {_copy(n): i.to_bytes(4, sys.byteorder) for i, n in enumerate(names)}
        self._scored = np.empty((MAX_SCORE + 1, len(names)), dtype=object)   # row s: entries scoring s
        self._scores_encoded: set[int] = set()
        # a seed of its own: node names chosen to collide in a known hash cannot slow look-ups
        self.table = _names.NameTable(names, seed=secrets.randbits(64)) if _names is not None else None

    def find(self, body: bytes, names_at: int) -> Positions | None:
        """Positions of the names in the NodeNames array at body[names_at:] (wire.names_head), read
        without decoding; None when the accelerator is not built or does not take this request (a
        name unknown, repeated, not plain; anything but an array of strings then the body's end)."""
        if self.table is None:
            return None
        found = self.table.find(body, names_at)
        if found is None or not wire.names_tail_ok(body, found[1]):
            return None
        return memoryview(found[0]).cast("I")   # what the accelerator's writers read; no numpy on this path

    def positions(self, names: list[str]) -> np.ndarray | None:
        """Positions of `names` in request order; None when one is unknown or named twice (the
        general path answers those: a node seconds old, or a request not from kube-scheduler)."""
        try:
            found = itemgetter(*names)(self._positions) if len(names) > 1 else [self._positions[n] for n in names]
        except KeyError:
            return None
        positions = np.frombuffer(b"".join(found), dtype=_POSITION)
        if len(positions) > 1 and np.bincount(positions).max() > 1:
            return None
        return positions

    def score_entries(self, scores: np.ndarray) -> np.ndarray:
        """Every node's HostPriorityList entry, node i scoring `scores[i]` (0..MAX_SCORE), packed."""
        scores = scores.astype(np.intp)
        for score in np.flatnonzero(np.bincount(scores, minlength=MAX_SCORE + 1)).tolist():
            if score not in self._scores_encoded:
                self._scored[score] = [wire.score_entry(n, score) for n in self.names]
                self._scores_encoded.add(score)
        picked = self._scored.take(scores * len(self.names) + np.arange(len(self.names)))   # [scores[i], i]
        return _packed(picked.tolist())


class FilterEntries:
    """One pod intent's ExtenderFilterResult entries, encoded once per node and verdict: a new
    node set in which one node changed re-encodes that node only. Verdicts are numbered by their
    (section, reason), each counted under its kind in the metrics."""

    def __init__(self, describe: Callable[[Any], tuple[int, str, Hashable]]):
        """`describe(verdict)`: its section, reason and the kind the metrics count it under."""
        self._describe = describe
        self._rows: dict[str, tuple[Any, tuple[int, int, bytes]]] = {}   # name -> (verdict, row)
        self._codes: dict[tuple[int, str], int] = {}   # (section, reason) -> code
        self._kinds: list[Hashable] = []               # by code

    def fragments(self, verdicts: Mapping[str, Any]) -> FilterFragments:
        """The entries of `verdicts` (a verdict table, in NameIndex order)."""
        rows = []
        for name, verdict in verdicts.items():
            hit = self._rows.get(name)
            if hit is None or hit[0] is not verdict:
                hit = self._rows[name] = (verdict, self._row(name, verdict))
            rows.append(hit[1])
        return FilterFragments(rows, tuple(self._kinds))

    def _row(self, name: str, verdict) -> tuple[int, int, bytes]:
        section, reason, kind = self._describe(verdict)
        code = self._codes.get((section, reason))
        if code is None:
            code = self._codes[(section, reason)] = len(self._kinds)
            self._kinds.append(kind)
        entry = wire.name_entry(name) if section == PASSED else wire.reason_entry(name, reason)
        return section, code, entry


class FilterFragments:
    """One verdict table's ExtenderFilterResult entries, by node position."""

    def __init__(self, rows: list[tuple[int, int, bytes]], kinds: tuple[Hashable, ...]):
        """`rows`, in NameIndex order: (section, verdict code, encoded entry); `kinds`: the kind
        each code is counted under."""
        self._kinds = kinds
        self._sections = np.fromiter(map(itemgetter(0), rows), dtype=np.uint8, count=len(rows))
        self._codes = np.fromiter(map(itemgetter(1), rows), dtype=_POSITION, count=len(rows))
        self._rows = rows
        self._buffer: tuple[bytes, bytes] | None = None   # records and entries for the accelerator, on first use
        self._entries: np.ndarray | None = None           # for the pure-Python path, likewise

    def reply(self, positions: Positions, table=None) -> tuple[bytes, dict[Hashable, int]]:
        """The encoded reply for the nodes at `positions`, and how many fell under each kind;
        written by `table` (the NameIndex's accelerator) when there is one."""
        if table is not None:
            if self._buffer is None:
                self._buffer = _entry_records([row[2] for row in self._rows], self._sections, self._codes)
            reply, counts = table.join_sections(positions, *self._buffer, wire.FILTER_PIECES, FILTER_ORDER,
                                                len(self._kinds))
        else:
            counts = np.bincount(self._codes[positions], minlength=len(self._kinds)).tolist()
            sections = self._sections[positions]
            passed, failed, unresolvable = (self._join(positions[sections == s]) for s in (PASSED, FAILED, UNRESOLVABLE))
            reply = wire.names_filter_reply(passed, failed, unresolvable)
        tally: dict[Hashable, int] = {}
        for code, n in enumerate(counts):
            if n:
                kind = self._kinds[code]
                tally[kind] = tally.get(kind, 0) + n
        return reply, tally

    def _join(self, positions: np.ndarray) -> bytes:
        if self._entries is None:
            self._entries = _packed([row[2] for row in self._rows])
        return b",".join(self._entries[positions].tolist())


class ScoreFragments:
    """One cost table's HostPriorityList entries, by node position, for each way of scoring its
    cost classes (a node's score depends on its class and on the classes among the candidates)."""

    MEMO = 4   # score tables kept per cost table

    def __init__(self, index: NameIndex, classes: list[int], n_classes: int):
        """`classes[i]`: the cost class (0..n_classes-1) of node i, or -1 if it is not scored (0)."""
        self._index = index
        self._labels = (np.array(classes, dtype=np.int64) + 1).astype(_POSITION)   # 0: not scored, c + 1: class c
        self._n_classes = n_classes
        self._memo: dict[tuple[int, ...], list] = {}   # class scores -> [node scores, their entries or None]
        # (entries: the accelerator's (entries, records) from score_entries, or numpy's packed entries)

    def present(self, positions: Positions) -> list[int]:
        """The cost classes of the nodes at `positions`."""
        table = self._index.table
        if table is not None:
            counts = table.count(positions, self._labels, self._n_classes + 1)
        else:
            counts = np.bincount(self._labels[positions], minlength=self._n_classes + 1).tolist()
        return [c for c, n in enumerate(counts[1:]) if n]

    def reply(self, positions: Positions, class_scores: list[int]) -> bytes:
        """The encoded HostPriorityList of the nodes at `positions`, class c scoring `class_scores[c]`."""
        key = tuple(class_scores)
        memo = self._memo.get(key)
        if memo is None:
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            by_label = np.array([0, *class_scores], dtype=np.uint8)
            memo = self._memo[key] = [by_label[self._labels], None]
        table = self._index.table
        if table is not None:
            if memo[1] is None:
                memo[1] = table.score_entries(memo[0])
            entries, records = memo[1]
            return table.join_sections(positions, records, entries, wire.PRIORITY_PIECES, b"\0", 1)[0]
        if memo[1] is None:
            memo[1] = self._index.score_entries(memo[0])
        return wire.priority_reply(b",".join(memo[1][positions].tolist()))


def _copy(name: str) -> str:
    return name.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")


def _entry_records(entries: list[bytes], sections: np.ndarray, codes: np.ndarray) -> tuple[bytes, bytes]:
    """What NameTable.join_sections reads: a record per node (where its entry starts, its length,
    its code and section, as native uint32s) and `entries` in one buffer, then the zero bytes
    _names may read past the last."""
    lengths = np.fromiter(map(len, entries), dtype=np.int64, count=len(entries))
    if lengths.sum() >= 2**32 - _PAD:
        raise ValueError("encoded entries past 4 GiB")
    records = np.empty((len(entries), 4), dtype=_POSITION)
    records[:, 0] = np.cumsum(lengths) - lengths
    records[:, 1] = lengths
    records[:, 2] = codes
    records[:, 3] = sections
    return records.tobytes(), b"".join(entries) + bytes(_PAD)


def _packed(entries: list[bytes]) -> np.ndarray:
    """Fresh copies of `entries`, allocated one after the other. A reply reads entries in node
    order: packed, they miss the CPU cache less (gathering and joining 5,000 entries scattered
    in memory took 3x as long). One join and one split make the copies (encoded JSON holds no NUL)."""
    copies = b"\0".join(entries).split(b"\0") if entries else []
    return np.array(copies, dtype=object)
