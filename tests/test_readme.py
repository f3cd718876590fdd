"""README.md's shell blocks, run as written, so the README cannot drift from the code.

Every shell block (```sh, and ```bash, ```shell, ```console should one appear) carries a marker on
the line right before its fence:

* ``<!-- readme-test: run GROUP -->``: run it.  The blocks of one GROUP run in README order in one
  bash session (variables and functions carry over), under ``set -euo pipefail``, with a timeout;
  each GROUP is one test here.
* ``<!-- readme-test: skip: REASON -->``: not run, and REASON says why in words a reader can check
  (the block needs the Pulumi CLI, an account, minutes of benchmarking...).

Inside a run block a line starting with ``#  `` (a hash and two spaces) promises output: it must
match a line the block prints to stdout, after the line the previous promise matched.  In a
promise ``...`` stands for any text, ``<name>`` for one word without spaces (the same ``<name>``
twice in a line must be the same word) and a run of spaces for any run of spaces.  A block fails
when a command fails, when a promise is not kept, or when it runs past the timeout.

The blocks run in a scratch directory holding copies of ``WORKSPACE_FILES`` and ``.venv`` (a link to
this interpreter's environment), so a block that writes cannot touch the working tree; ``TMPDIR``
points into pytest's temporary directory.  The emulator walkthrough starts its emulator on
``--port 0``: a free loopback port, never a fixed one.  Proxy variables are dropped so ``curl``
talks to loopback directly.  Whatever a block leaves running (its process group) is ended.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from snapshot_resources import engine

REPO: Final = Path(__file__).resolve().parent.parent
README: Final = REPO / "README.md"
# What the run blocks read from the repository; copied, so that nothing they do writes into it.
WORKSPACE_FILES: Final = ("Pulumi.example.yaml", "Pulumi.yaml")
SHELL_LANGUAGES: Final = frozenset({"sh", "bash", "shell", "console", "zsh"})
GROUP_TIMEOUT: Final = 120.0  # seconds for one group; the walkthrough takes about 5
MIN_REASON: Final = 10  # characters: a skip reason is a sentence, not "n/a"
END_WAIT: Final = 5.0  # seconds a left-over process gets after SIGTERM before SIGKILL

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*readme-test:(.*?)-->\s*$")
_PROMISE = re.compile(r"^#  (\S.*)$")
_BLOCK_LINE = "@@readme-test block {}@@"
_BLOCK_SEEN = re.compile(r"^@@readme-test block (\d+)@@$")
_DONE = "@@readme-test done@@"
_FAILED = re.compile(r"@@readme-test failed: line (\d+), exit (\d+)@@")
_PROXY_VARIABLES: Final = frozenset({"http_proxy", "https_proxy", "all_proxy", "ftp_proxy"})


@dataclass(frozen=True)
class Marker:
    kind: str  # "run" or "skip"
    value: str  # the group, or the reason


@dataclass
class ShellBlock:
    fence_line: int  # 1-based line of the opening fence in the README
    language: str
    marker_text: str | None  # the marker line's text, if the line before the fence is one
    lines: list[str] = field(default_factory=list)

    @property
    def marker(self) -> Marker | None:
        return None if self.marker_text is None else parse_marker(self.marker_text)

    def readme_line(self, index: int) -> int:
        """README line number of ``self.lines[index]``."""
        return self.fence_line + 1 + index

    def promises(self) -> list[tuple[int, str]]:
        found = []
        for index, line in enumerate(self.lines):
            match = _PROMISE.match(line)
            if match:
                found.append((self.readme_line(index), match.group(1).rstrip()))
        return found


class ReadmeBlockError(AssertionError):
    """A run block failed: a command, a promised output, or the timeout."""


def parse_marker(line: str) -> Marker | None:
    """The marker on ``line``, or None when it is not a well-formed one."""
    match = _MARKER.match(line.strip())
    if match is None:
        return None
    body = match.group(1).strip()
    run = re.fullmatch(r"run\s+([A-Za-z0-9][\w-]*)", body)
    if run:
        return Marker("run", run.group(1))
    skip = re.fullmatch(r"skip:(.*)", body, flags=re.DOTALL)
    if skip and len(skip.group(1).strip()) >= MIN_REASON:
        return Marker("skip", skip.group(1).strip())
    return None


def parse_blocks(text: str) -> tuple[list[ShellBlock], list[int]]:
    """The shell blocks of a Markdown text, and the lines of markers that mark no shell block."""
    lines = text.split("\n")
    blocks: list[ShellBlock] = []
    marker_lines = {number for number, line in enumerate(lines, 1)
                    if line.strip().startswith("<!-- readme-test")}
    used: set[int] = set()
    open_fence: str | None = None
    current: ShellBlock | None = None
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line)
        if open_fence is not None:
            if fence and fence.group(1) == open_fence and not fence.group(2):
                open_fence, current = None, None
            elif current is not None:
                current.lines.append(line)
            continue
        if fence is None:
            continue
        open_fence = fence.group(1)
        language = fence.group(2).lower()
        if language in SHELL_LANGUAGES:
            previous = lines[number - 2] if number >= 2 else ""
            is_marker = (number - 1) in marker_lines
            if is_marker:
                used.add(number - 1)
            current = ShellBlock(number, language, previous if is_marker else None)
            blocks.append(current)
    return blocks, sorted(marker_lines - used)


def promise_pattern(promise: str) -> re.Pattern[str]:
    """The regular expression a promised output line stands for (see the module docstring)."""
    parts: list[str] = []
    named: set[str] = set()
    for token in re.split(r"(\.\.\.|<[A-Za-z_]\w*>|\s+)", promise):
        if token == "...":
            parts.append(".*")
        elif token.startswith("<") and token.endswith(">") and len(token) > 2:
            name = token[1:-1]
            parts.append(f"(?P={name})" if name in named else fr"(?P<{name}>\S+)")
            named.add(name)
        elif token and token.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


def run_groups(text: str) -> dict[str, list[ShellBlock]]:
    groups: dict[str, list[ShellBlock]] = {}
    for block in parse_blocks(text)[0]:
        marker = block.marker
        if marker is not None and marker.kind == "run":
            groups.setdefault(marker.value, []).append(block)
    return groups


# --------------------------------------------------------------------------------------------------
# Running


def build_script(blocks: Sequence[ShellBlock]) -> tuple[str, dict[int, tuple[int, str]]]:
    """One bash script for the blocks, and its line numbers mapped to README lines and text."""
    script = [
        "set -euo pipefail",
        """trap 'echo "@@readme-test failed: line $LINENO, exit $?@@" >&2' ERR""",
    ]
    where: dict[int, tuple[int, str]] = {}
    for index, block in enumerate(blocks):
        script.append(f"printf '\\n%s\\n' '{_BLOCK_LINE.format(index)}'")
        where[len(script)] = (block.fence_line, f"```{block.language}")
        for offset, line in enumerate(block.lines):
            script.append(line)
            where[len(script)] = (block.readme_line(offset), line)
    script.append(f"printf '\\n%s\\n' '{_DONE}'")
    return "\n".join(script) + "\n", where


def block_env(tmp: Path, cli: engine.PulumiCli | None = None) -> dict[str, str]:
    """The blocks' environment: no proxies, ``TMPDIR`` and ``HOME`` in the scratch directory (so
    a ``file://$HOME/...`` backend and ``~/.pulumi-passphrase`` stay there), and with ``cli`` the
    Pulumi CLI first on ``PATH`` with its ``PULUMI_HOME`` there too, offline (no update check,
    no plugin download)."""
    env = {name: value for name, value in os.environ.items()
           if name.lower() not in _PROXY_VARIABLES and name not in {"BASH_ENV", "ENV", "CDPATH"}
           and not name.startswith("PULUMI_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["TMPDIR"] = str(tmp)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    if cli is not None:
        env["PATH"] = os.pathsep.join([str(cli.bin_dir), env.get("PATH", "")])
        # The CLI finds its own home from the passwd entry, not $HOME: say it.
        env["PULUMI_HOME"] = str(home / ".pulumi")
        env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    return env


def uses_pulumi(blocks: Sequence[ShellBlock]) -> bool:
    """Whether a group runs the ``pulumi`` CLI (then it needs one, as the engine tests do)."""
    return any(re.match(r"\s*pulumi\s", line) for block in blocks for line in block.lines)


def make_workspace(root: Path) -> Path:
    """A scratch directory with copies of what the run blocks read, and ``.venv``."""
    work = root / "work"
    work.mkdir()
    for name in WORKSPACE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        else:
            shutil.copy2(source, work / name)
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return work


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] not in {"Z", "X"} and int(fields[2]) == pgid:
            return True
    return False


def end_group(pgid: int) -> None:
    """End whatever the blocks left running: SIGTERM, then SIGKILL after ``END_WAIT``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + END_WAIT
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.05)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().split("\n")[-lines:])


def check_promises(blocks: Sequence[ShellBlock], stdout: str) -> None:
    segments: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.split("\n"):
        seen = _BLOCK_SEEN.match(line)
        if seen:
            current = segments.setdefault(int(seen.group(1)), [])
        elif line == _DONE:
            current = None
        elif current is not None:
            current.append(line.rstrip())
    for index, block in enumerate(blocks):
        printed = segments.get(index, [])
        position = 0
        for readme_line, promise in block.promises():
            pattern = promise_pattern(promise)
            for offset, line in enumerate(printed[position:]):
                if pattern.fullmatch(line):
                    position += offset + 1
                    break
            else:
                shown = "\n".join(printed[position:]) or "(nothing)"
                raise ReadmeBlockError(
                    f"README.md:{readme_line}: the block at line {block.fence_line} promises "
                    f"{promise!r}, but after the previous promise it printed:\n{_tail(shown)}")


def run_blocks(blocks: Sequence[ShellBlock], *, cwd: Path, tmp: Path,
               timeout: float = GROUP_TIMEOUT, cli: engine.PulumiCli | None = None) -> str:
    """Run the blocks in one bash session; return stdout, or raise ``ReadmeBlockError``."""
    script_text, where = build_script(blocks)
    script = tmp / "readme-blocks.sh"
    script.write_text(script_text, encoding="utf-8")
    process = subprocess.Popen(
        ["bash", str(script)], cwd=cwd, env=block_env(tmp, cli), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        end_group(process.pid)
        stdout, stderr = process.communicate()
    finally:
        end_group(process.pid)
    report = f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
    if timed_out:
        raise ReadmeBlockError(f"the README blocks timed out after {timeout} s\n{report}")
    if process.returncode != 0 or _DONE not in stdout.split("\n"):
        failed = _FAILED.search(stderr)
        place = "a block"
        if failed and int(failed.group(1)) in where:
            line, text = where[int(failed.group(1))]
            place = f"README.md:{line} ({text.strip()[:100]!r}), exit {failed.group(2)}"
        raise ReadmeBlockError(
            f"README command failed at {place}; bash exited {process.returncode}\n{report}")
    check_promises(blocks, stdout)
    return stdout


GROUPS: Final = run_groups(README.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------
# The README


def test_every_shell_block_in_the_readme_is_marked_run_or_skip_with_a_reason() -> None:
    blocks, orphans = parse_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no shell blocks: is the parser broken?"
    problems = [
        f"README.md:{block.fence_line}: ```{block.language} block needs "
        "`<!-- readme-test: run GROUP -->` or `<!-- readme-test: skip: REASON -->` on the line "
        f"before it (found {block.marker_text!r})"
        for block in blocks if block.marker is None]
    problems += [f"README.md:{line}: readme-test marker not right before a shell block"
                 for line in orphans]
    assert not problems, "\n".join(problems)


def test_the_emulator_walkthrough_and_the_commands_are_run_not_skipped() -> None:
    assert {"emulator-walkthrough", "commands"} <= set(GROUPS)
    walkthrough = "\n".join(line for block in GROUPS["emulator-walkthrough"]
                            for line in block.lines)
    assert "snapshot-resources emulator" in walkthrough
    # Only free ports: a fixed one would collide with another run on the same machine.
    for group in GROUPS.values():
        for block in group:
            for line in block.lines:
                assert re.findall(r"--port[ =](\d+)", line) in ([], ["0"]), line


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_readme_blocks_run_as_written(group: str, tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cli = None
    if uses_pulumi(GROUPS[group]):
        cli = engine.find_cli(REPO)
        if cli is None:
            message = f"README group {group}: {engine.cli_missing_message()}"
            if os.environ.get("CI"):
                pytest.fail(f"{message} (CI is set: it may not skip)")
            pytest.skip(message)
    run_blocks(GROUPS[group], cwd=make_workspace(tmp_path), tmp=scratch, cli=cli)


def test_the_project_block_is_run_and_uses_the_pulumi_cli() -> None:
    # The block that used to fail pasted (no login, no stack init) is run, not skipped.
    assert "your-project" in GROUPS
    assert uses_pulumi(GROUPS["your-project"])
    lines = [line.split("#")[0].split() for block in GROUPS["your-project"]
             for line in block.lines]
    commands = [" ".join(words[1:3]) for words in lines if words[:1] == ["pulumi"]]
    assert commands[0].startswith("login ")
    assert commands[1:3] == ["stack init", "config set"]


# --------------------------------------------------------------------------------------------------
# The harness itself: a broken block must fail


def _blocks(*bodies: str) -> list[ShellBlock]:
    return [ShellBlock(10 * index + 1, "sh", "<!-- readme-test: run t -->", body.split("\n"))
            for index, body in enumerate(bodies)]


def _run(tmp_path: Path, *bodies: str, timeout: float = 20.0) -> str:
    return run_blocks(_blocks(*bodies), cwd=tmp_path, tmp=tmp_path, timeout=timeout)


@pytest.mark.parametrize("body", [
    "true\nfalse\necho after",
    "false | cat\necho after",
    "echo $README_TEST_UNSET_VARIABLE\necho after",
    "X=$(false)\necho after",
])
def test_a_failing_command_fails_the_block(tmp_path: Path, body: str) -> None:
    with pytest.raises(ReadmeBlockError, match="README command failed") as failure:
        _run(tmp_path, body)
    assert "after" not in str(failure.value).split("stderr:")[0].split("stdout:")[1]


def test_the_failure_names_the_readme_line(tmp_path: Path) -> None:
    with pytest.raises(ReadmeBlockError, match=r"README\.md:4 .*exit 3"):
        _run(tmp_path, "echo one\nexit_three() { return 3; }\nexit_three\necho two")


def test_an_unkept_promise_fails_the_block(tmp_path: Path) -> None:
    with pytest.raises(ReadmeBlockError, match=r"README\.md:4: .*promises 'goodbye'"):
        _run(tmp_path, "echo hello\n#  hello\n#  goodbye")


def test_promises_are_kept_in_order(tmp_path: Path) -> None:
    _run(tmp_path, "echo a; echo b\n#  a\n#  b")
    with pytest.raises(ReadmeBlockError, match="promises 'a'"):
        _run(tmp_path, "echo a; echo b\n#  b\n#  a")


def test_blocks_of_a_group_share_one_session_and_promises_stay_in_their_block(
        tmp_path: Path) -> None:
    _run(tmp_path, "X=42; f() { echo \"f$1\"; }", "echo $X; f 1\n#  42\n#  f1")
    with pytest.raises(ReadmeBlockError, match="promises 'early'"):
        _run(tmp_path, "echo early", "echo late\n#  early")


def test_a_block_past_the_timeout_fails(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ReadmeBlockError, match="timed out"):
        _run(tmp_path, "sleep 30", timeout=1.0)
    assert time.monotonic() - started < 15


def test_what_a_block_leaves_running_is_ended(tmp_path: Path) -> None:
    stdout = _run(tmp_path, "sleep 300 > /dev/null 2>&1 &\necho pid=$!")
    pid = int(re.findall(r"pid=(\d+)", stdout)[0])
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to see the process state")
    alive = stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    assert not alive


@pytest.mark.parametrize(("promise", "line", "matches"), [
    ('{..."status":5,...}', '{"sid":"x","serverResponse":{"status":5,"t":1}}', True),
    ('{..."status":5,...}', '{"serverResponse":{"status":3,"t":1}}', False),
    ("http://127.0.0.1:<port>", "http://127.0.0.1:40123", True),
    ("http://127.0.0.1:<port>", "http://127.0.0.1:", False),
    ("<sid>_a  <sid>.jpg", "abc_a      abc.jpg", True),
    ("<sid>_a  <sid>.jpg", "abc_a abd.jpg", False),
    ("a.b", "axb", False),
])
def test_promise_patterns(promise: str, line: str, matches: bool) -> None:
    assert bool(promise_pattern(promise).fullmatch(line)) is matches


def _markdown(*parts: str) -> str:
    return "\n".join(parts)


def test_the_parser_finds_unmarked_blocks_and_stray_markers() -> None:
    blocks, orphans = parse_blocks(_markdown(
        "```sh", "echo unmarked", "```",
        "<!-- readme-test: skip: -->", "```sh", "echo empty reason", "```",
        "<!-- readme-test: run g -->", "```sh", "echo ok", "```",
        "<!-- readme-test: run stray -->", "",
        "```text", "```sh inside text is not a block", "```",
        "<!-- readme-test: skip: needs the real pulumi CLI -->", "```bash", "pulumi up", "```",
    ))
    assert [(b.fence_line, b.marker) for b in blocks] == [
        (1, None), (5, None), (9, Marker("run", "g")),
        (18, Marker("skip", "needs the real pulumi CLI"))]
    assert orphans == [12]


def _lines(blocks: Iterable[ShellBlock]) -> list[str]:
    return [line for block in blocks for line in block.lines]


def test_run_groups_keep_readme_order() -> None:
    groups = run_groups(_markdown(
        "<!-- readme-test: run a -->", "```sh", "one", "```",
        "<!-- readme-test: run b -->", "```sh", "two", "```",
        "<!-- readme-test: run a -->", "```sh", "three", "```",
    ))
    assert {name: _lines(blocks) for name, blocks in groups.items()} == {
        "a": ["one", "three"], "b": ["two"]}
