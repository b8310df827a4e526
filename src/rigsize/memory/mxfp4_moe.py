"""vLLM's MXFP4 routed experts: the bytes its MoE kernels allocate beyond the checkpoint's.

The checkpoint stores each expert's w13 (gate+up) and w2 (down) as E2M1 pairs plus one
E8M0 scale per 32 inputs, biases in bf16 (``[weight.mxfp4]`` in data/formats.toml, which
``rigsize.model.formats`` counts).  vLLM's ``Mxfp4MoEMethod`` allocates them differently
by kernel backend (vllm/model_executor/layers/quantization/mxfp4.py, 0.10.2 and 0.14.1
wheels, read 2026-12-01; line numbers are the 0.14.1 file's):

- ``create_weights`` (l.255-330) pads the per-rank intermediate width (FusedMoE:
  ``intermediate_size // tp_size``, fused_moe/layer.py l.534) and the hidden size:
  Marlin ``round_up(I, 128)``, ``round_up(H, 256)``; FlashInfer on SM100 256 and 256;
  Triton ``round_up(I, 64)``, H as is.  w13 is [E, 2I, H/2] uint8 + [E, 2I, H/32] scales
  + [E, 2I] bf16 bias, w2 [E, H, I/2] + [E, H, I/32] + [E, H].
- ``process_weights_after_loading``: Marlin keeps that size (biases in the model dtype,
  scales e8m0: utils/marlin_utils_fp4.py prepare_moe_fp4_layer_for_marlin); FlashInfer
  SM100 turns the biases fp32 (l.469-470, 610-617); Triton (l.746-785) turns the biases
  fp32, swizzles values and scales into new tensors (utils/mxfp4_utils.py _swizzle_mxfp4)
  and deletes only the old values, so the unswizzled uint8 scales stay beside the
  swizzled copy.  The Hopper swizzles (vllm/third_party/triton_kernels, vendored in the
  0.14.1 wheel) pad values to 16 rows x 32 bytes (hopper_value.py swizzle_data, mma v3)
  and scales to 256 rows (hopper_scale.py: 2 * num_warps(8) * 2 * 8) x 2 columns.

Which backend runs is ``get_mxfp4_backend`` (l.107-174) on what a plain ``pip install
vllm==X`` brings (``backend``).  Parameter counts are untouched: this is memory only.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigsize.hardware.gpus import GPU
from rigsize.memory import runtime
from rigsize.model.tensors import Tensor
from rigsize.planning.layout import Layout


@dataclass(frozen=True)
class Backend:
    """How one MXFP4 MoE backend allocates a rank's experts (module docstring)."""

    name: str
    intermediate_align: int     # round_up of the per-rank intermediate width
    hidden_align: int           # round_up of the hidden size (1: none)
    bias_bytes: int             # 2: bf16 as loaded, 4: converted to fp32
    swizzled: bool              # Triton: Hopper-swizzled values and a second, swizzled copy of the scales


MARLIN = Backend("marlin", 128, 256, 2, False)
FLASHINFER_SM100 = Backend("flashinfer-sm100", 256, 256, 4, False)
TRITON = Backend("triton", 64, 1, 4, True)

# Data-centre Blackwell (compute capability 10.x: B200, GB200, B300, GB300) runs the SM100
# kernels; the catalog's other "blackwell" parts (RTX 50, RTX PRO 6000, DGX Spark) are 12.x
# (NVIDIA's CUDA GPU compute capability table), which vLLM sends to Marlin.
_SM100_PREFIXES = ("B200", "B300", "GB200", "GB300")
TRITON_VENDORED_SINCE = "0.12.0"      # vllm/third_party/triton_kernels in the wheel (PR #28788); 0.11.2's has none
FLASHINFER_REQUIRED_SINCE = "0.11.1"  # Requires-Dist flashinfer-python==0.5.2; in 0.11.0 an extra


def backend(gpu: GPU, eng: runtime.Engine) -> Backend | None:
    """The backend ``get_mxfp4_backend`` picks on ``gpu`` for a plain install of the version:
    Triton on Hopper once triton_kernels ships inside the wheel (before, no triton_kernels
    -> Marlin; the SM90 FlashInfer path needs VLLM_USE_FLASHINFER_MOE_MXFP4_BF16=1, envs.py
    default 0); FlashInfer on SM100 once flashinfer-python is a requirement (before,
    Marlin); Marlin below Hopper and on 12.x Blackwell (l.153-163: Triton only for
    9.0 <= capability < 11.0).  None off NVIDIA (ROCm's rule is not modelled)."""
    newest = eng.serving != "vllm"    # SGLang / TensorRT-LLM: sized by the newest vLLM's rule
    arch = gpu.architecture
    if arch == "hopper":
        return TRITON if newest or runtime.version_at_least(eng, TRITON_VENDORED_SINCE) else MARLIN
    if arch == "blackwell" and gpu.name.upper().startswith(_SM100_PREFIXES):
        return FLASHINFER_SM100 if newest or runtime.version_at_least(eng, FLASHINFER_REQUIRED_SINCE) else MARLIN
    if arch in ("blackwell", "ada", "ampere", "turing"):
        return MARLIN
    return None


def _up(x: int, m: int) -> int:
    return -(-x // m) * m


def rank_expert_bytes(experts: int, inter: int, hidden: int, b: Backend) -> int:
    """Bytes ``b`` allocates for one MoE layer's ``experts`` local experts of per-rank
    intermediate width ``inter`` and hidden size ``hidden``."""
    i, h = _up(inter, b.intermediate_align), _up(hidden, b.hidden_align)
    biases = experts * (2 * i + h) * b.bias_bytes
    scales = experts * 3 * i * h // 32                       # w13 [E, 2I, H/32] + w2 [E, H, I/32]
    if not b.swizzled:
        return experts * 3 * i * h // 2 + scales + biases   # w13 [E, 2I, H/2] + w2 [E, H, I/2]
    values = experts * (_up(2 * i, 16) * _up(h // 2, 32) + _up(h, 16) * _up(i // 2, 32))
    copy = experts * (_up(2 * i, 256) * _up(h // 32, 2) + _up(h, 256) * _up(i // 32, 2))
    return values + scales + copy + biases


def padding_bytes(tensors: list[Tensor], layout: Layout, b: Backend, counted: int) -> int:
    """What ``b`` allocates for the routed experts among ``tensors`` (one rank), less
    ``counted``, the bytes rigsize's format already gave those tensors."""
    total = 0
    for t in tensors:
        if t.role == "expert_gate" and len(t.shape) == 2:     # one per MoE layer: [I, H] x E
            inter, hidden = t.shape
            total += rank_expert_bytes(t.count // layout.ep, inter // layout.expert_tp, hidden, b)
    return max(0, total - counted) if total else 0
