"""An immutable, picklable mapping for the core's values.

`types.MappingProxyType` would do, but cannot be pickled, and plans must cross process
boundaries (the scaler plans in a worker process so a long re-plan never stalls its answers).
"""

from __future__ import annotations

from collections.abc import Mapping


class FrozenMap(Mapping):
    __slots__ = ("_data",)

    def __init__(self, data=()):
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key) -> bool:
        return key in self._data

    def get(self, key, default=None):
        return self._data.get(key, default)

    def __setattr__(self, name, value):
        raise AttributeError("FrozenMap is immutable")

    def __reduce__(self):
        return (FrozenMap, (self._data,))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    __hash__ = None  # like dict: equal maps compare equal, but are not hashable


def freeze(mapping) -> FrozenMap:
    return mapping if isinstance(mapping, FrozenMap) else FrozenMap(mapping or {})
