"""Activation bytes (``rigsize.memory.activations``) against PyTorch and against Korthikanti et al. 2022.

hf: the expected values are measured, not derived.  Each case builds a tiny model with
``AutoModelForCausalLM.from_config`` (transformers 5.x, CPU, ``model.to(torch.bfloat16)``,
``attn_implementation`` set explicitly), runs one forward pass with labels inside
``torch.autograd.graph.saved_tensors_hooks`` and sums ``untyped_storage().nbytes()`` once
per storage of every tensor autograd saves, skipping parameter storages.  Under gradient
checkpointing the checkpoints also hold their inputs outside autograd, so those cases
count every storage still alive after the forward pass (a ``TorchDispatchMode`` that
records each op's outputs), minus the logits and loss the caller holds.  Tolerance: 5%
(the accounting is exact on every case below).

megatron: the expected values are the closed forms and numbers printed in Korthikanti
et al. 2022, arXiv:2205.05198 (Table 2, eqs. 1-5, sec. 4.3, sec. 5, Figure 7), for the
model configurations of their Table 3.

Also: the gradient and AdamW state bytes of the same tiny models, measured after one
optimizer step, written to ``tests/fixtures/torch_training_state_bytes.json`` for the
memory model's tests (regenerate with ``python tests/test_activations_vs_torch.py
--write-fixture``; print the per-case errors with ``--report``).
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rigsize.memory.activations import LoraSpec, activation_bytes
from rigsize.model.architecture import Architecture
from rigsize.model.families import build_architecture

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

FIXTURE = Path(__file__).parents[1] / "fixtures" / "torch_training_state_bytes.json"
TOLERANCE = 0.05
SIZES = [(1, 64), (2, 128), (4, 256)]

_BASE = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=512, max_position_embeddings=1024)

# name -> (model_type, config overrides, attn_implementation)
MODELS: dict[str, tuple[str, dict, str]] = {
    "llama_gqa": ("llama", {}, "sdpa"),
    "llama_gqa_eager": ("llama", {}, "eager"),
    "qwen3_head_dim": ("qwen3", dict(head_dim=48, intermediate_size=192), "sdpa"),
    "mixtral": ("mixtral", dict(num_local_experts=4, num_experts_per_tok=2, intermediate_size=160), "sdpa"),
    "qwen3_moe": ("qwen3_moe", dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=96,
                                    norm_topk_prob=True, head_dim=32), "sdpa"),
    "gemma2_tied_eager": ("gemma2", dict(head_dim=32), "eager"),
}

# name -> (base model, LoraSpec); the adapters cover every linear layer of the base model
LORA: dict[str, tuple[str, LoraSpec]] = {
    "llama_lora_bf16": ("llama_gqa", LoraSpec(rank=8, adapter_bits=16)),
    "llama_lora_fp32": ("llama_gqa", LoraSpec(rank=8, adapter_bits=32)),          # PEFT's default on bf16
    "llama_lora_qv_eager": ("llama_gqa_eager", LoraSpec(targets=frozenset({"q_proj", "v_proj"}), rank=8)),
    "llama_lora_dropout": ("llama_gqa", LoraSpec(rank=8, dropout=True)),
}
CPU_MASK_BITS = 16   # torch's CPU dropout keeps its mask in the input dtype (CUDA: 8-bit bool)


# ---- building the tiny models ----------------------------------------------------------

def _config_dict(name: str) -> dict:
    from transformers import AutoConfig

    model_type, over, _ = MODELS[name]
    kwargs = {**_BASE, **over}
    # The explicit kwargs are merged back: transformers 5 renames some keys in to_dict()
    # (num_experts -> num_local_experts) that rigsize reads under the Hub's names.
    return {**AutoConfig.for_model(model_type, **kwargs).to_dict(), **kwargs, "model_type": model_type}


@functools.cache
def _arch(name: str) -> Architecture:
    return build_architecture(_config_dict(name))


def _build(name: str):
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model_type, over, attn = MODELS[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = AutoConfig.for_model(model_type, **{**_BASE, **over})
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn)
    return model.to(torch.bfloat16).train()


class _LoraLinear(torch.nn.Module):
    """PEFT's ``lora.Linear.forward`` without PEFT: ``base(x) + B(A(dropout(x))) * scaling``,
    the input cast to the adapter dtype first, the result cast back."""

    def __init__(self, base: torch.nn.Linear, rank: int, dropout: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Linear(base.in_features, rank, bias=False, dtype=dtype)
        self.lora_B = torch.nn.Linear(rank, base.out_features, bias=False, dtype=dtype)
        torch.nn.init.normal_(self.lora_B.weight)   # nonzero so that nothing is trivially zero
        self.dropout = torch.nn.Dropout(dropout) if dropout else torch.nn.Identity()
        self.scaling = 2.0

    def forward(self, x):
        result = self.base(x)
        out_dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)
        return (result + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling).to(out_dtype)


def _with_lora(model, spec: LoraSpec, use_peft: bool = False):
    dtype = torch.float32 if spec.adapter_bits == 32 else torch.bfloat16
    targets = sorted(spec.targets & {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    if use_peft:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=spec.rank, lora_alpha=2 * spec.rank, target_modules=targets,
                                                 lora_dropout=0.1 if spec.dropout else 0.0))
        if spec.adapter_bits == 16:
            model.to(torch.bfloat16)
        return model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear) and child_name in targets:
                setattr(parent, child_name, _LoraLinear(child, spec.rank, 0.1 if spec.dropout else 0.0, dtype))
    return model.train()


@functools.cache
def _model(name: str):
    if name in LORA:
        base, spec = LORA[name]
        return _with_lora(_build(base), spec)
    return _build(name)


def _arch_and_spec(name: str) -> tuple[Architecture, LoraSpec | None, str]:
    base, spec = LORA.get(name, (name, None))
    attn = "eager" if MODELS[base][2] == "eager" else "flash"
    return _arch(base), spec, attn


# ---- measuring ---------------------------------------------------------------------------

def measure_saved_bytes(model, batch: int, seq: int) -> int:
    """Bytes autograd saves for backward in one forward pass with labels, once per storage,
    parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(input_ids=ids, labels=ids)
    del out
    return sum(seen.values())


def measure_held_bytes(model, batch: int, seq: int) -> int:
    """Bytes of every storage an op produced during one forward pass and still alive after
    it (saved tensors, checkpoint inputs...), parameters excluded, minus the logits and
    loss the caller holds."""
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Track(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.storages: dict[int, tuple[StorageWeakRef, int]] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    s = t.untyped_storage()
                    self.storages[s.data_ptr()] = (StorageWeakRef(s), s.nbytes())
            return out

    torch.manual_seed(1)
    track = Track()
    with track:
        ids = torch.randint(0, model.config.vocab_size, (batch, seq))
        out = model(input_ids=ids, labels=ids)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}   # views of weights, e.g. W.t()
    live = sum(n for ptr, (ref, n) in track.storages.items() if not ref.expired() and ptr not in params)
    return live - out.logits.untyped_storage().nbytes() - out.loss.untyped_storage().nbytes()


def _rel_err(estimate: int, measured: int) -> float:
    return (estimate - measured) / measured


# ---- hf: no recomputation, every family, several sizes ---------------------------------

_CASES = [(name, b, s) for name in [*MODELS, *LORA] for b, s in SIZES]


@pytest.mark.parametrize(("name", "batch", "seq"), _CASES)
def test_hf_matches_saved_tensors(name: str, batch: int, seq: int) -> None:
    arch, spec, attn = _arch_and_spec(name)
    mask_bits = CPU_MASK_BITS if spec is not None and spec.dropout else 8
    est = activation_bytes(arch, micro_batch=batch, seq=seq, impl="hf", attn=attn, lora=spec, mask_bits=mask_bits)
    measured = measure_saved_bytes(_model(name), batch, seq)
    err = _rel_err(est.total, measured)
    assert abs(err) <= TOLERANCE, f"{name} b={batch} s={seq}: estimate {est.total} vs measured {measured} ({err:+.2%})"


def test_hf_attention_dropout_eager() -> None:
    """Eager attention with ``attention_dropout > 0`` keeps a dropout mask per score."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = {**_BASE, "attention_dropout": 0.1}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model("llama", **cfg), attn_implementation="eager")
    model = model.to(torch.bfloat16).train()
    arch = build_architecture({**AutoConfig.for_model("llama", **cfg).to_dict(), "model_type": "llama"})
    est = activation_bytes(arch, micro_batch=2, seq=64, attn="eager", dropout=True, mask_bits=CPU_MASK_BITS)
    measured = measure_saved_bytes(model, 2, 64)
    assert abs(_rel_err(est.total, measured)) <= TOLERANCE


def test_hand_rolled_lora_saves_what_peft_saves() -> None:
    """The LoRA cases use a wrapper that mirrors PEFT's forward; PEFT itself saves the same."""
    pytest.importorskip("peft")
    for name, (base, spec) in LORA.items():
        ours = measure_saved_bytes(_model(name), 2, 64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peft = measure_saved_bytes(_with_lora(_build(base), spec, use_peft=True), 2, 64)
        assert ours == peft, name


def test_hooks_and_live_storages_agree_without_recompute() -> None:
    """The two measurements agree when nothing is checkpointed (checks the live tracker)."""
    model = _model("llama_gqa")
    assert measure_held_bytes(model, 2, 64) == measure_saved_bytes(model, 2, 64)


# ---- hf: full recomputation (HF gradient checkpointing) -----------------------------------

@pytest.mark.parametrize("name", ["llama_gqa", "gemma2_tied_eager", "mixtral"])
@pytest.mark.parametrize(("batch", "seq"), SIZES[:2])
def test_hf_full_recompute_holds_layer_inputs(name: str, batch: int, seq: int) -> None:
    """``gradient_checkpointing_enable()`` (non-reentrant, per decoder layer): after the
    forward pass only each layer's input (plus what lives outside the layers) is held; the
    working set re-materialised during one layer's backward is that layer's activations
    without recomputation (checked by the test above), not measured here."""
    model = _build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.gradient_checkpointing_enable()
    arch, _, attn = _arch_and_spec(name)
    est = activation_bytes(arch, micro_batch=batch, seq=seq, attn=attn, recompute="full")
    held = measure_held_bytes(model, batch, seq)
    err = _rel_err(est.total - est.recompute_working_set, held)
    assert abs(err) <= TOLERANCE, f"{name}: {est.total - est.recompute_working_set} vs {held} ({err:+.2%})"
    none = activation_bytes(arch, micro_batch=batch, seq=seq, attn=attn)
    assert est.recompute_working_set == max(none.per_layer)


# ---- breakdown bookkeeping -----------------------------------------------------------------

@pytest.mark.parametrize("impl", ["hf", "megatron"])
@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_parts_sum_to_total(impl: str, recompute: str) -> None:
    for name in MODELS:
        r = activation_bytes(_arch(name), micro_batch=2, seq=128, impl=impl, recompute=recompute, pp=2)
        assert sum(r.parts.values()) == r.total
        assert r.layers == sum(r.per_layer) * r.in_flight_microbatches
        assert sum(r.layer_parts.values()) == sum(r.per_layer)


# ---- megatron: Korthikanti et al. 2022 -------------------------------------------------------

# Table 3 (s = 2048, v = 51200, tensor-parallel size 8): name -> (heads, hidden, layers, pp)
PAPER_TABLE3 = {
    "22B": (64, 6144, 48, 1),
    "175B": (96, 12288, 96, 8),
    "530B": (128, 20480, 105, 35),
    "1T": (160, 25600, 128, 64),
}
S, V, T = 2048, 51200, 8


@functools.cache
def _gpt(heads: int, hidden: int, layers: int) -> Architecture:
    """The paper's GPT layer (MHA, GeLU MLP of 4h, two LayerNorms) via GPT-2's config."""
    return build_architecture({"model_type": "gpt2", "n_embd": hidden, "n_head": heads, "n_layer": layers,
                               "n_positions": S, "vocab_size": V})


def _per_layer(arch: Architecture, **kw) -> float:
    r = activation_bytes(arch, micro_batch=1, seq=S, impl="megatron", layers_on_stage=1, in_flight_microbatches=1,
                         **kw)
    return r.per_layer[0]


@pytest.mark.parametrize("model", PAPER_TABLE3)
def test_megatron_table2_rows(model: str) -> None:
    """Table 2: activation bytes per transformer layer for each technique (b = 1)."""
    a, h, layers, _ = PAPER_TABLE3[model]
    arch = _gpt(a, h, 1)
    s, b, t = S, 1, T
    sbh = s * b * h
    rows = {
        "no parallelism (eq. 1)": (dict(attn="eager"), sbh * (34 + 5 * a * s / h)),
        "tensor parallel (eq. 2)": (dict(attn="eager", tp=t), sbh * (10 + 24 / t + 5 * a * s / (h * t))),
        "tensor + sequence parallel": (dict(attn="eager", tp=t, sp=True), sbh * (34 / t + 5 * a * s / (h * t))),
        "tp + selective recompute": (dict(attn="eager", tp=t, recompute="selective"), sbh * (10 + 24 / t)),
        "tp + sp + selective recompute": (dict(attn="eager", tp=t, sp=True, recompute="selective"), sbh * 34 / t),
        "full recompute": (dict(attn="eager", tp=t, recompute="full"), sbh * 2),
    }
    for row, (kw, expected) in rows.items():
        assert _per_layer(arch, **kw) == pytest.approx(expected, rel=1e-9, abs=8), row


@pytest.mark.parametrize("model", PAPER_TABLE3)
def test_megatron_first_stage_total_eq5_and_sec43(model: str) -> None:
    """Eq. 5 with the sec. 4.3 input/output terms: the first 1F1B stage holds
    ``(sbhL/t)(34 + 5as/h) + (sbhL/t)(p/L + delta_{p=1} (4/L)(1 + v/h))``."""
    a, h, layers, p = PAPER_TABLE3[model]
    arch = _gpt(a, h, layers)
    r = activation_bytes(arch, micro_batch=1, seq=S, impl="megatron", attn="eager", tp=T, sp=True, pp=p)
    sbhl_t = S * h * layers / T
    expected = sbhl_t * (34 + 5 * a * S / h) + sbhl_t * (p / layers + (4 / layers) * (1 + V / h) * (p == 1))
    assert r.total == pytest.approx(expected, rel=1e-6)
    assert r.in_flight_microbatches == p and len(r.per_layer) == layers // p + (layers % p > 0)


def test_megatron_sec5_selective_savings() -> None:
    """Sec. 5: 5as/h = 80 for GPT-3 and 64 for MT-NLG, so selective recomputation saves
    70% and 65% of the activation memory."""
    for model, coeff, saving in (("175B", 80, 0.70), ("530B", 64, 0.65)):
        a, h, _, _ = PAPER_TABLE3[model]
        assert 5 * a * S / h == coeff
        arch = _gpt(a, h, 1)
        none = _per_layer(arch, attn="eager", tp=T, sp=True)
        selective = _per_layer(arch, attn="eager", tp=T, sp=True, recompute="selective")
        assert 1 - selective / none == pytest.approx(saving, abs=0.005)


@pytest.mark.parametrize("model", PAPER_TABLE3)
def test_megatron_figure7_reductions(model: str) -> None:
    """Figure 7 and the abstract: sequence parallelism with selective recomputation
    brings activation memory to about a fifth of the tensor-parallel baseline ("5x"),
    full recomputation to about a tenth."""
    a, h, _, _ = PAPER_TABLE3[model]
    arch = _gpt(a, h, 1)
    baseline = _per_layer(arch, attn="eager", tp=T)
    both = _per_layer(arch, attn="eager", tp=T, sp=True, recompute="selective")
    full = _per_layer(arch, attn="eager", tp=T, recompute="full")
    assert 1 / 6.5 <= both / baseline <= 1 / 4.5
    assert 0.07 <= full / baseline <= 0.10


def test_megatron_pipeline_first_stage_holds_all_layers() -> None:
    """Sec. 4.2.3: under 1F1B the first stage keeps p micro-batches of L/p layers: L
    layers' worth, whatever p."""
    arch = _gpt(96, 12288, 96)
    layer_bytes = {p: activation_bytes(arch, micro_batch=1, seq=S, impl="megatron", tp=T, sp=True, pp=p).layers
                   for p in (1, 2, 4, 8, 16)}
    assert len(set(layer_bytes.values())) == 1


def test_megatron_gqa_swiglu_coefficient() -> None:
    """The 34 generalised term by term (sec. 4.1 list) for a Llama-3-8B-shaped layer:
    h = 4096, 32 heads, 8 KV heads of 128, SwiGLU I = 14336, no dropout, flash attention.
    Replicated 8 (two norm inputs 2+2, QKV input 2, fc1 input 2); split: Q 2 + K 0.5 +
    V 0.5 + o_proj input 2 = 5; fused SwiGLU input 2*2I/h = 14, fc2 input 2I/h = 7;
    fp32 logsumexp 4*32/4096 = 1/32.  Total 34 + 1/32."""
    arch = build_architecture({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
                               "num_key_value_heads": 8, "intermediate_size": 14336, "num_hidden_layers": 1,
                               "vocab_size": 128256})
    sbh = S * 4096
    got = _per_layer(arch, attn="flash", dropout=False)
    assert got == pytest.approx(sbh * (8 + 5 + 14 + 7 + 4 * 32 / 4096), rel=1e-9)


def test_megatron_context_parallel_divides_sequence() -> None:
    arch = _gpt(64, 6144, 1)
    one = _per_layer(arch, attn="flash", tp=T, sp=True)
    two = activation_bytes(arch, micro_batch=1, seq=S, impl="megatron", attn="flash", tp=T, sp=True, cp=2,
                           layers_on_stage=1, in_flight_microbatches=1).per_layer[0]
    assert two == pytest.approx(one / 2, rel=1e-9)


# ---- properties ------------------------------------------------------------------------------

_impls = st.sampled_from(["hf", "megatron"])
_recomputes = st.sampled_from(["none", "selective", "full"])
_attns = st.sampled_from(["flash", "eager"])
_names = st.sampled_from(sorted(MODELS))


@settings(max_examples=60, deadline=None)
@given(name=_names, impl=_impls, recompute=_recomputes, attn=_attns, b=st.integers(1, 64),
       s=st.integers(1, 32768), db=st.integers(0, 8), ds=st.integers(0, 4096))
def test_never_falls_as_batch_or_seq_grows(name, impl, recompute, attn, b, s, db, ds) -> None:
    arch = _arch(name)

    def total(bb: int, ss: int) -> int:
        return activation_bytes(arch, micro_batch=bb, seq=ss, impl=impl, recompute=recompute, attn=attn).total

    base = total(b, s)
    assert total(b + db, s) >= base
    assert total(b, s + ds) >= base


@settings(max_examples=60, deadline=None)
@given(name=_names, recompute=_recomputes, attn=_attns, b=st.integers(1, 16), s=st.integers(64, 16384),
       tp=st.sampled_from([1, 2, 4]), grow=st.sampled_from([2, 4]))
def test_never_rises_as_tp_grows_with_sp(name, recompute, attn, b, s, tp, grow) -> None:
    arch = _arch(name)

    def total(t: int) -> int:
        return activation_bytes(arch, micro_batch=b, seq=s, impl="megatron", recompute=recompute, attn=attn,
                                tp=t, sp=True).total

    assert total(tp * grow) <= total(tp)


@functools.cache
def _deep_arch(name: str) -> Architecture:
    return build_architecture({**_config_dict(name), "num_hidden_layers": 32})


@settings(max_examples=60, deadline=None)
@given(name=_names, impl=_impls, attn=_attns, b=st.integers(1, 16), s=st.integers(128, 16384),
       pp=st.sampled_from([1, 2, 4]))
def test_full_le_selective_le_none(name, impl, attn, b, s, pp) -> None:
    """On a 32-layer model.  Full recomputation still re-materialises one whole layer
    during its backward pass, so it only wins while that layer is smaller than what the
    other layers stop keeping: with eager attention the one layer's s x s scores grow
    faster than the others' 32sbh savings, hence the sequence cap for eager."""
    arch = _deep_arch(name)
    if attn == "eager":
        s = min(s, 2048)

    def total(recompute: str) -> int:
        return activation_bytes(arch, micro_batch=b, seq=s, impl=impl, recompute=recompute, attn=attn, pp=pp).total

    assert total("full") <= total("selective") <= total("none")


# ---- gradient and optimizer state bytes (fixture for the memory model) ----------------------

STATE_CASES = ["llama_gqa", "qwen3_head_dim", "mixtral", "qwen3_moe", "gemma2_tied_eager",
               "llama_lora_bf16", "llama_lora_fp32"]


def measure_training_state(name: str) -> dict:
    """Parameters, gradients and AdamW state after one step of ``torch.optim.AdamW``."""
    model = _with_lora(_build(LORA[name][0]), LORA[name][1]) if name in LORA else _build(name)
    params = list(model.parameters())   # deduplicated: tied weights once
    trainable = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (2, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    state = [opt.state[p] for p in trainable]
    return {
        "params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in trainable),
        "weight_bytes": sum(p.untyped_storage().nbytes() for p in params),
        "grad_bytes": sum(p.grad.untyped_storage().nbytes() for p in trainable),
        "optimizer_bytes": sum(s[k].untyped_storage().nbytes() for s in state for k in ("exp_avg", "exp_avg_sq")),
        "optimizer_step_bytes": sum(s["step"].untyped_storage().nbytes() for s in state),
        "param_dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in params}),
        "trainable_dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in trainable}),
    }


def _fixture_payload() -> dict:
    import transformers

    cases = {}
    for name in STATE_CASES:
        base, spec = LORA.get(name, (name, None))
        cases[name] = {"config": _config_dict(base), **measure_training_state(name)}
        if spec is not None:
            cases[name]["lora"] = {"targets": sorted(spec.targets & {"q_proj", "k_proj", "v_proj", "o_proj",
                                                                     "gate_proj", "up_proj", "down_proj"}),
                                   "rank": spec.rank, "adapter_bits": spec.adapter_bits}
    return {
        "about": "Measured after one torch.optim.AdamW step on tiny bf16 models built with "
                 "AutoModelForCausalLM.from_config; written by tests/test_activations_vs_torch.py. "
                 "weight_bytes: parameter storages (tied once); grad_bytes: .grad storages of trainable "
                 "parameters; optimizer_bytes: exp_avg + exp_avg_sq (parameter dtype); "
                 "optimizer_step_bytes: AdamW's fp32 scalar step per trainable tensor.",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "cases": cases,
    }


def test_training_state_fixture_is_current() -> None:
    fixture = json.loads(FIXTURE.read_text())
    if fixture["versions"]["torch"] != torch.__version__:
        pytest.skip(f"fixture measured with torch {fixture['versions']['torch']}")
    for name in STATE_CASES:
        measured = measure_training_state(name)
        for key, value in measured.items():
            assert fixture["cases"][name][key] == value, (name, key)


def test_training_state_is_what_adamw_keeps() -> None:
    """Sanity of the fixture itself: bf16 parameters, grads and both moments at 2 bytes each
    (full fine-tuning); LoRA trains the adapters only."""
    cases = json.loads(FIXTURE.read_text())["cases"]
    for name, c in cases.items():
        width = 4 if name.endswith("fp32") else 2
        assert c["grad_bytes"] == width * c["trainable_params"]
        assert c["optimizer_bytes"] == 2 * width * c["trainable_params"]
        if name not in LORA:
            assert c["trainable_params"] == c["params"] and c["weight_bytes"] == 2 * c["params"]
        else:
            assert c["trainable_params"] < c["params"] / 10


# ---- report / fixture writer ---------------------------------------------------------------

def _report() -> None:
    print(f"{'case':24s} {'b':>2s} {'s':>4s} {'measured':>10s} {'estimate':>10s} {'error':>8s}")
    for name, b, s in _CASES:
        arch, spec, attn = _arch_and_spec(name)
        mask_bits = CPU_MASK_BITS if spec is not None and spec.dropout else 8
        est = activation_bytes(arch, micro_batch=b, seq=s, attn=attn, lora=spec, mask_bits=mask_bits).total
        m = measure_saved_bytes(_model(name), b, s)
        print(f"{name:24s} {b:2d} {s:4d} {m:10d} {est:10d} {_rel_err(est, m):+8.3%}")


if __name__ == "__main__":
    if "--write-fixture" in sys.argv:
        FIXTURE.write_text(json.dumps(_fixture_payload(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {FIXTURE}")
    if "--report" in sys.argv:
        _report()
