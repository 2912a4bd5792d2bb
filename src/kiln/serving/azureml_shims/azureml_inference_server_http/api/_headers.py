"""A case-insensitive, ordered list of HTTP headers, with the methods of Werkzeug's
``Headers`` that scoring scripts use."""

from __future__ import annotations

from collections.abc import Iterator


class Headers:
    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self._pairs: list[tuple[str, str]] = list(pairs or [])

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self._pairs:
            if key.lower() == wanted:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self._pairs if key.lower() == wanted]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: object) -> None:
        self._pairs.append((name, str(value)))

    add_header = add

    def remove(self, name: str) -> None:
        wanted = name.lower()
        self._pairs = [(k, v) for k, v in self._pairs if k.lower() != wanted]

    __delitem__ = remove

    def set(self, name: str, value: object) -> None:
        """Replace every value of ``name`` by ``value`` (kept where the first one was)."""
        wanted = name.lower()
        for index, (key, _) in enumerate(self._pairs):
            if key.lower() == wanted:
                self._pairs[index] = (key, str(value))
                self._pairs[index + 1 :] = [
                    (k, v) for k, v in self._pairs[index + 1 :] if k.lower() != wanted
                ]
                return
        self.add(name, value)

    __setitem__ = set

    def keys(self) -> list[str]:
        return [key for key, _ in self._pairs]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._pairs))

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"
