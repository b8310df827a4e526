"""Resolve what the user typed into a model specification.

Accepted, in this order: an existing path (``config.json``, a checkpoint folder, a
``.gguf`` file); a preset name or alias; a bare size such as ``72B``; a Hugging Face
Hub id (``org/name``).  Presets are Hub ``config.json`` files packaged in
``rigsize/data/models`` and indexed, with their sources, in ``data/presets.toml``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping

from rigsize.errors import ModelError
from rigsize.messages import Note
from rigsize.model import formats, quantization
from rigsize.model.architecture import Architecture
from rigsize.model.checkpoints import (
    Checkpoint,
    fetch_hub_checkpoint,
    fetch_hub_config,
    read_folder_checkpoint,
    read_gguf,
)
from rigsize.model.families import build_architecture
from rigsize.model.formats import WeightFormat
from rigsize.model.from_checkpoint import architecture_from_checkpoint

Source = Literal["preset", "config", "folder", "gguf", "hub", "size"]


@dataclass(frozen=True)
class ModelSpec:
    """A model as rigsize understands it: where it came from, its config, its layout."""

    name: str
    source: Source
    origin: str                        # preset citation, path or Hub id
    config: Mapping[str, Any]
    arch: Architecture
    approximate: bool = False
    checkpoint: Checkpoint | None = None
    warnings: tuple[Note, ...] = field(default=())


# ----------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    name: str
    hub_id: str | None
    source: str
    as_of: str
    family: str
    aliases: tuple[str, ...]
    verbatim: bool


@cache
def presets() -> dict[str, Preset]:
    """All presets by canonical name (loaded once, lazily)."""
    text = resources.files("rigsize.data").joinpath("presets.toml").read_text()
    out = {}
    for name, row in tomllib.loads(text).items():
        out[name] = Preset(name, row.get("hub_id"), row["source"], str(row["as_of"]),
                           row.get("family", ""), tuple(row.get("aliases", ())), row.get("verbatim", True))
    return out


@cache
def _preset_index() -> dict[str, str]:
    index = {}
    for p in presets().values():
        for key in (p.name, *p.aliases, *([p.hub_id] if p.hub_id else [])):
            index[key.lower()] = p.name
    return index


def preset_config(name: str) -> dict[str, Any]:
    text = resources.files("rigsize.data").joinpath("models", f"{name}.json").read_text()
    return json.loads(text)


def find_presets(query: str = "") -> list[Preset]:
    """Presets whose name, alias, family or Hub id contains ``query`` (case-insensitive)."""
    q = query.lower()
    return [p for p in presets().values()
            if not q or any(q in s.lower() for s in (p.name, p.family, p.hub_id or "", *p.aliases))]


# ----------------------------------------------------------------------------------
# Bare sizes ("72B")
# ----------------------------------------------------------------------------------

_BARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mbt])\s*$", re.IGNORECASE)
_BARE_SCALE = {"m": 1e6, "b": 1e9, "t": 1e12}
MIN_BARE, MAX_BARE = 0.3e9, 10e12

# Llama 3 family shape (Llama Team 2024, "The Llama 3 Herd of Models", Table 3):
# 8B: 32 layers, d=4096, FFN 14336; 70B: 80, 8192, 28672; 405B: 126, 16384, 53248;
# 8 KV heads, head_dim 128, vocab 128256, untied embeddings, RoPE theta 500000.
_LLAMA3_VOCAB = 128_256
_LLAMA3_FFN_RATIO = 3.5            # 14336/4096 and 28672/8192
_LLAMA3_WIDTH_PER_LAYER = 110.0    # d / layers: 128 (8B), 102 (70B), 130 (405B)


def synthesize_config(n_params: float) -> dict[str, Any]:
    """A Llama-3-style GQA-8 decoder with about ``n_params`` parameters.

    Widths are multiples of 1024 (so 8 KV heads of 128 divide them); the layer count
    absorbs the rest; among widths the one whose width/depth ratio is nearest the
    Llama 3 family's is chosen.  The result is approximate by construction.
    """
    best: tuple[float, dict[str, Any]] | None = None
    for hidden in range(1024, 65537, 1024):
        ffn = int(round(hidden * _LLAMA3_FFN_RATIO / 256) * 256)
        per_layer = 2 * hidden * hidden + 2 * hidden * 1024 + 3 * hidden * ffn + 2 * hidden
        layers = round((n_params - 2 * _LLAMA3_VOCAB * hidden - hidden) / per_layer)
        if layers < 2:
            continue
        score = abs(math.log(hidden / layers / _LLAMA3_WIDTH_PER_LAYER))
        if best is None or score < best[0]:
            best = (score, {
                "model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers,
                "num_attention_heads": hidden // 128, "num_key_value_heads": 8, "head_dim": 128,
                "intermediate_size": ffn, "vocab_size": _LLAMA3_VOCAB,
                "max_position_embeddings": 131072, "tie_word_embeddings": False,
                "rope_theta": 500000.0, "torch_dtype": "bfloat16",
            })
    assert best is not None  # MIN_BARE guarantees a candidate
    return best[1]


def _parse_bare(text: str) -> float | None:
    m = _BARE.match(text)
    return float(m.group(1)) * _BARE_SCALE[m.group(2).lower()] if m else None


# ----------------------------------------------------------------------------------
# Resolution
# ----------------------------------------------------------------------------------

def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise ModelError("model.bad_json", path=str(path), detail="not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ModelError("model.bad_json", path=str(path), detail=str(exc)[:200]) from None
    except OSError as exc:
        raise ModelError("model.bad_json", path=str(path), detail=exc.strerror or str(exc)) from None
    if not isinstance(raw, dict):
        raise ModelError("model.not_object", path=str(path))
    if "model_type" not in raw and not isinstance(raw.get("text_config"), dict):
        raise ModelError("model.no_model_type", path=str(path))
    return raw


def _stored_warning(arch: Architecture, ckpt: Checkpoint | None) -> tuple[Note, ...]:
    if ckpt is None or ckpt.stored_params == arch.params:
        return ()
    diff = ckpt.stored_params - arch.params
    why = ("extra stored tensors, e.g. multi-token-prediction layers or buffers" if diff > 0
           else "tensors absent from the checkpoint, e.g. tied or pruned weights")
    return (Note("model.stored_differs", {"stored": f"{ckpt.stored_params:,}", "params": f"{arch.params:,}", "why": why}),)


def _from_config(name: str, source: Source, origin: str, raw: dict[str, Any],
                 ckpt: Checkpoint | None = None) -> ModelSpec:
    try:
        arch = build_architecture(raw)
    except ModelError as exc:
        # a model_type rigsize does not lay out: its checkpoint's tensors still size it
        if exc.key != "model.unsupported_type" or ckpt is None or not ckpt.tensor_shapes:
            raise
        arch = architecture_from_checkpoint(raw, ckpt.tensor_shapes)
        note = Note("model.from_checkpoint", {"model_type": str(raw.get("model_type")), "tensors": f"{len(arch.tensors):,}"})
        return ModelSpec(name, source, origin, MappingProxyType(raw), arch, approximate=True,
                         checkpoint=ckpt, warnings=(note,))
    return ModelSpec(name, source, origin, MappingProxyType(raw), arch,
                     checkpoint=ckpt, warnings=_stored_warning(arch, ckpt))


def _looks_like_hub_id(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text)) and not text.endswith((".json", ".gguf"))


def resolve_model(text: str, offline: bool = False) -> ModelSpec:
    """Turn a preset name, path, bare size or Hub id into a ``ModelSpec``."""
    if not isinstance(text, str):
        raise ModelError("model.unknown", name=repr(text), hint=" (give a name, path or size as text)")
    text = text.strip()
    if not text:
        raise ModelError("model.unknown", name=text, hint="")
    path = Path(text).expanduser()
    if path.is_dir():
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise ModelError("model.folder_no_config", path=str(path))
        raw = _read_config_file(cfg_path)
        ckpt = read_folder_checkpoint(path, raw.get("quantization_config"))
        return _from_config(path.name, "folder", str(path), raw, ckpt)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            raw, ckpt = read_gguf(path)
            return _from_config(path.stem, "gguf", str(path), raw, ckpt)
        return _from_config(path.stem if path.name != "config.json" else path.parent.name or "config",
                            "config", str(path), _read_config_file(path))
    preset = _preset_index().get(text.lower())
    if preset is not None:
        p = presets()[preset]
        return _from_config(p.name, "preset", p.source, preset_config(p.name))
    n = _parse_bare(text)
    if n is not None:
        if not MIN_BARE <= n <= MAX_BARE:
            raise ModelError("model.bare_size", name=text, minimum="0.3B", maximum="10T")
        raw = synthesize_config(n)
        arch = build_architecture(raw)
        summary = (f"{raw['num_hidden_layers']} layers, hidden {raw['hidden_size']}, "
                   f"FFN {raw['intermediate_size']}, {raw['num_attention_heads']} heads, 8 KV heads, "
                   f"vocab {raw['vocab_size']}, {arch.params / 1e9:.2f}B parameters")
        return ModelSpec(text.upper().replace(" ", ""), "size", "synthesized (Llama 3 paper, Table 3 shapes)",
                         MappingProxyType(raw), arch, approximate=True,
                         warnings=(Note("model.approximate", {"name": text, "summary": summary}),))
    if _looks_like_hub_id(text) and not text.startswith(("./", "../", "/")):
        raw = fetch_hub_config(text, offline)
        ckpt = fetch_hub_checkpoint(text, offline, raw.get("quantization_config"))
        return _from_config(text, "hub", f"https://huggingface.co/{text}", raw, ckpt)
    if any(sep in text for sep in ("/", "\\")) or text.endswith((".json", ".gguf")):
        raise ModelError("model.unknown", name=text, hint=" (no such file or folder)")
    close = difflib.get_close_matches(text.lower(), list(_preset_index()), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelError("model.unknown", name=text, hint=hint)


# ----------------------------------------------------------------------------------
# The format a checkpoint is stored in
# ----------------------------------------------------------------------------------

_TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "half": "fp16", "float": "fp32"}


def unknown_torch_dtype(config: Mapping[str, Any]) -> str | None:
    """The config's ``torch_dtype`` (or ``dtype``) as written, where it is given but is not
    one rigsize reads (``_TORCH_DTYPES``); None where it is known or absent."""
    dtype = config.get("torch_dtype") or config.get("dtype")
    if dtype is None or (isinstance(dtype, str) and dtype in _TORCH_DTYPES):
        return None
    return json.dumps(dtype)[:40]


def stored_weight_format(spec: ModelSpec) -> tuple[WeightFormat, str]:
    """The weight format ``spec``'s checkpoint is stored in, with the modules it keeps
    outside that format, and why rigsize thinks so.

    In order: a GGUF file type; the config's ``quantization_config`` (its
    ``modules_to_not_convert`` / ``llm_int8_skip_modules`` / ``ignore`` /
    ``exclude_modules`` lists kept in the config's ``torch_dtype``); else the
    ``torch_dtype``.  Safetensors headers, when a checkpoint was read, then say per
    tensor what is actually stored and override the lists."""
    ckpt = spec.checkpoint
    if ckpt is not None and ckpt.weight_format:
        return formats.resolve_weight_format(ckpt.weight_format), "GGUF general.file_type"
    dtype = spec.config.get("torch_dtype") or spec.config.get("dtype")
    dense = _TORCH_DTYPES.get(dtype) if isinstance(dtype, str) else None
    found = quantization.quantization_format(spec.config.get("quantization_config"), dense or "bf16")
    if found is not None:
        fmt, why = found
    elif dense:
        fmt, why = formats.resolve_weight_format(dense), "config torch_dtype"
    elif (odd := unknown_torch_dtype(spec.config)) is not None:
        fmt, why = formats.resolve_weight_format("bf16"), f"default (config torch_dtype {odd} unknown)"
    else:
        fmt, why = formats.resolve_weight_format("bf16"), "default (config names no dtype)"
    if ckpt is not None and ckpt.tensor_dtypes:
        fmt, n = quantization.with_stored_dtypes(fmt, spec.arch.tensors, ckpt.tensor_dtypes)
        if n:
            why += f"; safetensors headers: {n} quantizable tensors stored in 16/32 bits"
    return fmt, why
