"""``kiln cache gc`` (removing every build it may) while ``kiln env exec`` runs, at random
moments: before the exec holds its environment, while it starts the command, while the
command runs. The exec always completes: a held environment is never removed under it, and
one removed just before it was held is built again."""

from __future__ import annotations

import random
import time
from pathlib import Path

from kilntesting.crash import new_site

COMMAND = "import time, sys; time.sleep(1.0); print('done', sys.prefix)"


def test_gc_while_exec_runs_never_breaks_the_exec(
    tmp_path: Path, rng: random.Random, rounds: int
) -> None:
    site = new_site(tmp_path)
    (site.root / "py.yaml").write_text('name: py\npython:\n  version: "3.11"\n')
    site.kiln("env", "register", "-f", "py.yaml")
    site.kiln("env", "build", "py")
    for _ in range(rounds):
        execs = [site.start("env", "exec", "py", "--", "python", "-c", COMMAND) for _ in range(2)]
        time.sleep(rng.uniform(0.0, 0.8))
        gc = site.kiln("cache", "gc", "--max-size", "0", check=False)
        assert gc.returncode == 0, gc.stderr
        for proc in execs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
            assert out.startswith("done "), out
    site.kiln("cache", "gc", "--max-size", "0")
    assert not list((site.cache / "envs").glob("*/.kiln-ready")), "gc keeps an unheld build"
