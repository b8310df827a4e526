"""What an emitter returns: the commands to run and the files they read, with the engine version they
target and the notes a user needs (what rigsize left to them)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from importlib import resources

from rigsize.errors import InputError


class LaunchError(InputError):
    """An engine, framework or platform that cannot run the plan; the message names the nearest plan it can."""

    def __init__(self, why: str) -> None:
        super().__init__("input.conflict", what=why)


@dataclass(frozen=True)
class LaunchFile:
    name: str          # relative to --out-dir
    text: str
    executable: bool = False


@dataclass(frozen=True)
class Launch:
    tool: str                       # "vllm", "sglang", "deepspeed", "megatron", "trl"
    version: str                    # the version whose flags were checked (data/launch/)
    commands: tuple[str, ...]       # shell lines, one per node role (head first)
    files: tuple[LaunchFile, ...] = ()
    notes: tuple[str, ...] = ()
    argv: tuple[tuple[str, ...], ...] = field(default=(), compare=False)   # the engine argv per command
    setup: str = ""                 # the pip line that installs the targeted version
    launcher: str = ""              # torchrun, accelerate, deepspeed or srun (training; launchers.py)
    launcher_words: int = field(default=0, compare=False)   # leading words of each argv that are the launcher's


def command_line(argv: list[str] | tuple[str, ...]) -> str:
    """One shell line; ``$VAR`` words stay unquoted so the platform's variables expand."""
    return " ".join(a if a.startswith("$") else shlex.quote(a) for a in argv)


def known_flags(name: str) -> frozenset[str]:
    """The option strings pinned in ``data/launch/<name>`` (comment lines start with #)."""
    text = resources.files("rigsize.data").joinpath("launch", name).read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def flags_of(argv: list[str] | tuple[str, ...]) -> list[str]:
    """The option names in an argv (``--x`` or ``--x=v``), for checking against ``known_flags``."""
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def known_sections(name: str) -> dict[str, frozenset[str]]:
    """The ``[section]`` lists of a pinned file in ``data/launch/`` (comment lines start with #)."""
    out: dict[str, set[str]] = {}
    current = ""
    for line in resources.files("rigsize.data").joinpath("launch", name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        out.setdefault(current, set()).add(line)
    return {k: frozenset(v) for k, v in out.items()}
