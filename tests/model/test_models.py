"""Model resolution from every input people have: presets, config.json, checkpoint
folders (safetensors headers), GGUF files, Hub ids (recorded responses) and bare sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rigsize.model.architecture import active_params, breakdown
from rigsize.model.inputs import find_presets, preset_config, presets, resolve_model, synthesize_config

TINY = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 256, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16"}


def test_every_preset_has_a_source_and_a_config() -> None:
    assert len(presets()) >= 30
    for p in presets().values():
        assert p.source and p.as_of, p.name
        assert preset_config(p.name)


def test_aliases_and_hub_ids_resolve_case_insensitively() -> None:
    assert resolve_model("QWEN2-72B").name == "qwen2-72b"
    assert resolve_model("Qwen/Qwen2-72B").name == "qwen2-72b"   # a Hub id we ship: no network


def test_find_presets_filters() -> None:
    names = {p.name for p in find_presets("mixtral")}
    assert names == {"mixtral-8x7b", "mixtral-8x22b"}


def test_published_parameter_counts() -> None:
    """Model cards' own figures (rounded as they print them)."""
    cases = {  # preset: (total, active) in billions, from the Hub model cards
        "mixtral-8x7b": (46.7, 12.9),          # Mistral AI, "Mixtral of experts" blog: 46.7B total, 12.9B active
        "qwen3-30b-a3b": (30.5, 3.3),          # Qwen3 model card: 30.5B total, 3.3B activated
        "qwen3-235b-a22b": (235.0, 22.0),      # Qwen3 model card: 235B total, 22B activated
        "deepseek-v3": (671.0, 37.0),          # DeepSeek-V3 card: 671B total, 37B activated (MTP excluded)
    }
    for name, (total, active) in cases.items():
        arch = resolve_model(name).arch
        assert arch.params / 1e9 == pytest.approx(total, rel=0.01), name
        assert active_params(arch) / 1e9 == pytest.approx(active, rel=0.03), name


def test_breakdown_sums_to_total() -> None:
    for name in ("qwen2-72b", "deepseek-v3", "gemma-2-9b", "gpt2"):
        arch = resolve_model(name).arch
        assert sum(breakdown(arch).values()) == arch.params


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY))
    spec = resolve_model(str(path))
    assert spec.source == "config"
    # by hand: embed 256*64 + lm_head 256*64 + 2 layers * (q 64*64 + k,v 2*32*64 + o 64*64
    #          + gate/up/down 3*128*64 + 2 norms 64) + final norm 64
    per_layer = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64 + 2 * 64
    assert spec.arch.params == 2 * 256 * 64 + 2 * per_layer + 64


def test_checkpoint_folder_reads_safetensors_headers(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps(TINY))
    spec_arch = resolve_model(str(tmp_path / "config.json")).arch
    tensors = {t.name: np.zeros(t.shape, dtype=np.float16) for t in spec_arch.tensors}
    tensors["model.layers.0.mtp_extra.weight"] = np.zeros((10, 10), dtype=np.float32)  # an extra stored tensor
    save_file(tensors, str(tmp_path / "model.safetensors"))
    spec = resolve_model(str(tmp_path))
    assert spec.source == "folder"
    assert spec.checkpoint is not None
    assert spec.checkpoint.stored_params == spec_arch.params + 100
    assert spec.checkpoint.stored_bytes == spec_arch.params * 2 + 100 * 4
    assert any("stores" in str(w) for w in spec.warnings)


def test_gguf_file_metadata_and_tensor_types(tmp_path: Path) -> None:
    """Write a real GGUF file with llama.cpp's own Python writer and read it back."""
    import gguf

    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_feed_forward_length(128)
    w.add_context_length(512)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_list([f"t{i}" for i in range(256)])
    arch = resolve_model_dict(TINY)
    names = {"model.embed_tokens.weight": "token_embd.weight", "lm_head.weight": "output.weight",
             "model.norm.weight": "output_norm.weight"}
    for t in arch.tensors:
        name = names.get(t.name) or t.name.replace("model.layers.", "blk.")
        w.add_tensor(name, np.zeros(t.shape, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    spec = resolve_model(str(path))
    assert spec.source == "gguf"
    assert spec.arch.params == arch.params
    assert spec.checkpoint is not None and spec.checkpoint.weight_format == "fp16"
    assert spec.checkpoint.stored_bytes == arch.params * 2


def resolve_model_dict(cfg: dict):
    from rigsize.model.families import build_architecture

    return build_architecture(cfg)


def test_hub_id_uses_huggingface_hub_with_recorded_response(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded config.json and safetensors header stand in for the Hub (no network in tests)."""
    import huggingface_hub

    recorded = tmp_path / "config.json"
    recorded.write_text(json.dumps(TINY))
    calls: list[tuple[str, bool]] = []

    def fake_download(repo_id: str, filename: str, local_files_only: bool = False, **_: object) -> str:
        calls.append((repo_id, local_files_only))
        return str(recorded)

    class _Info:
        def __init__(self, dtype: str, shape: list[int]) -> None:
            self.dtype, self.shape = dtype, shape

    class _File:
        tensors = {t.name: _Info("BF16", list(t.shape)) for t in resolve_model_dict(TINY).tensors}

    class _Meta:
        files_metadata = {"model.safetensors": _File()}

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: None)   # the reachability probe
    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", lambda repo_id: _Meta())
    monkeypatch.setenv("RIGSIZE_CACHE", str(tmp_path / "cache"))
    spec = resolve_model("someorg/tiny-llama")
    assert spec.source == "hub" and spec.checkpoint is not None
    assert spec.checkpoint.stored_params == spec.arch.params
    # offline afterwards: the cached header is used, huggingface_hub is asked for its cache only
    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", lambda repo_id: 1 / 0)
    spec2 = resolve_model("someorg/tiny-llama", offline=True)
    assert spec2.checkpoint is not None and calls[-1] == ("someorg/tiny-llama", True)


@pytest.mark.parametrize("size", [0.5e9, 7e9, 72e9, 405e9, 1.8e12])
def test_bare_size_is_close_and_flagged_approximate(size: float) -> None:
    text = f"{size / 1e9:g}B"
    spec = resolve_model(text)
    assert spec.approximate and spec.source == "size"
    assert spec.arch.params == pytest.approx(size, rel=0.05)
    assert spec.arch.num_key_value_heads == 8
    assert any("approximate" in str(w) for w in spec.warnings)


def test_bare_70b_looks_like_llama3_70b() -> None:
    """Llama 3 paper Table 3: 70B has 80 layers of width 8192, FFN 28672."""
    cfg = synthesize_config(70.6e9)
    assert cfg["hidden_size"] == 8192 and cfg["intermediate_size"] == 28672
    assert abs(cfg["num_hidden_layers"] - 80) <= 2


# ---- property tests on the parser and the counts ---------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rigsize.model.families import build_architecture  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(layers=st.integers(1, 40), hidden_mult=st.integers(1, 16), heads=st.sampled_from([4, 8, 16]),
       kv=st.sampled_from([1, 2, 4]), inter=st.integers(1, 20000), vocab=st.integers(1, 200000),
       experts=st.integers(2, 64), tied=st.booleans(), model_type=st.sampled_from(["llama", "qwen2", "mixtral"]))
def test_counts_grow_with_layers_hidden_and_experts(layers, hidden_mult, heads, kv, inter, vocab, experts, tied,
                                                    model_type) -> None:
    cfg = {"model_type": model_type, "num_hidden_layers": layers, "hidden_size": 64 * hidden_mult,
           "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inter,
           "vocab_size": vocab, "tie_word_embeddings": tied, "num_local_experts": experts, "num_experts_per_tok": 2}
    base = build_architecture(cfg)
    assert sum(breakdown(base).values()) == base.params
    assert active_params(base) <= base.params
    assert build_architecture({**cfg, "num_hidden_layers": layers + 1}).params > base.params
    assert build_architecture({**cfg, "hidden_size": 64 * (hidden_mult + 1)}).params > base.params
    if model_type == "mixtral":
        more = build_architecture({**cfg, "num_local_experts": experts + 1})
        # a token still uses top-k experts; only the router gains one row of hidden_size
        assert more.params > base.params
        assert active_params(more) - active_params(base) == cfg["hidden_size"] * layers


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size",
                                        "intermediate_size", "num_key_value_heads", "head_dim"]),
                       st.one_of(st.integers(-5, 10**7), st.text(max_size=5), st.none(), st.floats(), st.booleans())))
def test_parser_never_crashes_on_garbage(fields: dict) -> None:
    """Any config either builds or raises the one-line ModelError; nothing else escapes."""
    from rigsize.errors import ModelError

    try:
        build_architecture({"model_type": "llama", **fields})
    except ModelError:
        pass


@pytest.mark.parametrize("dtype", ["float7", 123])
def test_an_unknown_torch_dtype_is_said_not_silently_bf16(dtype: object, tmp_path: Path) -> None:
    """A config whose torch_dtype rigsize does not read was sized as bf16 with no word; the
    assumption and a warning now name the value."""
    import rigsize

    config = {"model_type": "llama", "hidden_size": 1024, "intermediate_size": 2816, "num_attention_heads": 16,
              "num_key_value_heads": 16, "num_hidden_layers": 4, "vocab_size": 32000,
              "max_position_embeddings": 4096, "torch_dtype": dtype}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    report = rigsize.estimate(str(path))
    shown = json.dumps(dtype)
    assert report.assumptions["weights_reason"] == f"default (config torch_dtype {shown} unknown)"
    assert any(w.startswith(f"the config's torch_dtype {shown} is not one rigsize reads") for w in report.warnings)
    assert not any("torch_dtype" in w for w in rigsize.estimate(str(path), weights="bf16").warnings)
