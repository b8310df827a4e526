"""What every launch test module shares: the first recommendation of a plan, made once per set of options
(``planned``), and the golden-file check: a bundle's files (rigsize-plan.json aside, it
holds the whole plan) and its commands and notes, as one text compared with tests/fixtures/launch/CASE.txt.

Regenerate after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.  A case with no
golden file fails (it is never written silently, so a new case cannot pass against itself)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parents[1] / "fixtures" / "launch"


@lru_cache(maxsize=None)
def _planned(model: str, opts: str) -> str:
    from rigsize.launch.plan import select
    from rigsize.planning.search import search

    return json.dumps(select(search(model, top=1, **json.loads(opts))))


def planned(model: str, **opts: Any) -> dict:
    """``select(search(model, top=1, **opts))``, searched once per (model, options); a fresh copy each call."""
    return json.loads(_planned(model, json.dumps(opts, sort_keys=True)))


def golden_text(bundle: Any) -> str:
    files = {f.name: f.text for f in bundle.files if f.name != "rigsize-plan.json"}
    files["(commands)"] = "".join(line + "\n" for line in (*bundle.commands, *(f"# {n}" for n in bundle.launch.notes)))
    return "".join(f"==> {name} <==\n{body}" for name, body in sorted(files.items()))


def assert_golden(case: str, bundle: Any) -> None:
    text, path = golden_text(bundle), GOLDEN / f"{case}.txt"
    if os.environ.get("RIGSIZE_UPDATE_GOLDENS"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path.name}: write it with RIGSIZE_UPDATE_GOLDENS=1 and review it"
    assert text == path.read_text()
