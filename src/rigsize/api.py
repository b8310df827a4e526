"""Public functions beyond ``estimate`` that the CLI (and later the HTTP API) call."""

from __future__ import annotations

from rigsize.architecture import active_params, build_architecture
from rigsize.models import find_presets, preset_config
from rigsize.report import PresetRow


def list_presets(query: str = "") -> list[PresetRow]:
    """Presets matching ``query``, with their parameter counts."""
    rows = []
    for p in find_presets(query):
        arch = build_architecture(preset_config(p.name))
        rows.append(PresetRow(name=p.name, family=p.family, hub_id=p.hub_id, aliases=list(p.aliases),
                              params=arch.params, active_params=active_params(arch),
                              source=p.source, as_of=p.as_of))
    return rows
