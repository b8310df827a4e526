"""What each recomputation mode runs again (speed.training.recompute_share, _op_sac_params).

Expected values are hand arithmetic on the published shapes of Llama 3.1 8B (config.json:
hidden 4096, 8 KV heads x 128, intermediate 14336, 32 layers) and on torchtitan's policy
(every second aten.mm of a block recomputed: wk, wo, w3 of wq, wk, wv, wo, w1, w3, w2)."""

from __future__ import annotations

from dataclasses import replace

from rigsize.memory.frameworks import defaults
from rigsize.model.inputs import resolve_model
from rigsize.planning.layout import Layout, Workload
from rigsize.speed.training import _op_sac_params, flop_parts, recompute_share, step_flops

LLAMA_8B_RECOMPUTED = 32 * (4096 * 1024 + 4096 * 4096 + 4096 * 14336)   # wk + wo + w3 per layer


def _arch():
    return resolve_model("llama-3.1-8b").arch


def test_torchtitan_op_sac_reruns_every_second_mm_of_a_block() -> None:
    dense, expert = _op_sac_params(_arch())
    assert dense == LLAMA_8B_RECOMPUTED == 2_550_136_832
    assert expert == 0


def test_torchtitan_selective_charges_the_rerun_mms_not_the_attention_core() -> None:
    arch = _arch()
    work = Workload(task="pretrain", batch=1, seq=8192, global_batch=1, framework="torchtitan")
    none, selective = (step_flops(arch, work, Layout(recompute=r)) for r in ("none", "selective"))
    assert none[0] == selective[0]                                # model FLOPs do not change
    assert selective[1] - none[1] == 8192 * 2 * LLAMA_8B_RECOMPUTED
    assert flop_parts(arch, work, Layout(recompute="selective"))["attention"] == \
        flop_parts(arch, work, Layout())["attention"]


def test_megatron_selective_reruns_the_attention_core_only() -> None:
    arch = _arch()
    work = Workload(task="pretrain", batch=1, seq=8192, global_batch=1, framework="megatron")
    assert recompute_share(arch, work, Layout(recompute="selective")) == (0.0, 0.0, 1.0)
    none, selective = (flop_parts(arch, work, Layout(recompute=r)) for r in ("none", "selective"))
    assert selective["linear"] == none["linear"]
    assert selective["attention"] == none["attention"] * 4 / 3


def test_torchtitan_every_nth_block_reruns_that_share_whole() -> None:
    arch = _arch()
    recipe = replace(defaults("torchtitan", "pretrain"), selective_ac="3")
    work = Workload(task="pretrain", batch=1, seq=8192, global_batch=1, framework="torchtitan", recipe=recipe)
    assert recompute_share(arch, work, Layout(recompute="selective")) == (10 / 32, 10 / 32, 10 / 32)


def test_full_recompute_is_one_more_forward_of_everything() -> None:
    arch = _arch()
    work = Workload(task="pretrain", batch=1, seq=8192, global_batch=1, framework="torchtitan")
    none, full = (step_flops(arch, work, Layout(recompute=r)) for r in ("none", "full"))
    n = 8_030_261_248 - 128256 * 4096          # Llama 3.1 8B's parameters less the input embedding lookup
    attn = 12 * 32 * 4096 * 8192                # PaLM's 12 L H Q T
    assert full[1] - none[1] == 8192 * (2 * n + attn / 3)


def test_the_rerun_mms_follow_the_forward_not_the_tensor_list() -> None:
    # a checkpoint folder lists a layer's tensors by name (k_proj, o_proj, q_proj, v_proj; down, gate, up): the
    # count must still run q, k, v, o, gate, up, down.  DeepSeek-V3 (config.json: hidden 7168, q_lora 1536,
    # kv_lora 512 + rope 64, 128 heads x (128 + 64) q and x (128 + 128) kv_b, o 128 x 128 -> 7168; router
    # 256 x 7168; one shared expert of 2048): the forward q_a, q_b, kv_a, kv_b, o, router, shared w1, w3, w2 reruns
    # the 2nd, 4th, 6th and 8th: q_b + kv_b + router + shared up; its 3 dense layers (q_a, q_b, kv_a, kv_b, o,
    # gate, up, down of 18432) rerun q_b + kv_b + gate + down
    arch = _arch()
    shuffled = replace(arch, tensors=tuple(sorted(arch.tensors, key=lambda t: t.name)))
    assert _op_sac_params(shuffled)[0] == LLAMA_8B_RECOMPUTED
    ds = resolve_model("deepseek-v3").arch
    moe_layers = 61 - 3
    per_layer = 1536 * 128 * 192 + 512 * 128 * 256 + 7168 * 256 + 7168 * 2048
    dense_layers = 3 * (1536 * 128 * 192 + 512 * 128 * 256 + 2 * 7168 * 18432)
    assert _op_sac_params(ds)[0] == moe_layers * per_layer + dense_layers
