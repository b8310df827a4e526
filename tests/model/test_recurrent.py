"""Mamba 2 against ``transformers`` itself (5.x): parameters on the meta device (exact),
and the recurrent state its cache allocates for a tiny model run on CPU (exact shapes
and dtypes: conv state in the model dtype, SSM state in fp32).

The real config is a Mamba-2 780M checkpoint's declaration as a public test quotes it
(code-index id 60432393774: 48 layers, hidden 1536, vocab 50288, state 128, 48 heads of
64, n_groups 1, tied embeddings).
"""

from __future__ import annotations

import warnings

import pytest
from _hf import meta_param_count

from rigsize.model.architecture import layer_type_counts
from rigsize.model.families import build_architecture
from rigsize.model.formats import kv_bytes_per_token, resolve_kv_format
from rigsize.model.recurrent import state_bytes_per_sequence

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

MAMBA2_780M = {"model_type": "mamba2", "num_hidden_layers": 48, "hidden_size": 1536, "vocab_size": 50288,
               "state_size": 128, "num_heads": 48, "head_dim": 64, "expand": 2, "conv_kernel": 4, "n_groups": 1,
               "chunk_size": 256, "use_bias": False, "use_conv_bias": True, "hidden_act": "silu",
               "layer_norm_epsilon": 1e-5, "residual_in_fp32": True, "tie_word_embeddings": True}
TINY = {"model_type": "mamba2", "hidden_size": 64, "num_heads": 8, "head_dim": 16, "state_size": 16, "n_groups": 2,
        "num_hidden_layers": 3, "vocab_size": 100, "expand": 2, "conv_kernel": 4}


def test_real_mamba2_config_param_count_equals_transformers() -> None:
    arch = build_architecture(MAMBA2_780M)
    assert arch.params == meta_param_count(MAMBA2_780M)
    assert 7.5e8 < arch.params < 8.0e8                          # "780M"
    assert layer_type_counts(arch) == {"linear_attention": 48, "moe_mlp": 0, "dense_mlp": 0}


def _cache_states(cfg: dict, dtype: torch.dtype, batch: int) -> list[tuple[tuple, torch.dtype, tuple, torch.dtype]]:
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    kwargs = {k: v for k, v in cfg.items() if k != "model_type"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model("mamba2", pad_token_id=None, **kwargs))
        model = model.to(dtype).eval()
        with torch.no_grad():
            out = model(torch.ones((batch, 5), dtype=torch.long), use_cache=True)
    rows = []
    for layer in out.past_key_values.layers:
        conv, rec = layer.conv_states[0], layer.recurrent_states[0]
        rows.append((tuple(conv.shape), conv.dtype, tuple(rec.shape), rec.dtype))
    return rows


@pytest.mark.parametrize("dtype, conv_bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_state_per_sequence_equals_what_the_cache_allocates(dtype: torch.dtype, conv_bits: int) -> None:
    rows = _cache_states(TINY, dtype, batch=2)
    assert len(rows) == TINY["num_hidden_layers"]
    allocated = 0
    for conv_shape, conv_dtype, rec_shape, rec_dtype in rows:
        assert conv_dtype == dtype and rec_dtype == torch.float32      # SSM state in fp32 whatever the model
        allocated += (torch.Size(conv_shape).numel() * conv_dtype.itemsize
                      + torch.Size(rec_shape).numel() * rec_dtype.itemsize)
    arch = build_architecture(TINY)
    assert 2 * state_bytes_per_sequence(arch, conv_bits, 32) == allocated
    # conv (128 + 2*2*16 = 192 channels x kernel 4) + ssm (8 heads x 16 x 16) per layer
    assert rows[0][0] == (2, 192, 4) and rows[0][2] == (2, 8, 16, 16)


def test_mamba2_has_no_kv_cache_and_a_fixed_state() -> None:
    arch = build_architecture(MAMBA2_780M)
    assert kv_bytes_per_token(arch, resolve_kv_format("bf16")) == 0
    per_layer = (1536 * 2 + 2 * 128) * 4 * 2 + 48 * 64 * 128 * 4     # conv bf16 + ssm fp32
    assert state_bytes_per_sequence(arch) == 48 * per_layer
    # vLLM keeps both in the model dtype by default (CacheConfig.mamba_cache_dtype "auto")
    assert state_bytes_per_sequence(arch, 16, 16, tp=2) == 48 * ((1536 * 2 + 256) * 4 + 48 * 64 * 128) * 2 // 2


def test_memory_carries_the_recurrent_state_not_kv() -> None:
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.memory.per_gpu import memory_per_gpu
    from rigsize.memory.runtime import engine_for
    from rigsize.model.formats import resolve_weight_format
    from rigsize.planning.layout import Layout, Workload

    arch = build_architecture(MAMBA2_780M)
    gpu = resolve_gpu("H100")
    res = memory_per_gpu(arch, Workload(task="inference", batch=8, seq=4096), Layout(), gpu,
                         resolve_weight_format("bf16"), resolve_kv_format("bf16"), engine_for(gpu), 0.9)
    p = res.per_gpu
    assert p.kv_cache == 0
    assert p.recurrent_state == 8 * state_bytes_per_sequence(arch, 16, 16)
    assert p.total == p.weights + p.activations + p.overhead + p.recurrent_state
