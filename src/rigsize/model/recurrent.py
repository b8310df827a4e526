"""Recurrent (state-space) layers: Mamba 2 and Mamba 1 mixers, as ``transformers`` (5.x)
builds them, and the Mamba 2 model.  Hybrids that mix them with attention are
``rigsize.model.hybrid``.

A Mamba 2 layer keeps no KV cache.  Each sequence carries a fixed-size state per layer
(``transformers`` cache_utils ``LinearAttentionLayer``, filled by ``Mamba2Mixer``):

* conv state: ``(conv_dim, conv_kernel)`` with ``conv_dim = intermediate + 2 * n_groups
  * state_size``, in the model dtype;
* SSM state: ``(num_heads, head_dim, state_size)``, kept in fp32 by the mixer.

Dao & Gu 2024, "Transformers are SSMs" (arXiv:2405.21060) sec. 7 / Listing 1 for the
block (in_proj -> conv1d -> SSD -> gated RMSNorm -> out_proj); the exact tensors follow
modeling_mamba2.py ``Mamba2Mixer.__init__``.

A Mamba 1 layer (Gu & Dao 2023, "Mamba", arXiv:2312.00752, Algorithm 2: the selective
scan with input-dependent dt, B, C) keeps per sequence a conv state ``(d_inner,
d_conv)`` in the model dtype and an SSM state ``(d_inner, d_state)``, fp32 in
``transformers``' scan (A is fp32, so the scanned state is).
"""

from __future__ import annotations

from dataclasses import dataclass

from rigsize.errors import ModelError
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config
from rigsize.model.tensors import Tensor, linear_rows, norm_rows
from rigsize.planning import limits

MODEL_TYPES: tuple[str, ...] = ("mamba2",)


@dataclass(frozen=True)
class Mamba2Dims:
    """The widths of one Mamba 2 mixer (configuration_mamba2.py names)."""

    hidden: int
    intermediate: int        # expand * hidden
    num_heads: int
    head_dim: int
    state_size: int
    n_groups: int
    conv_kernel: int
    use_bias: bool
    use_conv_bias: bool

    @property
    def conv_dim(self) -> int:
        return self.intermediate + 2 * self.n_groups * self.state_size

    @property
    def conv_state_elements(self) -> int:
        return self.conv_dim * self.conv_kernel

    @property
    def ssm_state_elements(self) -> int:
        return self.num_heads * self.head_dim * self.state_size


def mamba2_dims(cfg: Config, hidden: int) -> Mamba2Dims:
    """Mamba2Config's fields with its class defaults (configuration_mamba2.py)."""
    expand = cfg.int("expand", default=2)
    dims = Mamba2Dims(
        hidden=hidden, intermediate=int(expand * hidden), num_heads=cfg.int("num_heads", default=128),
        head_dim=cfg.int("head_dim", default=64), state_size=cfg.int("state_size", default=128),
        n_groups=cfg.int("n_groups", default=8), conv_kernel=cfg.int("conv_kernel", default=4),
        use_bias=cfg.bool("use_bias", False), use_conv_bias=cfg.bool("use_conv_bias", True))
    if dims.intermediate != dims.num_heads * dims.head_dim:
        raise ModelError("model.bad_field", field="num_heads", value=dims.num_heads,
                         why=f"num_heads * head_dim must equal expand * hidden_size ({dims.intermediate})")
    if dims.intermediate % dims.n_groups:
        raise ModelError("model.bad_field", field="n_groups", value=dims.n_groups,
                         why=f"must divide the mixer width ({dims.intermediate})")
    return dims


def mamba2_mixer(prefix: str, d: Mamba2Dims, i: int) -> list[Tensor]:
    """``Mamba2Mixer``: in_proj (z, x, B, C, dt), depthwise conv1d, dt_bias, A_log, D,
    the gated RMSNorm and out_proj."""
    rows = linear_rows(f"{prefix}.in_proj", "ssm_in", d.intermediate + d.conv_dim + d.num_heads, d.hidden,
                       d.use_bias, i)
    rows.append(Tensor(f"{prefix}.conv1d.weight", "ssm_conv", (d.conv_dim, 1, d.conv_kernel), i))
    if d.use_conv_bias:
        rows.append(Tensor(f"{prefix}.conv1d.bias", "ssm_conv", (d.conv_dim,), i))
    rows += [Tensor(f"{prefix}.{n}", "other", (d.num_heads,), i) for n in ("dt_bias", "A_log", "D")]
    rows += norm_rows(f"{prefix}.norm", d.intermediate, False, i)
    rows += linear_rows(f"{prefix}.out_proj", "ssm_out", d.hidden, d.intermediate, d.use_bias, i)
    return rows


@dataclass(frozen=True)
class Mamba1Dims:
    """The widths of one Mamba 1 mixer (JambaConfig's ``mamba_*`` names)."""

    hidden: int
    intermediate: int        # mamba_expand * hidden (d_inner)
    state_size: int          # mamba_d_state
    conv_kernel: int         # mamba_d_conv
    dt_rank: int             # mamba_dt_rank ("auto": ceil(hidden / 16))
    use_bias: bool           # mamba_proj_bias: in_proj and out_proj
    use_conv_bias: bool

    @property
    def conv_state_elements(self) -> int:
        return self.intermediate * self.conv_kernel

    @property
    def ssm_state_elements(self) -> int:
        return self.intermediate * self.state_size


def jamba_mamba_dims(cfg: Config, hidden: int) -> Mamba1Dims:
    """JambaConfig's Mamba fields with its class defaults (configuration_jamba.py)."""
    rank = cfg.get("mamba_dt_rank", "auto")
    return Mamba1Dims(
        hidden=hidden, intermediate=cfg.int("mamba_expand", default=2) * hidden,
        state_size=cfg.int("mamba_d_state", default=16), conv_kernel=cfg.int("mamba_d_conv", default=4),
        dt_rank=-(-hidden // 16) if rank == "auto" else cfg.int("mamba_dt_rank"),
        use_bias=cfg.bool("mamba_proj_bias", False), use_conv_bias=cfg.bool("mamba_conv_bias", True))


def jamba_mamba_mixer(prefix: str, d: Mamba1Dims, i: int) -> list[Tensor]:
    """``JambaMambaMixer``: in_proj (x, z), depthwise conv1d, x_proj (dt, B, C), dt_proj
    (always biased), A_log (d_inner x d_state), D, out_proj, and Jamba's RMSNorms on dt,
    B and C (modeling_jamba.py ``JambaMambaMixer.__init__``)."""
    rows = linear_rows(f"{prefix}.in_proj", "ssm_in", 2 * d.intermediate, d.hidden, d.use_bias, i)
    rows.append(Tensor(f"{prefix}.conv1d.weight", "ssm_conv", (d.intermediate, 1, d.conv_kernel), i))
    if d.use_conv_bias:
        rows.append(Tensor(f"{prefix}.conv1d.bias", "ssm_conv", (d.intermediate,), i))
    rows += linear_rows(f"{prefix}.x_proj", "ssm_x", d.dt_rank + 2 * d.state_size, d.intermediate, False, i)
    rows += linear_rows(f"{prefix}.dt_proj", "ssm_dt", d.intermediate, d.dt_rank, True, i)
    rows += [Tensor(f"{prefix}.A_log", "other", (d.intermediate, d.state_size), i),
             Tensor(f"{prefix}.D", "other", (d.intermediate,), i)]
    rows += linear_rows(f"{prefix}.out_proj", "ssm_out", d.hidden, d.intermediate, d.use_bias, i)
    rows += norm_rows(f"{prefix}.dt_layernorm", d.dt_rank, False, i)
    rows += norm_rows(f"{prefix}.b_layernorm", d.state_size, False, i)
    rows += norm_rows(f"{prefix}.c_layernorm", d.state_size, False, i)
    return rows


def mamba2(cfg: Config) -> Architecture:
    """Mamba2ForCausalLM: embeddings, ``Mamba2Block`` (RMSNorm + mixer) per layer, norm_f,
    lm_head (untied unless tie_word_embeddings; the class default is False)."""
    h = cfg.int("hidden_size", maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=32768, maximum=limits.MAX_VOCAB)
    d = mamba2_dims(cfg, h)
    rows = [Tensor("backbone.embeddings.weight", "embed", (vocab, h))]
    for i in range(n):
        p = f"backbone.layers.{i}"
        rows += norm_rows(f"{p}.norm", h, False, i)
        rows += mamba2_mixer(f"{p}.mixer", d, i)
    rows += norm_rows("backbone.norm_f", h, False, None)
    tied = cfg.bool("tie_word_embeddings", False)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=0,
        num_key_value_heads=0, head_dim=0, vocab_size=vocab, intermediate_size=0,
        max_position_embeddings=None, tie_word_embeddings=tied, tensors=tuple(rows),
        kv_elements_per_token=0, layer_windows=(None,) * n,
        layer_types=("linear_attention",) * n,    # Mamba2Config.layer_types
        conv_state_elements=n * d.conv_state_elements, ssm_state_elements=n * d.ssm_state_elements,
        conv_kernel=d.conv_kernel,
    )


# Hugging Face layer_types values of layers with a recurrent state (Nemotron-H's "mlp" and
# "moe" layers have neither state nor KV)
RECURRENT_LAYER_TYPES = frozenset({"linear_attention", "mamba", "hybrid"})      # hybrid: Falcon-H1


def recurrent_layers(arch: Architecture) -> tuple[int, ...]:
    """The layers that carry a recurrent state instead of a KV cache."""
    return tuple(i for i, kind in enumerate(arch.layer_types) if kind in RECURRENT_LAYER_TYPES)


def state_bytes_per_sequence(arch: Architecture, conv_bits: int = 16, ssm_bits: int = 32,
                             layers: range | None = None, tp: int = 1) -> int:
    """Recurrent state of one sequence: conv state at ``conv_bits`` (transformers: the
    model dtype) and SSM state at ``ssm_bits`` (transformers' Mamba2Mixer: fp32), over
    ``layers`` (default all), split over ``tp`` ranks (vLLM MambaMixer2 shards the heads
    and the conv channels over tensor parallelism)."""
    mine = recurrent_layers(arch)
    if not mine:
        return 0
    share = len(mine) if layers is None else sum(1 for i in mine if i in layers)
    bits = (arch.conv_state_elements * conv_bits + arch.ssm_state_elements * ssm_bits) * share // len(mine)
    return -(-bits // (8 * tp))
