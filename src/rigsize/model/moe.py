"""Mixture-of-experts layers: where each family's config keeps its expert numbers
(``MOE``, with the config classes' defaults), which layers are sparse, and the router,
routed-expert and shared-expert tensors of one MoE layer as ``transformers`` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigsize.errors import ModelError
from rigsize.model.hf_config import Config, Flag, Num
from rigsize.model.tensors import Tensor, linear_rows
from rigsize.planning import limits


@dataclass(frozen=True)
class MoeSpec:
    """Where a family's config keeps its MoE numbers, with the config class's defaults."""

    experts: Num                 # routed experts per MoE layer (0 = a dense model)
    top_k: Num
    inter: Num                   # width of one routed expert
    layers: str = "all"           # which layers are sparse: "all" | "qwen" | "deepseek" | "ernie" | "llama4" | "jamba"
    first_dense: int = 0          # "deepseek": first_k_dense_replace when absent
    shared: Num | None = None    # shared-expert width (None: no shared expert)
    shared_per_expert: bool = False   # ``shared`` counts experts of ``inter`` width (DeepSeek, ERNIE)
    shared_name: str = "shared_experts"
    shared_gate: bool = False     # Qwen2-MoE's sigmoid gate (1 x hidden) on the shared expert
    shared_bias: Flag = False    # DeepSeek-V2 (mlp_bias) and ERNIE (use_bias) bias the shared expert
    shared_at_zero: bool = False  # DeepSeek builds a 0-wide shared MLP too (its down_proj bias remains)
    router: str = "gate"
    router_bias: bool = False     # gpt-oss
    expert_bias: bool = False     # gpt-oss: every expert's gate/up and down have biases
    score_bias: bool = False      # ERNIE 4.5: e_score_correction_bias is a parameter (1 x experts)


# Keys come first as the config class spells them, then as its attribute_map accepts them.
MOE: dict[str, MoeSpec] = {
    "mixtral": MoeSpec((("num_local_experts", "num_experts"), 8), ("num_experts_per_tok", 2),
                        ("intermediate_size", 14336)),
    # modeling_qwen2_moe.py: the shared expert and its sigmoid gate are always built
    "qwen2_moe": MoeSpec((("num_experts", "num_local_experts"), 60), ("num_experts_per_tok", 4),
                          ("moe_intermediate_size", 1408), layers="qwen",
                          shared=("shared_expert_intermediate_size", 5632), shared_name="shared_expert",
                          shared_gate=True),
    "qwen3_moe": MoeSpec((("num_local_experts", "num_experts"), 128), ("num_experts_per_tok", 8),
                          ("moe_intermediate_size", 768), layers="qwen"),
    # modeling_qwen3_next.py Qwen3NextSparseMoeBlock: Qwen2-MoE's shared expert and sigmoid gate
    "qwen3_next": MoeSpec((("num_experts", "num_local_experts"), 512), ("num_experts_per_tok", 10),
                           ("moe_intermediate_size", 512), layers="qwen",
                           shared=("shared_expert_intermediate_size", 512), shared_name="shared_expert",
                           shared_gate=True),
    "deepseek_v2": MoeSpec((("n_routed_experts", "num_experts"), 64), ("num_experts_per_tok", None),
                            ("moe_intermediate_size", 1407), layers="deepseek", shared=("n_shared_experts", 2),
                            shared_per_expert=True, shared_bias="mlp_bias", shared_at_zero=True),
    "deepseek_v3": MoeSpec((("n_routed_experts", "num_local_experts"), 256), ("num_experts_per_tok", 8),
                            ("moe_intermediate_size", 2048), layers="deepseek", first_dense=3,
                            shared=("n_shared_experts", 1), shared_per_expert=True),
    "glm4_moe": MoeSpec((("n_routed_experts", "num_local_experts"), 128), ("num_experts_per_tok", 8),
                         ("moe_intermediate_size", 1408), layers="deepseek", first_dense=1,
                         shared=("n_shared_experts", 1), shared_per_expert=True),
    "olmoe": MoeSpec((("num_experts", "num_local_experts"), 64), ("num_experts_per_tok", 8),
                      ("intermediate_size", 2048)),
    "granitemoe": MoeSpec(("num_local_experts", 8), ("num_experts_per_tok", 2), ("intermediate_size", 11008),
                           router="router"),
    "granitemoeshared": MoeSpec(("num_local_experts", 8), ("num_experts_per_tok", 2),
                                 ("intermediate_size", 11008), router="router",
                                 shared=("shared_intermediate_size", 0), shared_name="shared_mlp"),
    "phimoe": MoeSpec(("num_local_experts", 16), ("num_experts_per_tok", 2), ("intermediate_size", 6400),
                       router="router"),
    "dbrx": MoeSpec(("ffn_config.moe_num_experts", 4), ("ffn_config.moe_top_k", 1),
                     ("ffn_config.ffn_hidden_size", 3584), router="router.layer"),
    # modeling_hunyuan_v1_moe.py: experts and the shared MLP are intermediate_size wide
    "hunyuan_v1_moe": MoeSpec((("num_experts", "num_local_experts"), 1), (("moe_topk", "num_experts_per_tok"), 1),
                               ("intermediate_size", 11008), shared=("intermediate_size", 11008),
                               shared_name="shared_mlp", router="gate.wg"),
    "ernie4_5_moe": MoeSpec((("moe_num_experts", "num_experts"), 64), (("moe_k", "num_experts_per_tok"), 6),
                             ("moe_intermediate_size", 1536), layers="ernie", shared=("moe_num_shared_experts", 2),
                             shared_per_expert=True, shared_bias="use_bias", score_bias=True),
    "gpt_oss": MoeSpec((("num_local_experts", "num_experts"), 128), ("num_experts_per_tok", 4),
                        ("intermediate_size", 2880), router="router", router_bias=True, expert_bias=True),
    # modeling_llama4.py: Llama4TextMoe = routed experts + one shared expert, both intermediate_size wide
    "llama4_text": MoeSpec(("num_local_experts", 16), ("num_experts_per_tok", 1), ("intermediate_size", 8192),
                            layers="llama4", shared=("intermediate_size", 8192), shared_name="shared_expert",
                            router="router"),
    # modeling_jamba.py: JambaSparseMoeBlock (router + fused experts) where layers_num_experts > 1
    "jamba": MoeSpec((("num_experts", "num_local_experts"), 16), ("num_experts_per_tok", 2),
                      ("intermediate_size", 14336), layers="jamba", router="router"),
}
MOE["deepseek_v32"] = MOE["deepseek_v3"]


@dataclass(frozen=True)
class Moe:
    """A family's MoE as this config sets it."""

    spec: MoeSpec
    num_experts: int
    top_k: int
    expert_inter: int
    sparse_layers: frozenset[int]
    shared_inter: int = 0            # total width of the shared expert(s), 0 if none
    shared_bias: bool = False


def _sparse_layers(cfg: Config, spec: MoeSpec, n_layers: int) -> frozenset[int]:
    """The MoE layers, as each family's decoder layer decides (see the modeling files)."""
    rule, layers = spec.layers, range(n_layers)
    if rule == "qwen":      # modeling_qwen2_moe.py: not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0
        step = cfg.int("decoder_sparse_step", default=1)
        listed = cfg.get("mlp_only_layers", [])
        if not isinstance(listed, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in listed):
            raise ModelError("model.bad_field", field="mlp_only_layers", value=listed, why="must be a list of layer indices")
        only_dense = set(listed)
        return frozenset(i for i in layers if i not in only_dense and (i + 1) % step == 0)
    if rule == "deepseek":  # every layer from first_k_dense_replace on (moe_layer_freq is ignored),
        kinds = cfg.get("mlp_layer_types")   # unless DeepSeek-V3.2 lists the kinds
        if cfg.model_type == "deepseek_v32" and isinstance(kinds, list) and len(kinds) == n_layers:
            return frozenset(i for i in layers if kinds[i] == "sparse")
        first_dense = cfg.int("first_k_dense_replace", default=spec.first_dense, minimum=0)
        return frozenset(range(first_dense, n_layers))
    if rule == "ernie":     # modeling_ernie4_5_moe.py
        step = cfg.int("moe_layer_interval", default=1)
        start = cfg.int("moe_layer_start_index", default=1, minimum=0)
        end = cfg.int("moe_layer_end_index", default=-1, minimum=-1)
        end = n_layers - 1 if end == -1 else end
        return frozenset(i for i in layers if (i + 1) % step == 0 and start <= i <= end)
    if rule == "llama4":    # configuration_llama4.py: moe_layers, else every interleave_moe_layer_step-th
        listed = cfg.get("moe_layers")
        if isinstance(listed, list):
            return frozenset(i for i in layers if i in listed)
        step = cfg.int("interleave_moe_layer_step", default=1)
        return frozenset(range(step - 1, n_layers, step))
    if rule == "jamba":     # configuration_jamba.py layers_num_experts: i % expert_layer_period == offset
        period = cfg.int("expert_layer_period", default=2)
        offset = cfg.int("expert_layer_offset", default=1, minimum=0)
        if offset >= period:
            raise ModelError("model.bad_field", field="expert_layer_offset", value=offset,
                             why=f"must be smaller than expert_layer_period ({period})")
        return frozenset(i for i in layers if i % period == offset)
    return frozenset(layers)


def moe_of(cfg: Config, spec: MoeSpec | None, n_layers: int) -> Moe | None:
    if spec is None:
        return None
    e = cfg.number(spec.experts, maximum=limits.MAX_EXPERTS)
    if e == 0:
        return None
    inter = cfg.number(spec.inter, minimum=1)
    shared = 0 if spec.shared is None else cfg.number(spec.shared)
    if spec.shared_per_expert:
        shared *= inter
    return Moe(spec, e, cfg.number(spec.top_k, minimum=1, maximum=e), inter,
                _sparse_layers(cfg, spec, n_layers), shared, cfg.flag(spec.shared_bias))


def moe_block(prefix: str, h: int, moe: Moe, i: int) -> list[Tensor]:
    """Router, routed experts (transformers 5 fuses them into 3-D tensors; the count is the
    same) and shared experts of one MoE layer."""
    spec, e, inter = moe.spec, moe.num_experts, moe.expert_inter
    rows = linear_rows(f"{prefix}.{spec.router}", "router", e, h, spec.router_bias, i)
    if spec.score_bias:
        rows.append(Tensor(f"{prefix}.{spec.router}.moe_statics.e_score_correction_bias", "router", (1, e), i))
    for name, role, shape in (("gate_proj", "expert_gate", (inter, h)), ("up_proj", "expert_up", (inter, h)),
                              ("down_proj", "expert_down", (h, inter))):
        rows.append(Tensor(f"{prefix}.experts.{name}", role, shape, i, e))
        if spec.expert_bias:
            rows.append(Tensor(f"{prefix}.experts.{name}_bias", role, shape[:1], i, e))
    if spec.shared is not None and (moe.shared_inter or (spec.shared_at_zero and moe.shared_bias)):
        rows += _shared_mlp(f"{prefix}.{spec.shared_name}", h, moe.shared_inter, moe.shared_bias, i)
    if spec.shared_gate:
        rows.append(Tensor(f"{prefix}.shared_expert_gate.weight", "other", (1, h), i))
    return rows


def _shared_mlp(prefix: str, h: int, inter: int, bias: bool, i: int) -> list[Tensor]:
    """The shared expert(s): one gated MLP (gate, up, down) of ``inter`` width, as the
    families' modeling files build it (e.g. DeepseekV3MLP, Qwen2MoeMLP)."""
    return (linear_rows(f"{prefix}.gate_proj", "shared_gate", inter, h, bias, i)
            + linear_rows(f"{prefix}.up_proj", "shared_up", inter, h, bias, i)
            + linear_rows(f"{prefix}.down_proj", "shared_down", h, inter, bias, i))
