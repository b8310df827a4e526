"""Speculative decoding with a model's own MTP layers (--speculative mtp, issue 20): the option, the
draft's weights and KV cache as vLLM 0.33.0 holds them, and its refusals.

Expected values are worked by hand from DeepSeek-V3's config.json (the preset, a copy of the Hub file)
and the rules read from the vLLM 0.33.0 wheel (memory/per_gpu.py cites each), not from rigsize's own
layer lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigsize.errors import InputError
from rigsize.model.inputs import preset_config, resolve_model
from rigsize.model.mtp import mtp_module
from rigsize.planning.estimate import estimate

H200 = dict(gpu="H200-SXM-141GB")
C = preset_config("deepseek-v3")


def _mtp_params_held(c: dict) -> int:
    """One DeepSeek-V3 MTP layer as vLLM's DeepSeekMultiTokenPredictorLayer holds it, by hand from the
    config: MLA attention, the MoE block (router + routed + shared experts), two layer norms, eh_proj
    (2h -> h) and enorm, hnorm, shared_head.norm; its embed_tokens and shared_head.head are replaced by
    the target's (llm_base_proposer.py _maybe_share_*).  e_score_correction_bias is a buffer in
    transformers and is not counted here, as in params."""
    h, i, e = c["hidden_size"], c["moe_intermediate_size"], c["n_routed_experts"]
    q, kv, nh = c["q_lora_rank"], c["kv_lora_rank"], c["num_attention_heads"]
    nope, rope, vd = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    attn = h * q + q + q * nh * (nope + rope) + h * (kv + rope) + kv + kv * nh * (nope + vd) + nh * vd * h
    moe = e * h + e * 3 * i * h + c["n_shared_experts"] * 3 * i * h
    return attn + moe + 2 * h + 2 * h * h + 3 * h


def _run(**kw):
    return estimate("deepseek-v3", **H200, **kw).model_dump()


def test_params_mtp_is_the_held_layer_plus_its_own_embedding_and_head() -> None:
    arch = resolve_model("deepseek-v3").arch
    h, v = C["hidden_size"], C["vocab_size"]
    assert arch.params_mtp == _mtp_params_held(C) + 2 * v * h
    module = mtp_module(arch)
    assert module is not None and module.layers == C["num_nextn_predict_layers"] == 1
    assert sum(t.numel for t in module.tensors) == _mtp_params_held(C)


def test_mtp_weights_in_bf16_on_one_gpu_are_the_held_params_times_two_bytes() -> None:
    base = _run(gpus=1, tp=1, weights="bf16")["memory"]["per_gpu"]["weights"]
    spec = _run(gpus=1, tp=1, weights="bf16", speculative="mtp")
    assert spec["memory"]["per_gpu"]["weights"] - base == _mtp_params_held(C) * 2     # 23,220,135,936 bytes
    assert spec["memory"]["details"]["weights/mtp_layers"] == _mtp_params_held(C) * 2


def test_mtp_weights_in_fp8_block_at_tp8_by_hand() -> None:
    """DeepSeek-V3's own fp8 checkpoint (128x128 tiles, one fp32 scale each) at tp 8: every linear
    weight of the layer in fp8 split 8 ways (whole tiles per shard), except the replicated MLA
    down-projections q_a and kv_a; norms and the router in 16 bits (router weight) replicated;
    eh_proj an unsharded bf16 nn.Linear (deepseek_mtp.py)."""
    h, i, e = C["hidden_size"], C["moe_intermediate_size"], C["n_routed_experts"]
    q, kv, nh = C["q_lora_rank"], C["kv_lora_rank"], C["num_attention_heads"]
    nope, rope, vd = C["qk_nope_head_dim"], C["qk_rope_head_dim"], C["v_head_dim"]

    def fp8(rows: int, cols: int, shards: int = 1) -> float:     # bytes of one shard: elements + tile scales
        return (rows * cols + 4 * -(-rows // 128) * -(-cols // 128)) / shards

    linear = (fp8(q, h) + fp8(kv + rope, h)                         # q_a, kv_a: replicated
              + fp8(nh * (nope + rope), q, 8) + fp8(nh * (nope + vd), kv, 8) + fp8(h, nh * vd, 8)
              + (e + C["n_shared_experts"]) * (2 * fp8(i, h, 8) + fp8(h, i, 8)))
    kept = 2 * (q + kv + 2 * h + e * h + 3 * h + 2 * h * h)        # norms, router, eh_proj: bf16, whole
    base = _run(gpus=8)["memory"]["per_gpu"]["weights"]
    spec = _run(gpus=8, speculative="mtp")["memory"]["per_gpu"]["weights"]
    assert spec - base == pytest.approx(linear + kept, abs=8)       # 1,661,046,944 bytes


def test_mtp_layers_sit_on_the_last_pipeline_stage_only() -> None:
    base = _run(gpus=2, tp=1, pp=2)["memory"]["per_stage"]
    spec = _run(gpus=2, tp=1, pp=2, speculative="mtp")["memory"]["per_stage"]
    assert spec[0]["per_gpu"]["weights"] == base[0]["per_gpu"]["weights"]
    assert spec[-1]["per_gpu"]["weights"] > base[-1]["per_gpu"]["weights"]


def test_kv_tokens_with_the_mtp_layer_by_hand() -> None:
    """MLA caches kv_lora_rank + qk_rope_head_dim values per token and layer (bf16: 1,152 bytes), on
    every TP rank; the MTP layer's joins the target's 61 in each 64-token block (FlashMLA)."""
    per_layer = (C["kv_lora_rank"] + C["qk_rope_head_dim"]) * 2
    for kw, layers in (({}, C["num_hidden_layers"]), ({"speculative": "mtp"},
                                                      C["num_hidden_layers"] + C["num_nextn_predict_layers"])):
        m = _run(gpus=8, **kw)["memory"]
        parts = m["per_gpu"]
        pool = int(m["usable_bytes"]) - (parts["total"] - parts["kv_cache"])
        assert m["kv_cache_tokens"] == pool // (layers * per_layer * 64) * 64
    # the reported numbers: 722,112 tokens without the draft, 687,232 with it (8x H200, fp8 weights, bf16 KV)
    assert _run(gpus=8)["memory"]["kv_cache_tokens"] > _run(gpus=8, speculative="mtp")["memory"]["kv_cache_tokens"]


def test_hybrid_state_per_sequence_grows_with_draft_tokens(tmp_path: Path) -> None:
    """Qwen3-Next: vLLM keeps 1 + num_speculative_tokens recurrent states per sequence
    (MambaSpec.num_speculative_blocks, 0.33.0 wheel); its MTP layer is one more full-attention layer."""
    cfg = preset_config("qwen3-next-80b-a3b")
    cfg["mtp_num_hidden_layers"] = 1        # as in the Hub config.json of Qwen/Qwen3-Next-80B-A3B-Instruct
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    kw = dict(gpus=2, tp=2, batch=4, **H200)
    state = [estimate(str(path), **kw, **o).model_dump()["memory"]["per_gpu"]["recurrent_state"]
             for o in ({}, {"speculative": "mtp", "acceptance_rate": 0.8},
                       {"speculative": "mtp", "speculative_tokens": 3, "acceptance_rate": 0.8})]
    assert state[1] == 2 * state[0] and state[2] == 4 * state[0]


@pytest.mark.parametrize("kw, expect", [
    (dict(model="llama-3.1-8b", speculative="mtp"), "has no MTP layers (params_mtp = 0); DeepSeek-V3"),
    (dict(speculative="mtp", task="lora"), "--speculative applies to inference tasks"),
    (dict(speculative="mtp", engine="transformers"), "transformers does not run a model's MTP layers"),
    (dict(speculative="mtp", engine="llamacpp"), "llamacpp does not run a model's MTP layers"),
    (dict(speculative_tokens=2), "--speculative-tokens needs --speculative mtp"),
    (dict(acceptance_rate=0.7), "--acceptance-rate needs --speculative mtp"),
    (dict(speculative="mtp", speculative_tokens=2), "no published acceptance rate for model_type deepseek_v3"),
    (dict(speculative="mtp", engine_version="0.10.2"), "older than 0.11.2"),
    (dict(speculative="mtp", speculative_tokens=4, acceptance_rate=0.5, max_num_batched_tokens=4, max_num_seqs=1),
     "needs --max-num-batched-tokens above it"),
])
def test_refusals_are_one_line(kw: dict, expect: str) -> None:
    model = kw.pop("model", "deepseek-v3")
    with pytest.raises(InputError) as err:
        estimate(model, gpus=8, **H200, **kw)
    assert expect in str(err.value) and "\n" not in str(err.value)
