"""Read what a checkpoint actually stores, without loading any weights.

- safetensors: the JSON header of each file (8-byte little-endian length, then JSON;
  format spec: https://huggingface.co/docs/safetensors/index, "Format").
- GGUF: metadata and per-tensor types through the ``gguf`` package (llama.cpp's own
  reader), converted to the Hugging Face config fields rigsize speaks.
- Hub: the one module that touches the network (``huggingface_hub``); only
  ``config.json`` and safetensors headers are fetched, and both are cached so that
  ``--offline`` works afterwards.
"""

from __future__ import annotations

import json
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from rigsize.errors import ModelError

# Bits per element of safetensors dtypes (safetensors docs, "Format": dtype list).
_SAFETENSORS_BITS = {
    "F64": 64, "I64": 64, "U64": 64, "F32": 32, "I32": 32, "U32": 32, "F16": 16, "BF16": 16,
    "I16": 16, "U16": 16, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "I8": 8, "U8": 8, "BOOL": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

# Tensors that hold quantization metadata, not model parameters (GPTQ/AWQ: scales,
# qzeros, g_idx; FP8 checkpoints: weight_scale_inv; bitsandbytes: absmax, quant_map...).
_AUXILIARY_SUFFIXES = (
    ".scales", ".qzeros", ".g_idx", ".weight_scale_inv", ".weight_scale", ".input_scale",
    ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB",
    ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4", ".e_score_correction_bias",
    "_proj_scales",   # gpt-oss MXFP4: gate_up_proj_scales / down_proj_scales (one E8M0 byte per 32)
)


@dataclass(frozen=True)
class Checkpoint:
    """Totals of the tensors a checkpoint stores."""

    stored_params: int                 # model parameters stored (packed ints unpacked)
    stored_bytes: int                  # bytes of all tensors, metadata tensors included
    dtypes: dict[str, int]             # storage dtype -> elements
    tensor_names: frozenset[str] = field(default=frozenset())
    weight_format: str | None = None   # rigsize format name when the file says (GGUF)
    source: str = ""
    tensor_dtypes: Mapping[str, str] = field(default_factory=dict)   # safetensors: name -> dtype
    tensor_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # parameters, unpacked


def _packing_factor(name: str, quant: Any) -> int:
    """How many parameters one stored element of ``name`` holds."""
    if not isinstance(quant, dict):
        return 1
    bits = quant.get("bits", 4)
    if name.endswith(".qweight"):         # GPTQ/AWQ pack 32/bits values per int32
        return 32 // bits if isinstance(bits, int) and bits in (2, 3, 4, 8) else 1
    if quant.get("quant_method") == "mxfp4" and name.endswith("_proj_blocks"):
        return 2                          # gpt-oss: two E2M1 codes per uint8 (U8 [E, out, in/32, 16])
    if quant.get("quant_method") == "bitsandbytes" and quant.get("load_in_4bit"):
        return 2 if name.endswith(".weight") else 1   # two 4-bit codes per uint8
    return 1


def summarize_safetensors(headers: dict[str, dict[str, Any]], quant: dict[str, Any] | None,
                          source: str) -> Checkpoint:
    """Totals from safetensors headers: ``{tensor_name: {"dtype", "shape", ...}}``."""
    params = total_bits = 0
    dtypes: Counter[str] = Counter()
    shapes: dict[str, tuple[int, ...]] = {}
    for name, info in headers.items():
        if name == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape) or dtype not in _SAFETENSORS_BITS):
            raise ModelError("model.bad_safetensors", path=source,
                             detail=f"tensor {name!r} has no valid dtype and shape")
        numel = 1
        for d in shape:
            numel *= d
        dtypes[dtype] += numel
        total_bits += numel * _SAFETENSORS_BITS[dtype]
        if not name.endswith(_AUXILIARY_SUFFIXES):
            factor = _packing_factor(name, quant)
            params += numel * factor
            shapes[name] = (shape[0] * factor, *shape[1:]) if shape else (factor,)
    names = frozenset(n for n in headers if n != "__metadata__")
    stored = {n: headers[n]["dtype"] for n in names}
    return Checkpoint(params, total_bits // 8, dict(dtypes), names, source=source, tensor_dtypes=stored,
                      tensor_shapes=shapes)


def read_safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """The header of one ``.safetensors`` file (reads only its first bytes)."""
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 100 * 2**20 or length + 8 > path.stat().st_size:
                raise ValueError(f"header claims {length} bytes, more than the file holds")
            header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        return header
    except (OSError, ValueError, struct.error) as exc:
        raise ModelError("model.bad_safetensors", path=str(path), detail=str(exc)) from None


def read_folder_checkpoint(folder: Path, quant: dict[str, Any] | None) -> Checkpoint | None:
    """Totals over every safetensors file of a local checkpoint folder (None if none)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    headers: dict[str, dict[str, Any]] = {}
    for f in files:
        headers.update(read_safetensors_header(f))
    return summarize_safetensors(headers, quant, str(folder))


# ----------------------------------------------------------------------------------
# GGUF
# ----------------------------------------------------------------------------------

# GGUF architecture -> HF model_type (llama.cpp convert_hf_to_gguf.py maps the reverse way).
_GGUF_ARCH = {
    "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3_text",
    "phi3": "phi3", "starcoder2": "starcoder2", "olmo2": "olmo2", "command-r": "cohere",
    "starcoder": "gpt_bigcode", "olmo": "olmo", "olmoe": "olmoe", "nemotron": "nemotron", "glm4": "glm4",
    "cohere2": "cohere2", "exaone": "exaone", "seed_oss": "seed_oss", "hunyuan-dense": "hunyuan_v1_dense",
    "ernie4_5": "ernie4_5", "smollm3": "smollm3", "arcee": "arcee", "apertus": "apertus",
}

# llama.cpp file types (gguf.LlamaFileType) -> rigsize weight format names.
_GGUF_FILE_TYPES = {
    "ALL_F32": "fp32", "MOSTLY_F16": "fp16", "MOSTLY_BF16": "bf16", "MOSTLY_Q8_0": "q8_0",
    "MOSTLY_Q6_K": "q6_k", "MOSTLY_Q5_K_M": "q5_k_m", "MOSTLY_Q5_K_S": "q5_k_s",
    "MOSTLY_Q4_K_M": "q4_k_m", "MOSTLY_Q4_K_S": "q4_k_s",
    "MOSTLY_Q3_K_M": "q3_k_m", "MOSTLY_Q2_K": "q2_k",
}


def _gguf_value(reader: Any, key: str) -> Any:
    fld = reader.fields.get(key)
    return None if fld is None else fld.contents()


def read_gguf(path: Path) -> tuple[dict[str, Any], Checkpoint]:
    """A Hugging Face-style config and the stored totals of a GGUF file."""
    reader = _open_gguf(path)
    arch = _gguf_value(reader, "general.architecture")
    model_type = _GGUF_ARCH.get(str(arch))
    if model_type is None:
        raise ModelError("model.gguf_arch", path=str(path), arch=arch, supported=", ".join(sorted(_GGUF_ARCH)))
    config = _gguf_config(reader, str(arch), model_type)
    return {k: v for k, v in config.items() if v is not None}, _gguf_checkpoint(reader, path)


def _open_gguf(path: Path) -> Any:
    """llama.cpp's own reader (``gguf.GGUFReader``) on ``path``; it memory-maps the file."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelError("model.bad_gguf", path=str(path), detail=exc.strerror or "cannot be read") from None
    if not magic:
        raise ModelError("model.bad_gguf", path=str(path), detail="the file is empty")
    if magic != b"GGUF":
        raise ModelError("model.bad_gguf", path=str(path), detail="not a GGUF file: it does not start with 'GGUF'")
    try:
        from gguf import GGUFReader

        return GGUFReader(str(path))
    except Exception:  # the reader raises many types (ValueError, IndexError, ...) on malformed files
        # its own words name Python internals ("not enough values to unpack"), not the file's problem
        raise ModelError("model.bad_gguf", path=str(path), detail="truncated or corrupt: its header or tensor "
                         "table ends early or holds invalid values; download it again") from None


def _gguf_config(reader: Any, arch: str, model_type: str) -> dict[str, Any]:
    """The config fields a GGUF file's ``{arch}.*`` metadata holds, under their Hugging
    Face names (llama.cpp ``convert_hf_to_gguf.py`` writes them the other way)."""
    tensors = {t.name: t for t in reader.tensors}

    def meta(key: str) -> Any:
        return _gguf_value(reader, f"{arch}.{key}")

    embd = tensors.get("token_embd.weight")
    tokens = _gguf_value(reader, "tokenizer.ggml.tokens")
    vocab = len(tokens) if tokens else (int(embd.shape[-1]) if embd is not None else None)
    heads = meta("attention.head_count")
    config: dict[str, Any] = {
        "model_type": model_type,
        "hidden_size": meta("embedding_length"),
        "num_hidden_layers": meta("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": meta("attention.head_count_kv") or heads,
        "intermediate_size": meta("feed_forward_length"),
        "vocab_size": vocab,
        "max_position_embeddings": meta("context_length"),
        "tie_word_embeddings": "output.weight" not in tensors,
    }
    if meta("attention.key_length"):
        config["head_dim"] = meta("attention.key_length")
    if meta("expert_count"):
        if model_type == "llama":   # llama.cpp stores Mixtral as "llama" with experts
            config["model_type"] = "mixtral"
        config.update(_gguf_experts(meta, config["model_type"]))
    if meta("attention.sliding_window"):
        config["sliding_window"] = meta("attention.sliding_window")
    return config


def _gguf_experts(meta: Callable[[str], Any], model_type: str) -> dict[str, Any]:
    """The MoE fields under the config's names (Mixtral's config calls its experts
    ``num_local_experts`` and has no separate expert width)."""
    experts = {"num_experts": meta("expert_count"), "num_experts_per_tok": meta("expert_used_count"),
               "moe_intermediate_size": meta("expert_feed_forward_length")}
    if model_type == "mixtral":
        experts = {"num_local_experts": experts["num_experts"],
                   "num_experts_per_tok": experts["num_experts_per_tok"]}
    if meta("expert_shared_feed_forward_length"):
        experts["shared_expert_intermediate_size"] = meta("expert_shared_feed_forward_length")
    return experts


def _gguf_weight_format(reader: Any) -> str | None:
    """The rigsize format of the file's ``general.file_type`` (gguf.LlamaFileType), if known."""
    from gguf import LlamaFileType

    file_type = _gguf_value(reader, "general.file_type")
    if file_type is None:
        return None
    try:
        return _GGUF_FILE_TYPES.get(LlamaFileType(int(file_type)).name)
    except ValueError:
        return None


def _gguf_checkpoint(reader: Any, path: Path) -> Checkpoint:
    """Elements and bytes the file stores, by ggml tensor type."""
    dtypes: Counter[str] = Counter()
    for t in reader.tensors:
        dtypes[t.tensor_type.name] += int(t.n_elements)
    return Checkpoint(
        stored_params=sum(int(t.n_elements) for t in reader.tensors),
        stored_bytes=sum(int(t.n_bytes) for t in reader.tensors),
        dtypes=dict(dtypes), tensor_names=frozenset(t.name for t in reader.tensors),
        weight_format=_gguf_weight_format(reader), source=str(path),
    )


# ----------------------------------------------------------------------------------
# Hugging Face Hub (the only network access in rigsize)
# ----------------------------------------------------------------------------------

def _cache_dir() -> Path:
    base = os.environ.get("RIGSIZE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rigsize")
    return Path(base)


def _quiet_hub() -> None:
    """huggingface_hub logs each retry on stderr; rigsize reports failures in one line.
    Telemetry is off: with it, huggingface_hub >= 2 first fetches an agent registry
    (``/api/agent-harnesses``, 3 s timeout) before the request rigsize asked for."""
    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity(hub_logging.CRITICAL)
    disable_progress_bars()
    constants.HF_HUB_DISABLE_TELEMETRY = True


# Seconds per attempt to reach the Hub (huggingface_hub's own per-call timeout; the
# HF_HUB_ETAG_TIMEOUT variable overrides it).  Two attempts (one retry) answer within
# about 3 s with no network, where huggingface_hub's default backoff takes ~24 s.
HUB_TIMEOUT_S = 1.5
HUB_ATTEMPTS = 2


def _hub_timeout() -> float:
    try:
        return float(os.environ["HF_HUB_ETAG_TIMEOUT"])
    except (KeyError, ValueError):
        return HUB_TIMEOUT_S


def _probe_hub(repo_id: str) -> None:
    """One HEAD request for ``config.json`` (and one retry) before huggingface_hub's
    download, whose network errors would be retried with a backoff of 1+2+4+8+8 s.
    HTTP answers (404, 401...) pass on to the download, which reports them."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    if constants.HF_HUB_OFFLINE:
        return
    url, timeout, detail = hf_hub_url(repo_id, "config.json"), _hub_timeout(), ""
    for _ in range(HUB_ATTEMPTS):
        try:
            get_hf_file_metadata(url, timeout=timeout, retry_on_errors=False)
            return
        except Exception as exc:  # httpx/requests transport errors differ by huggingface_hub version
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if isinstance(status, int) and status < 500:
                return
            detail = type(exc).__name__
    raise ModelError("model.hub_unreachable", repo=repo_id, seconds=HUB_ATTEMPTS * timeout, detail=detail)


def fetch_hub_config(repo_id: str, offline: bool) -> dict[str, Any]:
    """``config.json`` of a Hub repository, through huggingface_hub's cache."""
    _quiet_hub()
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    if not offline and not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        _probe_hub(repo_id)
    try:
        path = hf_hub_download(repo_id, "config.json", local_files_only=offline, etag_timeout=_hub_timeout())
    except LocalEntryNotFoundError:
        if offline:
            raise ModelError("model.hub_offline_miss", repo=repo_id) from None
        raise ModelError("model.hub_failed", repo=repo_id, detail="no answer") from None
    except Exception as exc:  # HTTP errors, gated repos, bad ids
        raise ModelError("model.hub_failed", repo=repo_id, detail=type(exc).__name__) from None
    try:
        raw = json.loads(Path(path).read_text())
    except (ValueError, RecursionError) as exc:
        raise ModelError("model.bad_json", path=f"{repo_id}/config.json", detail=str(exc)[:200]) from None
    if not isinstance(raw, dict):
        raise ModelError("model.not_object", path=f"{repo_id}/config.json")
    return raw


def fetch_hub_checkpoint(repo_id: str, offline: bool, quant: dict[str, Any] | None) -> Checkpoint | None:
    """Safetensors headers of a Hub repository (cached as JSON beside rigsize's cache).

    Returns None when the repository has no safetensors files or, offline, when the
    headers were never fetched; the caller says so in a warning.
    """
    cache = _cache_dir() / "safetensors" / (repo_id.replace("/", "--") + ".json")
    if cache.exists():
        try:
            headers = json.loads(cache.read_text())
        except ValueError:
            headers = None
        if not isinstance(headers, dict):
            raise ModelError("model.bad_safetensors", path=str(cache), detail="corrupt cache; delete the file")
    elif offline:
        return None
    else:
        from huggingface_hub import get_safetensors_metadata

        try:
            meta = get_safetensors_metadata(repo_id)
        except Exception:  # no safetensors, gated, network: the config still counts
            return None
        headers = {}
        for file_meta in meta.files_metadata.values():
            for name, info in file_meta.tensors.items():
                headers[name] = {"dtype": info.dtype, "shape": list(info.shape)}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(headers))
    return summarize_safetensors(headers, quant, f"hf://{repo_id}")
