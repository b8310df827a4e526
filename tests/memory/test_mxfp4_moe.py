"""vLLM's MXFP4 MoE layout (rigsize.memory.mxfp4_moe): gpt-oss-120b's weights per rank
against vLLM's own 'Model loading took X GiB' lines, and the padded sizes by hand."""

from __future__ import annotations

import pytest

import rigsize
from rigsize.hardware.gpus import resolve_gpu
from rigsize.memory import mxfp4_moe, runtime
from rigsize.units import GiB
from rigsize.validation.kv import vllm_logs

# gpt-oss-120b config.json: hidden_size 2880, intermediate_size 2880, num_local_experts 128,
# num_hidden_layers 36.  vLLM's figure is torch-allocated GiB after loading: every tensor it
# loads (attention, embeddings, lm_head, experts), so it checks the whole weights part.
H100_LOGS = [
    # (vLLM version, measured GiB, source)
    ("0.10.1", 65.9651, "vllm issue #23278 (Marlin, per its marlin_utils_fp4 warning), 1x H100"),
    ("0.14.1", 64.38, "vllm issue #33155 ('Using Triton backend'), 1x H100"),
]
# Reached: 65.897 (-0.10%) and 64.303 (-0.12%); before the layout was counted, 60.77 for both.
REL = 0.004


@pytest.mark.parametrize("version, measured, source", H100_LOGS)
def test_gpt_oss_120b_weights_match_vllm_on_one_h100(version: str, measured: float, source: str) -> None:
    r = rigsize.estimate("gpt-oss-120b", gpu="H100", engine_version=version)
    assert r.memory.per_gpu.weights / GiB == pytest.approx(measured, rel=REL), source


def test_gpt_oss_120b_tp4_a100_matches_the_validation_log() -> None:
    """data/validation/vllm_startup_logs.toml a100-80gb-x4-gpt-oss-120b-tp4-u08: vLLM 0.10.1.1
    (Marlin: sm80), 'Model loading took 17.2217 GiB' per rank; rigsize 17.186 (-0.21%)."""
    log = next(x for x in vllm_logs() if x["id"] == "a100-80gb-x4-gpt-oss-120b-tp4-u08")
    r = rigsize.estimate("gpt-oss-120b", gpu="A100-SXM-80GB", tp=4, engine_version=log["vllm_version"])
    assert r.memory.per_gpu.weights / GiB == pytest.approx(log["printed"]["model_loading_gib"], rel=REL)


def test_vllm_refuses_to_start_as_issue_23278_says() -> None:
    """vllm #23278 (0.10.1, defaults, 1x H100): 'Available KV cache memory: -2.14 GiB'."""
    m = rigsize.estimate("gpt-oss-120b", gpu="H100", engine_version="0.10.1").memory
    available = m.usable_bytes - (m.per_gpu.total - m.per_gpu.kv_cache)
    assert not m.fits
    assert available / GiB == pytest.approx(-2.14, abs=0.3)


def test_padded_sizes_by_hand() -> None:
    """One MoE layer of gpt-oss-120b per rank, from create_weights' shapes (module docstring)."""
    # Marlin, tp 1: I 2880 -> 2944 (round_up 128), H 2880 -> 3072 (round_up 256);
    # w13 [128, 5888, 1536] + w2 [128, 3072, 1472] uint8, scales /16 of those, bf16 biases
    # [128, 5888] + [128, 3072]: 128 * 3 * 2944 * 3072 * 17 / 32 + 128 * 8960 * 2
    assert mxfp4_moe.rank_expert_bytes(128, 2880, 2880, mxfp4_moe.MARLIN) == 1_844_969_472 + 2_293_760
    # Marlin, tp 4: 2880 // 4 = 720 -> 768
    assert mxfp4_moe.rank_expert_bytes(128, 720, 2880, mxfp4_moe.MARLIN) == 481_296_384 + 1_179_648
    # Triton, tp 1 (Hopper): no padding (2880 = 45 x 64); values 128 * (5760 * 1440 + 2880 * 1440),
    # the kept scales 128 * 3 * 2880 * 90, the swizzled copy 128 * (5888 * 90 + 3072 * 90),
    # fp32 biases 128 * 8640 * 4
    assert mxfp4_moe.rank_expert_bytes(128, 2880, 2880, mxfp4_moe.TRITON) == (
        1_592_524_800 + 99_532_800 + 103_219_200 + 4_423_680)
    # FlashInfer SM100: 2880 -> 3072 both; 128 * 3 * 3072 * 3072 * 17 / 32 + 128 * 9216 * 4
    assert mxfp4_moe.rank_expert_bytes(128, 2880, 2880, mxfp4_moe.FLASHINFER_SM100) == 1_925_185_536 + 4_718_592


@pytest.mark.parametrize("gpu, version, expected", [
    ("A100-SXM-80GB", "0.14.1", "marlin"),
    ("H100", "0.11.2", "marlin"),           # no triton_kernels in the wheel
    ("H100", "0.12.0", "triton"),           # vllm/third_party/triton_kernels
    ("B200-180GB", "0.11.0", "marlin"),     # flashinfer-python only an extra
    ("B200-180GB", "0.11.1", "flashinfer-sm100"),
    ("RTX-PRO-6000", "0.14.1", "marlin"),   # capability 12.0: not 9.0 <= cc < 11.0
])
def test_backend_follows_get_mxfp4_backend(gpu: str, version: str, expected: str) -> None:
    eng = runtime.engine_for(resolve_gpu(gpu), opts={"engine_version": version})
    b = mxfp4_moe.backend(resolve_gpu(gpu), eng)
    assert b is not None and b.name == expected


def test_amd_is_not_modelled() -> None:
    gpu = resolve_gpu("MI300X")
    assert mxfp4_moe.backend(gpu, runtime.engine_for(gpu)) is None


def test_padding_is_memory_not_parameters() -> None:
    r = rigsize.estimate("gpt-oss-120b", gpu="H100")
    assert r.model.params == 116_829_156_672          # the checkpoint's tensors, unpadded
    assert r.memory.details["weights/mxfp4_kernel_layout"] > 0
    bf16 = rigsize.estimate("gpt-oss-120b", gpu="H100", gpus=4, weights="bf16")
    assert "weights/mxfp4_kernel_layout" not in bf16.memory.details
