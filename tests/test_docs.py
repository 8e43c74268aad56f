"""The README and the pages of docs/ as their readers use them: every link
leads somewhere, and every command and Python block runs and does what its
text says.

How a page's blocks run (CONTRIBUTING.md says the same for writers):
- ```bash, ```sh and ```console blocks are commands, run by bash with
  `set -e -o pipefail`; in a console block the `$ ` lines are the commands and
  the other lines their output. A block that shows a failing command writes
  it as `CMD || echo "exit status $?"`.
- ```python blocks run in order in one Python process per page, as one
  program (later blocks see the names earlier ones defined).
- A ```text block right after a command or Python block (blank lines between
  at most) shows what that block prints. Each of its lines must appear in the
  output, whole and in that order; other lines may come between (`...` marks
  where a page leaves some out). A number with a decimal point stands for any
  number (losses, timings), and a run of spaces for any run (columns); the
  rest must match, whole numbers included.
- `<!-- not run: REASON -->` on the line before a block: it is not run. Each
  such block is listed in NOT_RUN below, with its reason.
- Every fence names its language (```text for output, ```csv and the like for
  other displays, which are not run).

What makes the pages' commands run here, on any clone and offline:
- Each page runs in a fresh directory holding synthetic MNIST files in
  `MNIST_data/` (tests/mnist_files.py; 100 test images, so that evaluating
  at k = 5,000 takes seconds); HOME is that directory, so
  `~/.keras/datasets` starts empty.
- `keras-vae`, `python` and `python3` are this checkout's.
- Downloads reach a stand-in mirror on 127.0.0.1 serving those synthetic
  files, whose hashes stand in for the published ones (as
  tests/data/test_download.py tests the download).
- Rewriting rule, the only one: `--iters N` above MAX_ITERS runs MAX_ITERS
  steps, so that a page can show the real length of a long run.
"""

import functools
import gzip
import hashlib
import http.server
import importlib.util
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.mnist_files import FILES, write_synthetic_mnist

RUN_PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
LINKED_PAGES = [*RUN_PAGES, "CONTRIBUTING.md", "benchmarks/RESULTS.md"]

COMMANDS = {"bash", "sh", "console"}
RUNNABLE = COMMANDS | {"python"}
OUTPUT = "text"
SHOWN = {"csv", "json", "ini", "toml"}  # displays, not run

MAX_ITERS = 5000
README_MAX_LINES = 250

# Every block a page does not run, keyed by (page, the block's first line),
# with the reason its marker gives. Keep it short: a block here is a block
# nobody checks.
NOT_RUN = {
    ("README.md", "python3 -m venv .venv && . .venv/bin/activate && pip install ."):
        "installs from the package registry",
    ("docs/distributed.md", "# on host1 (worker 0, the chief)"):
        "needs two machines",
    ("docs/evaluation.md", "tensorboard --logdir logs/"):
        "starts a server that runs until stopped",
    ("docs/export.md", "keras-vae export --model vae.keras --out models/vae/1"):
        "needs TF Serving's server, a Docker image these tests cannot fetch",
}

# Pages whose blocks need an extra's packages: their test skips, naming the
# extra, where it is not installed (.ci/run installs them).
EXTRAS = {"docs/export.md": {"litert": "ai_edge_litert", "onnx": "onnxruntime"}}

TIMEOUT = 600  # seconds, for one block


# Reading a page.

FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN_MARK = re.compile(r"^<!-- not run: (.+?) -->$")


class Block:
    def __init__(self, page, line, lang, lines, before):
        self.page, self.line, self.lang, self.lines = page, line, lang, lines
        mark = NOT_RUN_MARK.match(before.strip())
        self.not_run = mark.group(1) if mark else None
        self.output = None  # the ```text block that shows what it prints

    @property
    def code(self):
        return "\n".join(self.lines) + "\n"

    @property
    def first_line(self):
        return next((l.strip() for l in self.lines if l.strip()), "")

    def __repr__(self):
        return f"{self.page}:{self.line} ({self.lang})"


def read_blocks(page):
    """The page's fenced blocks, in order, each ```text block attached to the
    block it follows."""
    lines = (REPO / page).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        assert end is not None, f"{page}:{i + 1}: a fence that never closes"
        block = Block(page, i + 1, match.group(1), lines[i + 1:end], lines[i - 1] if i else "")
        gap = lines[blocks[-1].end:i] if blocks else ["not blank"]
        if block.lang == OUTPUT:
            assert blocks and blocks[-1].lang in RUNNABLE and not "".join(gap).strip(), (
                f"{block}: a ```text block shows the output of the command or Python block "
                "right before it (blank lines between at most)")
            blocks[-1].output = block
        block.end = end + 1
        blocks.append(block)
        i = end + 1
    return blocks


def prose(page):
    """The page's text outside fenced blocks and code spans."""
    text = re.sub(r"^```.*?^```", "", (REPO / page).read_text(), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page):
    """GitHub's anchors for the page's headings."""
    found, seen = set(), {}
    text = re.sub(r"^```.*?^```", "", (REPO / page).read_text(), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


# The quick checks: links, markers, the README's size.

def test_every_link_image_and_anchor_resolves():
    broken = []
    for page in LINKED_PAGES:
        path = REPO / page
        assert path.is_file(), f"{page} is missing"
        for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", prose(page)):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append(f"{page}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(
                    str(resolved.relative_to(REPO))):
                broken.append(f"{page}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_pages_are_reached_from_the_readme_and_name_no_project_paths():
    readme = prose("README.md")
    for page in LINKED_PAGES[1:]:
        assert f"]({page})" in readme or f"]({page}#" in readme, f"README.md links no {page}"
    for page in LINKED_PAGES:
        text = (REPO / page).read_text()
        assert "../shared" not in text and "/work/" not in text, page


def test_the_readme_is_short_and_keeps_the_whole_suite_command():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    assert 'pytest -m "slow or not slow"' in readme  # .ci/run runs it
    assert 'pytest -m "slow or not slow"' in (REPO / "CONTRIBUTING.md").read_text()


def test_every_block_is_run_or_listed_with_its_reason():
    unknown, marked = [], {}
    for page in RUN_PAGES:
        for block in read_blocks(page):
            if block.lang not in RUNNABLE | SHOWN | {OUTPUT}:
                unknown.append(f"{block}: name the block's language ({sorted(RUNNABLE | SHOWN)} "
                               "or text for output)")
            elif block.not_run:
                marked[(page, block.first_line)] = block.not_run
            elif block.lang in COMMANDS and re.search(r"pip install|https?://(?!127\.0\.0\.1)",
                                                      block.code):
                unknown.append(f"{block}: it reaches the internet: mark it "
                               "<!-- not run: REASON --> and list it in NOT_RUN")
    assert not unknown, "\n".join(unknown)
    assert marked == NOT_RUN, (
        "the blocks marked <!-- not run: ... --> differ from NOT_RUN:\n"
        + json.dumps({f"{p}: {l}": r for (p, l), r in marked.items()}, indent=1))


# Running a page.

def test_output_matching_follows_the_rules():
    output = "Iter: 1000\r\x1b[1mprogress\x1b[0m\nLoss: 141.7\n  moved\nSaved 16 samples to grid.png\n"
    assert matches(["Iter: 1000", "Loss: 150.3", "...", "Saved 16 samples to grid.png"], output)
    assert not matches(["Iter: 2000"], output)  # whole numbers must match
    assert not matches(["Saved 16 samples to grid.png", "Iter: 1000"], output)  # in order
    assert matches(["moved", "Saved  16   samples to grid.png"], output)  # spaces are spaces
    assert not matches(["move"], output)  # whole lines


NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def _line_pattern(expected):
    """A regular expression for an expected line: a number with a decimal
    point stands for any number, a run of spaces for any run."""
    pattern = []
    for i, part in enumerate(re.split(r"(\d+\.\d+| +)", expected)):
        if i % 2 == 0:
            pattern.append(re.escape(part))
        else:
            pattern.append(" +" if part[0] == " " else NUMBER)
    return "".join(pattern)


def matches(expected_lines, output):
    """Whether each expected line (but `...`) is a whole line of `output`, in
    order (both stripped, ANSI colours removed, carriage returns ending lines)."""
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)
    lines = [line.strip() for line in re.split(r"[\r\n]", output)]
    position = 0
    for expected in (line.strip() for line in expected_lines):
        if expected in ("", "..."):
            continue
        pattern = re.compile(_line_pattern(expected))
        position = next((i + 1 for i in range(position, len(lines))
                         if pattern.fullmatch(lines[i])), None)
        if position is None:
            return False
    return True


def console_parts(lines):
    """A console block's (commands, output lines): its `$ ` lines, each with
    the lines its trailing backslashes continue it on, and the rest."""
    commands, output, continued = [], [], False
    for line in lines:
        if line.startswith("$ ") or continued:
            commands.append(line if continued else line[2:])
            continued = line.endswith("\\")
        else:
            output.append(line)
    return commands, output


def command_script(block):
    """The block as bash runs it: a console block's commands, the iterations capped."""
    lines = console_parts(block.lines)[0] if block.lang == "console" else block.lines
    return re.sub(r"--iters[ =](\d+)",
                  lambda m: f"--iters {min(int(m.group(1)), MAX_ITERS)}", "\n".join(lines))


def expected_output(block):
    if block.lang == "console":
        return console_parts(block.lines)[1]
    return block.output.lines if block.output else []


SITECUSTOMIZE = '''\
"""For the docs tests only: keras_vae's downloads reach the stand-in mirror,
and its hashes stand in for the published ones."""
import importlib.machinery, json, os, sys

_MIRROR = json.loads(os.environ["KERAS_VAE_DOCS_MIRROR"])


def _stand_in(module):
    for name in ("MNIST_URL", "FASHION_MNIST_URL"):
        getattr(module, name)  # an AttributeError names a renamed one
        setattr(module, name, _MIRROR["url"])
    for name, table in list(vars(module).items()):  # SHA256, FASHION_MNIST_SHA256
        if isinstance(table, dict) and sorted(table) == sorted(_MIRROR["sha256"]):
            setattr(module, name, dict(_MIRROR["sha256"]))


class _Finder:
    def find_spec(self, name, path=None, target=None):
        if name != "keras_vae.data.download":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _stand_in(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """The synthetic files, served on 127.0.0.1: (their directory, {"url": the
    mirror's, "sha256": the SHA-256 of each file's contents, which the
    download checks})."""
    files = write_synthetic_mnist(tmp_path_factory.mktemp("mirror"), n_test=100)
    handler = functools.partial(Quiet, directory=str(files))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield files, {
        "url": f"http://127.0.0.1:{server.server_address[1]}/",
        "sha256": {name: hashlib.sha256(gzip.decompress((files / name).read_bytes())).hexdigest()
                   for name in FILES.values()},
    }
    server.shutdown()
    server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def page_env(home, mirror):
    """The environment of a page's blocks: this checkout's keras-vae and python,
    HOME in the page's directory, downloads from the mirror."""
    tools = home / ".docs-test"
    (tools / "bin").mkdir(parents=True)
    (tools / "sitecustomize.py").write_text(SITECUSTOMIZE)
    for name, module in (("keras-vae", "keras_vae_cli"), ("python", None), ("python3", None)):
        run = f'exec {shlex.quote(sys.executable)} {"-m " + module if module else ""} "$@"'
        script = tools / "bin" / name
        script.write_text(f"#!/bin/sh\n{run}\n")
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS_VAE", "TF_"))}
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(tools / "bin"), str(Path(sys.executable).parent),
                              env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(tools), str(REPO)]),
        KERAS_VAE_DOCS_MIRROR=json.dumps(mirror),
    )
    return env


class PythonSession:
    """One Python process for a page's Python blocks, run one at a time as
    one program, its output (stdout and stderr) read block by block."""

    MARK = "--- docs block done:"
    DRIVER = (
        "import sys, traceback\n"
        "namespace = {'__name__': '__main__'}\n"
        "for line in sys.stdin:\n"
        "    path, name, first = line.rstrip('\\n').split('\\t')\n"
        "    source = '\\n' * (int(first) - 1) + open(path).read()\n"
        "    try:\n"
        "        exec(compile(source, name, 'exec'), namespace)\n"
        "        status = 'ok'\n"
        "    except BaseException:\n"
        "        traceback.print_exc()\n"
        "        status = 'failed'\n"
        "    sys.stdout.flush(); sys.stderr.flush()\n"
        f"    print('\\n{MARK}', status, flush=True)\n"
    )

    def __init__(self, cwd, env):
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.DRIVER], cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.cwd = cwd

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, block):
        """(ok, output) of `block`."""
        path = self.cwd / ".docs-test" / f"block-{block.line}.py"
        path.write_text(block.code)
        self.process.stdin.write(f"{path}\t{REPO / block.page}\t{block.line + 1}\n")
        self.process.stdin.flush()
        output = []
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                return False, "".join(output) + "\n(the Python process ended)"
            if line.startswith(self.MARK):
                return line.split()[-1] == "ok", "".join(output)
            output.append(line)

    def close(self):
        self.process.stdin.close()  # the driver's loop ends
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a block still running: the test failed already
            self.process.kill()
            self.process.wait()


def run_commands(block, cwd, env):
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command_script(block)], cwd=cwd,
                         env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=TIMEOUT)
    return run.returncode == 0, run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_every_block_of_the_page_runs_and_prints_what_it_shows(page, tmp_path, mirror):
    for extra, module in EXTRAS.get(page, {}).items():
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{page} needs the {extra} extra: pip install -e '.[{extra}]'")
    files, digests = mirror
    shutil.copytree(files, tmp_path / "MNIST_data")  # the mirror's bytes: gzip keeps a time
    env = page_env(tmp_path, digests)
    python = None
    try:
        for block in read_blocks(page):
            if block.lang not in RUNNABLE or block.not_run:
                continue
            if block.lang == "python":
                python = python or PythonSession(tmp_path, env)
                ok, output = python.run(block)
            else:
                ok, output = run_commands(block, tmp_path, env)
            assert ok, f"{block} failed:\n{output[-4000:]}"
            expected = expected_output(block)
            assert matches(expected, output), (
                f"{block} does not print what the page shows:\n" + "\n".join(expected)
                + f"\n--- it printed:\n{output[-4000:]}")
    finally:
        if python:
            python.close()
