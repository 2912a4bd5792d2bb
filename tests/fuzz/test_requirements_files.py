"""requirements.txt with its includes, fuzzed: a top file and the files it names with ``-r`` and
``-c`` (cycles, missing files, paths leaving the folder, continuations, options, hashes, any
text). Loading parses or raises Kiln's own error (exit 2, one line), nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.formats import requirements
from kilntesting.fuzz import folder, mutated, parses_or_refuses, text_near_syntax, write

FUZZ = settings.get_profile("kiln-fuzz")
FILES = ["requirements.txt", "base.txt", "sub/more.txt", "constraints.txt"]
HASH = "--hash=sha256:" + "a" * 64
LINES = [
    "numpy==2.4.6",
    "six>=1.16; python_version < '3.12'",
    f"requests==2.31.0 {HASH}",
    "requests==2.31.0 \\",
    f"    {HASH}",
    "pkg[extra1,extra2]~=1.0",
    "demo @ https://files.example/demo-1.0-py3-none-any.whl",
    "./wheels/demo-1.0-py3-none-any.whl",
    "-r base.txt",
    "-r sub/more.txt",
    "--requirement=requirements.txt",
    "-r ../more.txt",
    "-r ../../outside.txt",
    "-r /etc/passwd",
    "-r missing.txt",
    "-c constraints.txt",
    "--constraint sub/../constraints.txt",
    "-i https://pypi.example/simple",
    "--index-url http://127.0.0.1:1/simple",
    "--extra-index-url https://u:${TOKEN}@pypi.example/simple",
    "--extra-index-url https://u:plain-secret-value@pypi.example/simple",
    "-f https://wheels.example/links/",
    "--find-links ./local",
    "--pre",
    "--trusted-host pypi.example",
    "-e .",
    "--no-index",
    "--hash=sha256:00",
    "# a comment \\",
    "name # trailing comment",
    "\\",
    "",
    "git+https://github.com/x/y.git@main#egg=y",
    "file:///tmp/x.whl",
]
SEED = "numpy==2.4.6\n-r base.txt\n-c constraints.txt\n-i https://pypi.example/simple\n"
line = st.sampled_from(LINES) | text_near_syntax.map(lambda s: s[:60])
file_text = st.lists(line, max_size=8).map("\n".join) | mutated([SEED, "\n".join(LINES)])
content = file_text | st.binary(max_size=100)


@FUZZ
@given(st.dictionaries(st.sampled_from(FILES), content, min_size=1))
def test_requirements_with_includes(files: dict[str, str | bytes]) -> None:
    with folder() as root:
        top = root / "project"
        (top / "wheels").mkdir(parents=True)
        (top / "wheels" / "demo-1.0-py3-none-any.whl").write_bytes(b"PK")
        write(root / "more.txt", "six\n")  # outside the top folder: includes may not reach it
        for name, text in files.items():
            write(top / name, text)
        if "requirements.txt" not in files:
            write(top / "requirements.txt", "-r base.txt\n")
        parses_or_refuses(lambda: requirements.load(top / "requirements.txt"))
