"""What a build writes as it goes: the full log in a file, and phases and details (what uv is
downloading or installing) for a progress display."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, TextIO

from kiln.private import open_private, private_folder


class Reporter(Protocol):
    def phase(self, name: str) -> None: ...

    def detail(self, text: str) -> None:
        """What the current phase is doing now ("downloading numpy (15.6MiB)"): shown on a
        terminal only, and replaced by the next detail or phase."""

    def message(self, text: str) -> None: ...


class SilentReporter:
    def phase(self, name: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass


class NullLog:
    """A log for steps that write nothing worth keeping (finding a build's target)."""

    def phase(self, name: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def write(self, text: str) -> None:
        pass


class BuildLog:
    """The full log of one build, in a file, with phases reported as they start. The file is
    created by the first write, so a warm reuse (which writes nothing) touches no disk."""

    def __init__(self, path: Path, reporter: Reporter) -> None:
        self.path = path
        self.reporter = reporter
        self._file: TextIO | None = None

    @property
    def opened(self) -> bool:
        return self._file is not None

    def phase(self, name: str) -> None:
        self.write(f"==> {name}\n")
        self.reporter.phase(name)

    def detail(self, text: str) -> None:
        """Only for the display: the tool output it sums up is already in the file."""
        self.reporter.detail(text)

    def write(self, text: str) -> None:
        if self._file is None:
            private_folder(self.path.parent)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            self._file = os.fdopen(open_private(self.path, flags), "a", encoding="utf-8")
        self._file.write(text)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
