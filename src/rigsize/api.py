"""Public functions beyond ``estimate`` that the CLI (and later the HTTP API) call."""

from __future__ import annotations

from rigsize.model.architecture import active_params
from rigsize.model.families import build_architecture
from rigsize.model.inputs import find_presets, preset_config
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


def serving_curve(model: str, concurrencies: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256),
                  **options: object) -> list[dict[str, object]]:
    """Throughput and latency versus closed-loop concurrency, one ``estimate`` per point
    (for plots).  Points whose layout does not fit have ``fits: False`` and no speed."""
    from rigsize.planning.estimate import estimate

    points = []
    for c in concurrencies:
        r = estimate(model, **{**options, "batch": c})
        p = r.performance
        points.append({
            "concurrency": c, "fits": r.memory.fits,
            "ttft_seconds": getattr(p, "ttft_seconds", None), "tpot_seconds": getattr(p, "tpot_seconds", None),
            "output_tokens_per_second": getattr(p, "output_tokens_per_second", None),
            "output_tokens_per_second_per_gpu": getattr(p, "output_tokens_per_second_per_gpu", None),
        })
    return points
