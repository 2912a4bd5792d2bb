"""Build progress on stderr. On a terminal: one live line (rich) with the phase, an elapsed time
that ticks while the phase runs and what the phase is doing now (uv's download or install).
Otherwise (CI, pipes, ``--json``): one plain line per phase, no control characters."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.live import Live
    from rich.text import Text

REFRESHES_PER_SECOND = 4


class Progress:
    def __init__(self, label: str, *, quiet: bool = False, plain: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        # A dumb terminal cannot redraw a line: it gets the plain lines.
        self.live = not plain and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.started = time.monotonic()
        self.current = ""  # the phase
        self.now = ""  # its latest detail
        self._display: Live | None = None  # started by the first phase: a reuse shows nothing

    def phase(self, name: str) -> None:
        if self.quiet:
            return
        if not self.live:
            sys.stderr.write(f"kiln: {self.label}: {name}\n")
            sys.stderr.flush()
            return
        self.current, self.now = name, ""
        self._show()

    def detail(self, text: str) -> None:
        if self.quiet or not self.live:
            return  # plain output stays one line per phase
        self.now = text
        self._show()

    def message(self, text: str) -> None:
        if self._display is not None:  # printed above the live line, which stays
            self._display.console.print(f"kiln: {text}", markup=False, highlight=False)
        else:
            sys.stderr.write(f"kiln: {text}\n")
            sys.stderr.flush()

    def done(self) -> None:
        if self._display is not None:
            self._display.stop()  # transient: the line is cleared
            self._display = None

    def line(self) -> Text:
        """The live line as it is now: rich renders it again at every refresh, so the elapsed
        time moves while a phase runs."""
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        text = Text(f"kiln: {self.label}: {self.current} ({elapsed:.1f} s)", no_wrap=True)
        if self.now:
            text.append(f"  {self.now}", style="dim")
        text.overflow = "ellipsis"
        return text

    def _show(self) -> None:
        if self._display is None:
            from rich.console import Console
            from rich.live import Live

            self._display = Live(
                _Rendered(self),
                console=Console(stderr=True),
                refresh_per_second=REFRESHES_PER_SECOND,
                transient=True,
                redirect_stdout=False,  # the command's own output is not the display's
                redirect_stderr=False,
            )
            self._display.start()
        self._display.refresh()  # every phase and detail is drawn at least once


class _Rendered:
    """What rich's Live draws: asks for the line anew at each refresh."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich__(self) -> Text:
        return self.progress.line()
