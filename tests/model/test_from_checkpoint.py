"""Any model on the Hub: a model_type rigsize does not lay out is sized from its
checkpoint's safetensors headers (rigsize.model.from_checkpoint), weights exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rigsize
from rigsize.model.from_checkpoint import architecture_from_checkpoint

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def _unknown_checkpoint(folder: Path, model_cls: str, **cfg: object) -> int:
    """A tiny transformers model saved with an unknown model_type; its parameter count."""
    import transformers
    from safetensors.torch import save_file

    config = getattr(transformers, f"{model_cls}Config")(**cfg)
    model = getattr(transformers, f"{model_cls}ForCausalLM")(config)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if "rotary" not in k}
    save_file(state, folder / "model.safetensors")
    raw = config.to_dict()
    raw["model_type"] = "not_a_laid_out_type"
    (folder / "config.json").write_text(json.dumps(raw))
    return sum(p.numel() for p in model.parameters())


def test_unknown_model_type_is_sized_from_its_checkpoint(tmp_path: Path) -> None:
    count = _unknown_checkpoint(tmp_path, "Llama", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
    r = rigsize.estimate(str(tmp_path), gpu="L4")
    assert r.model.params == count                       # torch's own count of the saved model
    assert r.model.kv_bytes_per_token == 2 * 2 * 2 * 16 * 2   # layers x K,V x KV heads x head_dim x bf16
    assert any("not laid out by rigsize" in w for w in r.warnings)
    # names map to roles: q/k/v/o, gate/up/down, norms, embedding and head
    assert r.model.breakdown.get("attention", 0) == 2 * (64 * 64 * 2 + 64 * 32 * 2)


def test_gpt2_style_names_map_to_roles() -> None:
    shapes = {"transformer.wte.weight": (100, 64), "transformer.wpe.weight": (32, 64),
              "transformer.h.0.attn.c_attn.weight": (64, 192), "transformer.h.0.attn.c_proj.weight": (64, 64),
              "transformer.h.0.mlp.c_fc.weight": (64, 256), "transformer.h.0.ln_1.weight": (64,)}
    arch = architecture_from_checkpoint({"model_type": "x", "n_layer": 1, "n_embd": 64, "n_head": 4}, shapes)
    roles = {t.name.split(".")[-2]: t.role for t in arch.tensors}
    assert roles == {"wte": "embed", "wpe": "pos_embed", "c_attn": "attn_qkv", "c_proj": "attn_o",
                     "c_fc": "mlp_up", "ln_1": "norm"}
    assert arch.tie_word_embeddings and arch.params == sum(a * b for a, b in [(100, 64), (32, 64), (64, 192),
                                                                                  (64, 64), (64, 256)]) + 64


def test_without_a_checkpoint_it_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "not_a_laid_out_type", "hidden_size": 8}))
    with pytest.raises(rigsize.RigsizeError, match="safetensors headers size it"):
        rigsize.estimate(str(tmp_path / "config.json"))


def test_moe_checkpoint_counts_its_active_experts() -> None:
    """Experts per token from the config: 8 experts of 6,144 parameters in each of 2 layers,
    2 per token, so the active count drops 6/8 of the routed weights; a fused (experts, out,
    in) tensor counts the same way."""
    from rigsize.model.architecture import active_params

    shapes = {"model.embed_tokens.weight": (100, 64), "lm_head.weight": (100, 64)}
    for i in range(2):
        for e in range(8):
            shapes[f"model.layers.{i}.mlp.experts.{e}.gate_proj.weight"] = (32, 64)
            shapes[f"model.layers.{i}.mlp.experts.{e}.up_proj.weight"] = (32, 64)
            shapes[f"model.layers.{i}.mlp.experts.{e}.down_proj.weight"] = (64, 32)
    cfg = {"model_type": "x", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
           "num_experts_per_tok": 2}
    arch = architecture_from_checkpoint(cfg, shapes)
    routed = 2 * 8 * 3 * 64 * 32
    assert (arch.num_experts, arch.experts_per_token, arch.moe_layers) == (8, 2, (0, 1))
    assert active_params(arch) == arch.params - routed + routed * 2 // 8
    fused = architecture_from_checkpoint({**cfg, "num_hidden_layers": 1}, {
        "model.embed_tokens.weight": (100, 64), "model.layers.0.mlp.experts.gate_up_proj": (8, 64, 64),
        "model.layers.0.mlp.experts.down_proj": (8, 64, 32)})
    assert fused.params == 6400 + 8 * 64 * 64 + 8 * 64 * 32
    assert active_params(fused) == 6400 + 2 * (64 * 64 + 64 * 32)
