"""Pipeline stages: each stage holds its own parts (first: embedding; last: final norm,
lm_head, logits and loss; middle: neither), layers split as Megatron-LM and vLLM do.

Expected values come from outside the code under test:
- by hand, from a GPT-2-style config's shapes (12h^2 + 13h parameters per layer, the
  paper's GPT layer) and Korthikanti et al. 2022 (arXiv:2205.05198) sec. 4.1/4.3 for the
  activations of each stage;
- from PyTorch: a tiny Llama model cut into stages on CPU, each stage's forward pass run
  alone (middle and last stages receive a hidden state that requires grad, as a pipeline
  stage does), the bytes autograd saves counted with ``saved_tensors_hooks``;
- from the engines' documented rules (vLLM ``get_pp_indices``; Megatron-LM's argument
  checks), quoted next to each case.
"""

from __future__ import annotations

import json

import pytest

import rigsize
from rigsize.errors import RigsizeError
from rigsize.memory.activations import activation_bytes
from rigsize.model.families import build_architecture
from rigsize.planning.layout import Layout, pipeline_stages, stage_sizes

H, HEADS, LAYERS, VOCAB, POS, S = 1024, 16, 16, 50304, 2048, 2048


def _gpt_config(tmp_path) -> str:
    cfg = {"model_type": "gpt2", "n_embd": H, "n_head": HEADS, "n_layer": LAYERS, "n_positions": POS,
           "vocab_size": VOCAB, "tie_word_embeddings": True}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


# ---- layer splits ---------------------------------------------------------------------

@pytest.mark.parametrize(("layers", "pp", "expected"), [
    # vLLM get_pp_indices: even split, remainder to the stages before the last, from the
    # second-to-last backwards (vllm/distributed/utils.py)
    (32, 4, [8, 8, 8, 8]),
    (30, 4, [7, 8, 8, 7]),
    (61, 8, [7, 7, 8, 8, 8, 8, 8, 7]),
    (80, 3, [27, 27, 26]),
])
def test_vllm_split(layers: int, pp: int, expected: list[int]) -> None:
    assert stage_sizes(layers, pp) == expected
    assert sum(expected) == layers


def test_megatron_end_stages() -> None:
    # Llama 3 405B: 126 layers over 16 stages with one layer fewer on the first and last
    # (Llama 3 paper, sec. 3.3.2): 7 + 14 x 8 + 7
    assert stage_sizes(126, 16, first=7, last=7) == [7] + [8] * 14 + [7]
    # DeepSeek-V3's 61 layers, Megatron-Bridge style first stage of 13 on pp=4: 13 + 3 x 16
    assert stage_sizes(61, 4, first=13) == [13, 16, 16, 16]


def test_megatron_refuses_uneven_split() -> None:
    with pytest.raises(RigsizeError, match="does not divide the 32 layers"):
        rigsize.estimate("llama-3.1-8b", task="pretrain", tp=1, pp=3, micro_batch=1, global_batch=6)
    with pytest.raises(RigsizeError, match="do not split evenly"):
        rigsize.estimate("llama-3.1-8b", task="pretrain", tp=1, pp=3, pp_first_layers=9, micro_batch=1,
                         global_batch=6)
    r = rigsize.estimate("llama-3.1-8b", task="pretrain", tp=1, pp=3, pp_first_layers=10, pp_last_layers=10,
                         micro_batch=1, global_batch=6)
    assert [s.num_layers for s in r.memory.per_stage] == [10, 12, 10]


def test_inference_splits_as_vllm() -> None:
    r = rigsize.estimate("llama-3.1-70b", pp=3, tp=1, gpu="H200-SXM-141GB")    # 80 layers
    assert [(s.first_layer, s.num_layers) for s in r.memory.per_stage] == [(0, 27), (27, 27), (54, 26)]
    assert [s.role for s in r.memory.per_stage] == ["first", "middle", "last"]


# ---- each stage's parts, by hand --------------------------------------------------------

PER_LAYER_PARAMS = 12 * H * H + 13 * H          # GPT-2 block: ln_1, c_attn, c_proj, ln_2, c_fc, c_proj
EMBED = VOCAB * H
POS_EMBED = POS * H
FINAL_NORM = 2 * H
MEGATRON_STATE_BYTES = 2 + 4 + 12               # bf16 weights, fp32 main grads, fp32 master + Adam moments


@pytest.mark.parametrize("pp", [2, 4, 8])
def test_stage_states_by_hand(tmp_path, pp: int) -> None:
    """Weights, gradients and optimizer state of every stage: the first holds the
    embeddings, the last the final norm and (tied) a copy of the embedding, as
    Megatron-LM keeps it for the output layer; a middle stage holds its layers only."""
    micro, m = 1, 2 * pp
    r = rigsize.estimate(_gpt_config(tmp_path), task="pretrain", framework="megatron", tp=1, pp=pp, dp=1,
                         micro_batch=micro, global_batch=m, seq=S, recompute="none")
    layers = LAYERS // pp
    for st in r.memory.per_stage:
        params = layers * PER_LAYER_PARAMS
        if st.role == "first":
            params += EMBED + POS_EMBED
        if st.role == "last":
            params += FINAL_NORM + EMBED
        states = st.per_gpu.weights + st.per_gpu.gradients + st.per_gpu.optimizer
        assert states == pytest.approx(params * MEGATRON_STATE_BYTES, abs=8), st


@pytest.mark.parametrize("pp", [2, 4, 8])
def test_stage_activations_by_hand(tmp_path, pp: int) -> None:
    """Korthikanti et al. 2022 with flash attention and no recomputation, tp = 1: each
    layer keeps 34sbh bytes plus an fp32 logsumexp per head and token (sec. 4.1, the
    5as^2b score term replaced); stage s keeps pp - s micro-batches in flight (sec.
    4.2.3, 1F1B); the first stage adds the embedding dropout mask sbh per in-flight
    micro-batch, the last the final norm and output-layer inputs 4sbh and the fp32
    logits 4sbv (sec. 4.3); a middle stage neither."""
    b, m = 1, 2 * pp
    r = rigsize.estimate(_gpt_config(tmp_path), task="pretrain", framework="megatron", tp=1, pp=pp, dp=1,
                         micro_batch=b, global_batch=m, seq=S, recompute="none")
    per_layer = 34 * S * b * H + 4 * S * b * HEADS
    for st in r.memory.per_stage:
        in_flight = pp - st.stage
        expected = st.num_layers * per_layer * in_flight
        if st.role == "first":
            expected += in_flight * S * b * H
        if st.role == "last":
            expected += 4 * S * b * H + 4 * S * b * VOCAB
        assert st.per_gpu.activations == pytest.approx(expected, rel=1e-6), st


def test_busiest_stage_is_reported(tmp_path) -> None:
    r = rigsize.estimate(_gpt_config(tmp_path), task="pretrain", framework="megatron", tp=1, pp=4, dp=1,
                         micro_batch=1, global_batch=8, seq=S, recompute="none")
    totals = [s.per_gpu.total for s in r.memory.per_stage]
    assert r.memory.busiest_stage == totals.index(max(totals))
    assert r.memory.per_gpu.total == max(totals)


def test_issue_example_middle_stages_hold_no_logits() -> None:
    """qwen2.5-0.5b, pp=4, 8 x 8192 tokens per micro-batch: the logits (fp32, 151,936
    vocabulary) live on the last stage only, so the first stage, with four micro-batches
    in flight, is the busiest and it fits an H100."""
    r = rigsize.estimate("qwen2.5-0.5b", task="pretrain", tp=1, pp=4, micro_batch=8, global_batch=64, seq=8192,
                         recompute="selective")
    logits = 4 * 8 * 8192 * 151936                     # 4sbv bytes
    by_role = {s.role: s for s in r.memory.per_stage}
    assert by_role["middle"].per_gpu.activations < logits
    assert by_role["last"].per_gpu.activations > logits
    assert r.memory.busiest_stage == 0 and r.memory.fits


# ---- each stage against PyTorch --------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

TINY = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=8, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=512, max_position_embeddings=1024)


def _tiny_llama():
    import warnings

    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = AutoConfig.for_model("llama", **TINY)
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")
    return model.to(torch.bfloat16).train(), {**cfg.to_dict(), **TINY, "model_type": "llama"}


def _measure_stage(model, layers: range, first: bool, last: bool, batch: int, seq: int) -> int:
    """Bytes autograd saves in one stage's forward pass, once per storage, parameters
    excluded; the received hidden state is counted like any other tensor (a real stage
    keeps the activation it received alive for backward)."""
    inner = model.model
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    torch.manual_seed(1)
    ids = torch.randint(0, TINY["vocab_size"], (batch, seq))
    received = None
    if not first:
        received = torch.randn(batch, seq, TINY["hidden_size"], dtype=torch.bfloat16, requires_grad=True)
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen.setdefault(s.data_ptr(), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        h = inner.embed_tokens(ids) if first else received
        pos = torch.arange(seq)[None]
        pe = inner.rotary_emb(h, pos)
        for i in layers:
            h = inner.layers[i](h, attention_mask=None, position_ids=pos, position_embeddings=pe)
            h = h[0] if isinstance(h, tuple) else h
        if last:
            logits = model.lm_head(inner.norm(h))
            loss = model.loss_function(logits=logits, labels=ids, vocab_size=TINY["vocab_size"])
            del loss, logits
    del h
    return sum(seen.values())


@pytest.mark.parametrize("pp", [2, 4, 8])
def test_stages_match_torch_saved_tensors(pp: int) -> None:
    model, cfg = _tiny_llama()
    arch = build_architecture(cfg)
    batch, seq = 2, 64
    for st in pipeline_stages(TINY["num_hidden_layers"], Layout(pp=pp)):
        measured = _measure_stage(model, st.layers, st.first, st.last, batch, seq)
        est = activation_bytes(arch, micro_batch=batch, seq=seq, impl="hf", attn="flash", pp=pp, layers=st.layers,
                               first=st.first, last=st.last, in_flight_microbatches=1)
        assert abs(est.total - measured) <= 0.05 * measured, (pp, st.role, est.total, measured)
        if not st.last:
            assert est.logits_and_loss == 0
