"""The package's layout rules (issue 13), checked on the source, so they cannot erode:

- the core never imports a shell (CLI, rendering; later the HTTP API and pages);
- no module imports another module's private (``_name``) objects: what two modules
  share is a public function of the module that owns it;
- every module sits in a subpackage named for its concern (a few shared leaves stay at
  the top), so a newcomer finds a number's code by following the flow.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "rigsize"
TOP_LEVEL = {"__init__.py", "__main__.py", "api.py", "errors.py", "messages.py", "numbers.py", "report.py",
             "units.py"}
CONCERNS = {"model", "hardware", "planning", "memory", "speed", "validation", "shells", "data", "launch"}


def _imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _modules(node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [a.name for a in node.names]


def test_the_core_never_imports_a_shell() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "shells" or rel.name == "__main__.py":
            continue
        for node in _imports(path):
            if any(m.startswith("rigsize.shells") for m in _modules(node)):
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders


def test_no_private_names_cross_modules() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        for node in _imports(path):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rigsize"):
                offenders += [f"{path.relative_to(PKG)}:{node.lineno} {a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert not offenders


def test_every_module_lives_in_its_concern() -> None:
    loose = {p.name for p in PKG.glob("*.py")} - TOP_LEVEL
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert not loose and folders <= CONCERNS, (loose, folders - CONCERNS)
