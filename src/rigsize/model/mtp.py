"""A checkpoint's multi-token-prediction (MTP) layers as a serving engine loads them for
speculative decoding (``params_mtp`` counts them; ``params`` does not).

vLLM 0.33.0 builds the draft from the target's own checkpoint (``--speculative-config
'{"method": "mtp", ...}'``) and, once loaded, replaces the draft's embedding and output head
by the target's (``llm_base_proposer.py`` ``_maybe_share_embeddings`` / ``_maybe_share_lm_head``:
"Detected MTP model. Sharing target model embedding weights ... lm_head weights"), so a rank
holds per MTP layer one decoder layer plus the family's input projection and norms:

- DeepSeek-V3 / V3.2 (``deepseek_mtp.py`` ``DeepSeekMultiTokenPredictorLayer``): ``enorm``,
  ``hnorm``, ``eh_proj`` (``nn.Linear(2h, h)``: replicated on every rank, in the model dtype
  whatever the weight format), ``shared_head.norm`` and one ``DeepseekV2DecoderLayer`` (an MoE
  layer), as layer ``num_hidden_layers + j``;
- Qwen3-Next (``qwen3_next_mtp.py`` ``Qwen3NextMultiTokenPredictor``): ``fc``
  (``ColumnParallelLinear(2h, h)``, quantized like the rest), ``pre_fc_norm_embedding``,
  ``pre_fc_norm_hidden``, ``norm``, then ``num_nextn_predict_layers`` full-attention decoder
  layers.

Each decoder layer is the model's own last full-attention (MoE where the model has experts)
layer under another index; ``mtp_module`` checks that the pieces add up to ``params_mtp``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rigsize.model.architecture import Architecture
from rigsize.model.tensors import Tensor

# model_type -> the vLLM 0.33.0 MTP module read for it (see the module docstring)
_LAYOUTS = {"deepseek_v3": "deepseek", "deepseek_v32": "deepseek", "qwen3_next": "qwen3_next"}


@dataclass(frozen=True)
class MtpModule:
    """The MTP layers a rank of the last pipeline stage holds (embedding and head shared)."""

    layers: int                   # num_nextn_predict_layers
    tensors: tuple[Tensor, ...]   # the decoder layers (index num_hidden_layers + j) and the input projection
    shared_params: int            # the draft's own embedding and head, replaced by the target's (not held)


def mtp_layout(arch: Architecture) -> str | None:
    """The vLLM MTP module read for this model_type (None: not read, or no MTP layers)."""
    return _LAYOUTS.get(arch.model_type) if arch.params_mtp else None


def mtp_module(arch: Architecture) -> MtpModule | None:
    """The MTP layers of ``arch`` as vLLM 0.33.0 holds them, or None when the model has none
    or its family's MTP module was not read.  Memoized per architecture object (held in the
    cache, so its id cannot be reused): a search asks for it once per candidate."""
    hit = _MODULES.get(id(arch))
    if hit is not None and hit[0] is arch:
        return hit[1]
    value = _build(arch)
    if len(_MODULES) > 256:
        _MODULES.clear()
    _MODULES[id(arch)] = (arch, value)
    return value


_MODULES: dict[int, tuple[Architecture, MtpModule | None]] = {}


def _build(arch: Architecture) -> MtpModule | None:
    layout = mtp_layout(arch)
    if layout is None:
        return None
    experts = set(arch.moe_layers)
    ref = max((i for i in range(arch.num_hidden_layers) if arch.is_attention_layer(i)
               and (not arch.num_experts or i in experts)), default=None)
    if ref is None:
        return None
    layer = [t for t in arch.tensors if t.layer == ref]
    h, n = arch.hidden_size, arch.num_hidden_layers
    per_layer = sum(t.numel for t in layer)
    if layout == "deepseek":        # per layer: decoder layer, eh_proj, 3 norms, own embedding and head
        shared_per_layer = 2 * arch.vocab_size * h
        count, rest = divmod(arch.params_mtp, per_layer + 2 * h * h + 3 * h + shared_per_layer)
        shared = count * shared_per_layer
    else:                           # one fc and 3 norms, then the decoder layers
        count, rest = divmod(arch.params_mtp - 2 * h * h - 3 * h, per_layer)
        shared = 0
    if rest or count < 1:
        return None
    rows: list[Tensor] = []
    for j in range(count):
        rows += [replace(t, layer=n + j, name=t.name.replace(f"layers.{ref}.", f"layers.{n + j}.", 1))
                 for t in layer]
        if layout == "deepseek":
            rows += [Tensor(f"model.layers.{n + j}.eh_proj.weight", "other", (h, 2 * h), n + j),
                     Tensor(f"model.layers.{n + j}.enorm.weight", "norm", (h,), n + j),
                     Tensor(f"model.layers.{n + j}.hnorm.weight", "norm", (h,), n + j),
                     Tensor(f"model.layers.{n + j}.shared_head.norm.weight", "norm", (h,), n + j)]
    if layout == "qwen3_next":
        rows += [Tensor("mtp.fc.weight", "mlp_up", (h, 2 * h), n),
                 Tensor("mtp.pre_fc_norm_embedding.weight", "norm", (h,), n),
                 Tensor("mtp.pre_fc_norm_hidden.weight", "norm", (h,), n),
                 Tensor("mtp.norm.weight", "norm", (h,), n)]
    return MtpModule(layers=count, tensors=tuple(rows), shared_params=shared)
