"""The names-mode accelerator (scheduler/_names.c) and the request head it starts from
(wire.names_head): it reads exactly what a JSON decoder reads, or declines (None) so that the
general path answers; its writers check what they are given."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattwise.scheduler import fragments, wire

from .helpers import recorded_pods

PLAIN = "abcdefghijklmnopqrstuvwxyz0123456789-."


def test_the_accelerator_is_built():
    """./dev installs a C compiler and Python's headers, so the extension must be there. Without it
    the extender still answers, from the pure-Python path, about 3x slower at 5,000 names."""
    assert fragments.accelerated(), (
        "wattwise.scheduler._names is not built: install gcc and Python's headers (python3-dev), "
        "then `pip install -e .` again (./dev does both)")


def table(names):
    return fragments._names.NameTable(names)


def plain(name: str) -> bool:
    return bool(name) and all(0x21 <= ord(c) < 0x7f and c not in '"\\' for c in name)


def expected(names: list[str], request: list[str]) -> list[int] | None:
    """What find() must say: positions of the first table entry of each name, or None."""
    first: dict[str, int] = {}
    for i, n in enumerate(names):
        first.setdefault(n, i)
    if len(set(request)) != len(request) or not all(plain(n) and n in first for n in request):
        return None
    return [first[n] for n in request]


def encodings(request: list[str]) -> list[bytes]:
    """The array as Go writes it, as Python's json writes it, indented, escaped and not."""
    return [json.dumps(request, separators=(",", ":")).encode(), json.dumps(request).encode(),
            json.dumps(request, indent=2).encode(), json.dumps(request, ensure_ascii=False).encode(),
            b"[ \r\n\t" + b" ,\n ".join(json.dumps(n).encode() for n in request) + b"\t]"]


ODD = ['quote"d', "back\\slash", "uni-é-ß-😀", "", "sp ace", "tab\t", "comma,]", "nul\0", "del\x7f"]
name_st = st.one_of(st.text(PLAIN, min_size=1, max_size=150), st.sampled_from(ODD),   # past 64-byte blocks
                    st.text(min_size=0, max_size=12))


@settings(max_examples=300, deadline=None)
@given(names=st.lists(name_st, max_size=40), data=st.data())
def test_find_reads_exactly_what_a_decoder_reads(names, data):
    t = table(names)
    pool = names + data.draw(st.lists(name_st, max_size=4))
    request = data.draw(st.lists(st.sampled_from(pool), max_size=50)) if pool else []
    want = expected(names, request)
    for array in encodings(request):
        body = b'{"Pod":{},"NodeNames":' + array + b"}"
        start = body.index(b"[")
        got = t.find(body, start)
        if want is None:
            assert got is None, (names, request, array)
        else:
            assert got is not None, (names, request, array)
            positions, end = got
            assert list(memoryview(positions).cast("I")) == want
            assert body[end:] == b"}"


@pytest.mark.parametrize("array", [b"", b"[", b'["a"', b'["a",]', b'["a" "b"]', b'[,"a"]', b"{}", b'"a"',
                                   b"[1]", b"[null]", b'["a",', b'["a"}', b'[["a"]]', b'["a\\u0062"]', b'["\xc3\xa9"]',
                                   b"[\"a\x01\"]", b'["a"]'[:-1], b"null"])
def test_find_declines_anything_else(array):
    assert table(["a", "b"]).find(b"x" + array, 1) is None


def test_find_reads_to_the_buffer_s_last_byte_and_no_further():
    """Bytes are classified 64 at a time: names that end, or break off, at and around the end of
    the buffer and of a 64-byte block are read exactly (ASan runs of these tests check the reads)."""
    for n in range(50, 80):
        name = "a" * n
        t = table([name])
        for cut in range(1, 4):   # no closing bracket, no closing quote, not even all the name
            assert t.find(json.dumps([name]).encode()[:-cut], 0) is None
        for pad in range(0, 3):
            body = b" " * pad + json.dumps([name]).encode()
            assert t.find(body, 0) == (bytes(4), len(body))


def test_find_never_takes_an_escape_for_the_name_it_spells():
    """A table name whose raw characters are another name's JSON escape: the request names the
    other one, so find() must not match it (it declines every escape)."""
    t = table(["a\\\\b", "\\u0041", "q\\\"r"])   # a\\b, \u0041, q\"r
    assert t.find(json.dumps(["a\\b"]).encode(), 0) is None      # the request's name is a\b
    assert t.find(b'["\\u0041"]', 0) is None                      # the request's name is A
    assert t.find(json.dumps(['q"r']).encode(), 0) is None


def test_find_edges():
    t = table(["a", "b", "a", "c d", ""])
    assert t.size() == 5
    assert t.find(b"[]", 0) == (b"", 2)
    assert list(memoryview(t.find(b' [ "a" , "b" ] ', 0)[0]).cast("I")) == [0, 1]   # the first "a"
    assert t.find(b'["c d"]', 0) is None and t.find(b'[""]', 0) is None   # never in the table
    assert t.find(b'["a","a"]', 0) is None   # named twice
    assert t.find(b'["a"]', -1) is None and t.find(b'["a"]', 99) is None
    assert t.find(b'["a"]', 5) is None
    for _ in range(3):   # repeated calls forget the earlier ones' names
        assert t.find(b'["b","a"]', 0) is not None
    empty = table([])
    assert empty.find(b"[]", 0) == (b"", 2) and empty.find(b'["a"]', 0) is None
    with pytest.raises(TypeError):
        table(["a", 1])
    with pytest.raises(TypeError):
        table(None)


def records_of(entries: list[bytes], sections: list[int], codes: list[int] | None = None) -> tuple[bytes, bytes]:
    """join_sections' records (start, length, code, section per node) and entries buffer (then the
    PAD bytes the writer may read past an entry), as fragments builds them."""
    codes = codes if codes is not None else [0] * len(entries)
    return fragments._entry_records(entries, np.array(sections, dtype=np.uint8), np.array(codes, dtype=np.uint32))


def test_writers_write_what_wire_encodes():
    t = table(["n-1", "n-2", "n-3"])
    positions = t.find(b'["n-3","n-1","n-2"]', 0)[0]
    entries = [wire.name_entry("n-1"), wire.reason_entry("n-2", 'odd "reason"'),
               wire.reason_entry("n-3", "node(s) lack TEE tdx")]
    reply, counts = t.join_sections(positions, *records_of(entries, [0, 1, 2], [2, 0, 2]), wire.FILTER_PIECES,
                                    fragments.FILTER_ORDER, 3)
    assert counts == [1, 0, 2]
    assert json.loads(reply) == {"FailedNodes": {"n-2": 'odd "reason"'},
                                 "FailedAndUnresolvableNodes": {"n-3": "node(s) lack TEE tdx"},
                                 "Error": "", "NodeNames": ["n-1"], "Nodes": None}
    assert reply == wire.names_filter_reply(entries[0], entries[1], entries[2])
    long = [wire.reason_entry("n-1", "x" * 300), wire.name_entry("n-2"), wire.name_entry("n-3")]   # past 64 bytes
    assert t.join_sections(positions, *records_of(long, [1, 0, 0]), wire.FILTER_PIECES, fragments.FILTER_ORDER,
                           1) == (wire.names_filter_reply(b'"n-3","n-2"', long[0], b""), [3])
    entries, records = t.score_entries(bytes([10, 0, 255]))
    assert entries[-fragments._PAD:] == bytes(fragments._PAD)
    assert t.join_sections(positions, records, entries, wire.PRIORITY_PIECES, b"\0", 1) == (
        wire.encode([{"Host": "n-3", "Score": 255}, {"Host": "n-1", "Score": 10}, {"Host": "n-2", "Score": 0}]), [3])
    assert t.join_sections(b"", records, entries, wire.PRIORITY_PIECES, b"\0", 1) == (b"[]", [0])
    assert t.count(positions, _u32([2, 0, 2]), 3) == [1, 0, 2]


def test_writers_check_their_arguments():
    t = table(["n-1", "n-2"])
    two = [b'"n-1"', b'"n-2"']
    records, blob = records_of(two, [0, 0])
    ok = dict(positions=_u32([1, 0]), records=records, entries=blob, pieces=(b"{", b"}"), order=bytes([0]), n_codes=1)

    def call(**change):
        a = {**ok, **change}
        reply, counts = t.join_sections(a["positions"], a["records"], a["entries"], a["pieces"], a["order"],
                                        a["n_codes"])
        return reply

    assert call() == b'{"n-2","n-1"}'
    assert call(order=bytes([1])) == b"{}"
    # three sections (as many as an ExtenderFilterResult has), one node in each of 0 and 1
    assert call(records=records_of(two, [0, 1])[0], order=bytes([1, 0, 2]), pieces=(b"<",) + (b"|",) * 3) == \
        b'<"n-2"|"n-1"||'
    assert call(records=records_of(two, [0, 1])[0]) == b'{"n-1"}'   # one section, not every node's
    # 300 labels: counted without stripes
    assert t.join_sections(_u32([1, 0]), records_of(two, [0, 0], [299, 7])[0], blob, (b"", b""), bytes([0]),
                           300)[1] == [int(c in (7, 299)) for c in range(300)]
    # the one-section run gives up at the second position: its count so far is not counted twice
    assert t.join_sections(_u32([0, 1]), records_of(two, [0, 1], [1, 0])[0], blob, (b"", b""), bytes([0]),
                           2) == (b'"n-1"', [1, 1])
    # every position is counted, in a section of `order` or not, striped or not
    for n_codes in (3, 300):
        assert t.join_sections(_u32([0, 1]), records_of(two, [1, 0], [2, 2])[0], blob, (b"", b""), bytes([0]),
                               n_codes) == (b'"n-2"', [2 * (c == 2) for c in range(n_codes)])
    # a section past 255 is in no section of `order`: counted, not written
    odd = np.frombuffer(records, dtype=np.uint32).reshape(2, 4).copy()
    odd[0, 3] = 256
    assert call(records=odd.tobytes()) == b'{"n-2"}'
    past = odd.copy()
    past[1, 0] = len(blob)   # starts past the entries
    for change, error in [({"positions": _u32([2])}, ValueError), ({"positions": b"\0\0\0"}, ValueError),
                          ({"records": records[:-4]}, ValueError),           # not one per name
                          ({"records": past.tobytes()}, ValueError),         # an entry past the entries
                          ({"entries": blob[:-1]}, ValueError),              # into the padding
                          ({"pieces": (b"{",)}, ValueError), ({"pieces": ("{", b"}")}, TypeError),
                          ({"order": bytes([0, 0]), "pieces": (b"", b"", b"")}, ValueError),
                          ({"order": bytes(range(4)), "pieces": (b"",) * 5}, ValueError),   # more than 3 sections
                          ({"n_codes": 0}, ValueError),                      # a code not below n_codes
                          ({"n_codes": -1}, ValueError)]:
        with pytest.raises(error):
            call(**change)
    with pytest.raises(ValueError):
        t.score_entries(bytes(3))
    with pytest.raises(ValueError):
        t.count(_u32([0]), _u32([5, 0]), 3)


def test_both_byte_classifiers_agree():
    """find() tells a name's bytes from its end 64 bytes at a time: with SSE2 on x86-64, with a
    portable loop elsewhere. Both must call every byte value the same as `plain`."""
    stops = fragments._names._stops
    every = bytes(range(256))
    for at in range(0, 256, 64):
        block = every[at:at + 64]
        want = sum(1 << k for k, c in enumerate(block) if not plain(chr(c)))
        assert stops(block, False) == stops(block, True) == want
    rng = np.random.default_rng(5)
    for block in rng.integers(0, 256, size=(2000, 64), dtype=np.uint8):
        assert stops(block.tobytes(), False) == stops(block.tobytes(), True)
    with pytest.raises(ValueError):
        stops(bytes(63), False)


def _u32(values: list[int]) -> bytes:
    return np.array(values, dtype=np.uint32).tobytes()


POD = recorded_pods()["managed_tdx"]


@pytest.mark.parametrize("body, names_at", [
    (b'{"Pod":%s,"Nodes":null,"NodeNames":["a"]}', True),                 # as kube-scheduler sends it
    (b'{"Pod": %s, "Nodes": null, "NodeNames": ["a"]}', True),            # as Python's json writes it
    (b'{"NodeNames":["a"],"Pod":%s}', False),                             # not last: the reader fails at the end
    (b'{"Pod":%s,"nodenames":["a"]}', None),                              # other spellings: the general path
    (b'{"Pod":%s,"NodeNames":null,"Nodes":{"items":[]}}', None),
    (b'{"Pod":%s,"Nodes":{"items":[]},"NodeNames":["a"]}', None),         # both: the general path says so
    (b'{"Pod":%s,"nodeNames":["b"],"NodeNames":["a"]}', None),            # two spellings
    (b'{"Pod":[],"NodeNames":["a"]}', None),                              # a bad pod: the general path says why
    (b'{"Pod":%s "NodeNames":["a"]}', None),                              # not JSON
    (b'["NodeNames":["a"]]', None),
])
def test_names_head(body, names_at):
    body = body.replace(b"%s", json.dumps(POD).encode()) if b"%s" in body else body
    head = wire.names_head(body)
    if names_at is None:
        assert head is None
        return
    if names_at is False:   # a head, but the array is not the body's end
        assert head is None or not _reads_to_end(body, head)
        return
    assert head.pod == POD and body[head.names_at:].lstrip().startswith(b'["a"]')
    assert _reads_to_end(body, head)


def test_names_head_finds_the_member_when_the_pod_holds_the_key_too():
    pod = {**POD, "metadata": {**POD["metadata"], "annotations": {"NodeNames": "x", "y": '"NodeNames":["z"]'}}}
    body = json.dumps({"Pod": pod, "Nodes": None, "NodeNames": ["a"]}, separators=(",", ":")).encode()
    head = wire.names_head(body)
    assert head is not None and head.pod == pod and _reads_to_end(body, head)
    nested = json.dumps({"Pod": {**pod, "spec": {"NodeNames": ["q"]}}, "Nodes": None, "NodeNames": None}).encode()
    assert wire.names_head(nested) is None


def _reads_to_end(body: bytes, head: wire.NamesHead) -> bool:
    found = table(["a"]).find(body, head.names_at)
    return found is not None and wire.names_tail_ok(body, found[1])
