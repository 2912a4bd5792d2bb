"""uv's own messages, read as they stream, turned into the progress display's detail: the
package being downloaded, and how many packages were resolved, prepared and installed.

uv prints these on stderr even with ``UV_NO_PROGRESS`` (0.13: "Resolved 2 packages in 67ms",
"Downloading numpy (15.6MiB)" for a large file, " Downloaded numpy", "Prepared 1 package in
834ms", "Installed 2 packages in 3ms", " + numpy==2.1.0"). Parsing is tolerant: a line it does
not know is only in the build log (the caller logs every line), never an error."""

from __future__ import annotations

import re

from kiln.builders.base import Log

_COUNTED = re.compile(r"^(Resolved|Prepared|Installed|Audited) (\d+) packages? in ")
_DOWNLOADING = re.compile(r"^Downloading (\S+)(?: \(([^)]*)\))?$")
_DOWNLOADED = re.compile(r"^Downloaded (\S+)$")
_ADDED = re.compile(r"^\+ (\S+?)==(\S+)$")


class UvFollower:
    """Called with each line of one uv command's stderr; passes a detail to ``log``."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.downloading: list[str] = []  # in the order uv started them
        self.downloaded = 0
        self.installing = 0  # from "Installed N packages", printed before the " + " lines
        self.added = 0

    def __call__(self, line: str) -> None:
        text = self.describe(line.strip())
        if text is not None:
            self.log.detail(text)

    def describe(self, line: str) -> str | None:
        if counted := _COUNTED.match(line):
            verb, number = counted.groups()
            if verb == "Installed":
                self.installing = int(number)
            return f"{verb.lower()} {number} package{'' if number == '1' else 's'}"
        if started := _DOWNLOADING.match(line):
            name, size = started.groups()
            self.downloading.append(f"{name} ({size})" if size else name)
            return self._downloads()
        if finished := _DOWNLOADED.match(line):
            self.downloading = [d for d in self.downloading if d.split(" ")[0] != finished[1]]
            self.downloaded += 1
            return self._downloads()
        if added := _ADDED.match(line):
            self.added += 1
            of = f" of {self.installing}" if self.installing >= self.added else ""
            return f"installed {added[1]} {added[2]} ({self.added}{of})"
        return None

    def _downloads(self) -> str:
        done = f"{self.downloaded} downloaded" if self.downloaded else ""
        if not self.downloading:
            return done
        now = f"downloading {', '.join(self.downloading)}"
        return f"{now}; {done}" if done else now
