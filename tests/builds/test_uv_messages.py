"""uv's messages (as uv 0.13 prints them: copied from real runs) become the progress display's
details; a line the parser does not know gives none and raises nothing."""

from __future__ import annotations

from pathlib import Path

from kiln.builders.uvprogress import UvFollower
from kiln.buildlog import BuildLog, NullLog
from kilntesting.builds import Recorder

SYNC = """Using Python 3.11.7 environment at: v
Resolved 3 packages in 118ms
Downloading numpy (15.6MiB)
Downloading torch (702.4MiB)
 Downloaded numpy
 Downloaded torch
Prepared 3 packages in 834ms
warning: something uv may say one day
Installed 3 packages in 70ms
 + numpy==2.1.0
 + six==1.16.0
 + torch==2.4.0
"""


def test_uv_lines_become_details_and_unknown_ones_are_skipped(tmp_path: Path) -> None:
    shown = Recorder()
    follow = UvFollower(BuildLog(tmp_path / "build.log", shown))
    for line in SYNC.splitlines():
        follow(line)
    follow("")
    follow("Downloading")  # a truncated line: not a download

    assert shown.details == [
        "resolved 3 packages",
        "downloading numpy (15.6MiB)",
        "downloading numpy (15.6MiB), torch (702.4MiB)",
        "downloading torch (702.4MiB); 1 downloaded",
        "2 downloaded",
        "prepared 3 packages",
        "installed 3 packages",
        "installed numpy 2.1.0 (1 of 3)",
        "installed six 1.16.0 (2 of 3)",
        "installed torch 2.4.0 (3 of 3)",
    ]
    assert not (tmp_path / "build.log").exists()  # details are for the display only


def test_a_single_package_is_said_in_the_singular() -> None:
    follow = UvFollower(NullLog())
    assert follow.describe("Resolved 1 package in 6ms") == "resolved 1 package"
    assert follow.describe("Audited 1 package in 2ms") == "audited 1 package"
