from __future__ import annotations

from wattwise.scheduler.reply_cache import ReplyCache


def test_hits_only_for_the_same_key_and_the_same_names():
    cache = ReplyCache(max_entries=2)
    assert cache.get(("filter", 1), ("a", "b")) is None
    cache.put(("filter", 1), ("a", "b"), b"r1")
    assert cache.get(("filter", 1), ("a", "b")) == b"r1"
    assert cache.get(("filter", 1), ("b", "a")) is None       # other order: other request
    assert cache.get(("filter", 2), ("a", "b")) is None       # other plan view or node set
    cache.put(("filter", 2), ("a", "b"), b"r2")
    cache.put(("filter", 3), ("a", "b"), b"r3")                # evicts the least recently used
    assert cache.get(("filter", 1), ("a", "b")) is None
    assert cache.get(("filter", 3), ("a", "b")) == b"r3"
    assert (cache.hits, cache.misses) == (2, 4)
