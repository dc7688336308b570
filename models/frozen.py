"""An immutable, picklable mapping for the core's values.

`types.MappingProxyType` would do, but cannot be pickled, and plans must cross process
boundaries (the scaler plans in a worker process so a long re-plan never stalls its answers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    __slots__ = ("_data",)
    _data: dict[K, V]

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key, default=None):
        return self._data.get(key, default)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenMap is immutable")

    def __reduce__(self):
        return (FrozenMap, (self._data,))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    __hash__ = None  # type: ignore[assignment]  # like dict: equal maps compare equal, but are not hashable


def freeze(mapping: Mapping[K, V] | None) -> FrozenMap[K, V]:
    return mapping if isinstance(mapping, FrozenMap) else FrozenMap(mapping or {})
