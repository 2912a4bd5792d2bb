"""Build progress on stderr: one line that updates in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, *, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self._shown = False

    def phase(self, name: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        if self.tty:
            sys.stderr.write(f"\r\033[Kkiln: {self.label}: {name} ({elapsed:.1f} s)")
            self._shown = True
        else:
            sys.stderr.write(f"kiln: {self.label}: {name}\n")
        sys.stderr.flush()

    def message(self, text: str) -> None:
        self.done()
        sys.stderr.write(f"kiln: {text}\n")

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            self._shown = False
