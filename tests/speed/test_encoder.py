"""The vision encoder's part of TTFT (``speed.serving.encoder_time`` and ``serve``'s
``encoder_seconds``).

Expected values are hand counts: the encoder's FLOPs come from
``model.vision.encoder_work`` (checked against torch's FlopCounterMode in
tests/model/test_vision_encoder.py), the peaks from the H100 datasheet row, the
efficiencies from the packaged table, and the roofline is written out here.
"""

from __future__ import annotations

import pytest

from rigsize.hardware.gpus import resolve_gpu
from rigsize.memory.runtime import engine_for
from rigsize.model.formats import resolve_kv_format, resolve_weight_format
from rigsize.model.inputs import resolve_model
from rigsize.model.vision import encoder_work
from rigsize.planning.estimate import estimate
from rigsize.planning.layout import Layout
from rigsize.speed.roofline import efficiency
from rigsize.speed.serving import encoder_time, serve


def _setup():
    spec = resolve_model("qwen2.5-vl-7b")
    gpu = resolve_gpu("H100")
    eff, _ = efficiency("inference", gpu, engine="vllm")
    return spec, gpu, eff


def test_encoder_time_is_the_prefill_roofline_by_hand() -> None:
    """Qwen2.5-VL-7B, one 1024x1024 image on one H100 (bf16): compute-bound, matrices at
    the prefill GEMM efficiency and attention at the attention efficiency, plus the per-layer
    overhead of its 32 blocks."""
    spec, gpu, eff = _setup()
    work = encoder_work(spec.config, spec.arch.tensors, 1024, 1024)
    step = encoder_time(spec.arch, Layout(), gpu, resolve_weight_format("bf16"), eff, work, 1)
    peak = gpu.flops("bf16")
    compute = work.linear_flops / (peak * eff.prefill_compute) + work.attention_flops / (peak * eff.attention_compute)
    memory = 2 * 676_550_144 / (gpu.hbm_bytes_per_second * eff.memory)
    # the two combine as their p-norm (speed.roofline.roofline, fitted roofline_p), as every step does
    by_hand = (compute ** eff.roofline_p + memory ** eff.roofline_p) ** (1 / eff.roofline_p) + eff.layer_overhead_s * 32
    assert step.bound == "compute"
    assert step.seconds == pytest.approx(by_hand, rel=1e-12)
    assert step.weight_bytes == 2 * 676_550_144           # params_vision at 2 bytes
    two = encoder_time(spec.arch, Layout(), gpu, resolve_weight_format("bf16"), eff, work, 2)
    assert two.flops == 2 * step.flops


def test_tp_splits_the_encoder_and_adds_its_all_reduces() -> None:
    """tp=2 halves the tower's FLOPs and weights per GPU and adds two all-reduces of the
    5,476 positions x 1280 x 2 bytes per block (64); on H100's NVLink (NCCL's ring bandwidth
    plus the fitted per-call latency) that takes back much of what halving the work saves,
    which is what vLLM's Qwen2.5-VL recipe says of tensor-parallel towers ("TP on the ViT gains
    little but incurs significant communication overhead", hence --mm-encoder-tp-mode data;
    docs.vllm.ai recipes Qwen2.5-VL, 2025-08): two GPUs do not come near half the time, and the
    all-reduces are a large share of it."""
    from rigsize.speed.roofline import allreduce_seconds, link_bandwidth

    spec, gpu, eff = _setup()
    work = encoder_work(spec.config, spec.arch.tensors, 1024, 1024)
    one = encoder_time(spec.arch, Layout(), gpu, resolve_weight_format("bf16"), eff, work, 1)
    two = encoder_time(spec.arch, Layout(tp=2), gpu, resolve_weight_format("bf16"), eff, work, 1)
    overhead = eff.layer_overhead_s * 32
    comm = 64 * allreduce_seconds(5476 * 1280 * 2, 2, link_bandwidth(gpu), eff)
    assert two.seconds == pytest.approx((one.seconds - overhead) / 2 + comm + overhead, rel=1e-12)
    assert two.weight_bytes == one.weight_bytes / 2
    assert two.seconds > 0.7 * one.seconds and comm > 0.25 * two.seconds


def test_a_lone_clients_ttft_grows_by_exactly_its_encoder_time() -> None:
    """At concurrency 1 the request meets an idle engine: its images' encoder time adds to
    its TTFT one for one (the burst and the steady state alike)."""
    spec, gpu, eff = _setup()
    args = (spec.arch, Layout(), gpu, resolve_weight_format("bf16"), resolve_kv_format("bf16"), eff,
            engine_for(gpu), 1, 1500, 100)
    plain, with_encoder = serve(*args), serve(*args, encoder_seconds=0.05)
    assert with_encoder.ttft_seconds - plain.ttft_seconds == pytest.approx(0.05, rel=1e-9)
    assert with_encoder.encoder_seconds == 0.05 and plain.encoder_seconds == 0.0
    busy = serve(*args[:-3], 16, 1500, 100, encoder_seconds=0.05)
    assert busy.ttft_seconds > serve(*args[:-3], 16, 1500, 100).ttft_seconds + 0.05   # the others' encoders too


def test_estimate_reports_the_encoder_part_of_ttft() -> None:
    """Two 1280x720 images (each smart-resized to 1288x728 = 92 x 52 patches,
    1,196 merged tokens): the JSON's performance.encoder; none without images."""
    with_images = estimate("qwen2.5-vl-7b", gpu="H100", engine="vllm", prompt=500, output=100,
                           images_per_request=2, image_size="1280x720")
    enc = with_images.performance.encoder
    assert (enc.images, enc.patches_per_image, enc.tokens_per_image) == (2, 92 * 52, 46 * 26)
    assert 0 < enc.seconds < with_images.performance.ttft_seconds
    longer = estimate("qwen2.5-vl-7b", gpu="H100", engine="vllm", prompt=500 + 2 * 1198, output=100)
    assert longer.performance.encoder is None
    assert with_images.performance.ttft_seconds == pytest.approx(longer.performance.ttft_seconds + enc.seconds,
                                                                 rel=1e-9)
    assert estimate("qwen2.5-vl-7b", gpu="H100", engine="vllm", images_per_request=0).performance.encoder is None


def test_vllm_charges_the_towers_profiling_peak_where_it_exceeds_the_text_forward() -> None:
    """vLLM's profile_run encodes one largest image (65,536 patches for Qwen2.5-VL-7B)
    before the text forward pass and charges the run's peak: activations become the
    tower's working set less the cache it leaves, where that is the larger; a text-only
    deployment (--images-per-request 0) has neither."""
    from rigsize.memory.encoder_cache import encoder_activation_bytes

    spec, gpu, _ = _setup()
    tower = 65536 * (2 * 1280 + 1176 + 3 * 3420) * 2        # test_vision_encoder's hand count, 2 bytes
    assert encoder_activation_bytes(spec.arch, 1, 8192, 256, 32768) == tower
    assert encoder_activation_bytes(spec.arch, 2, 8192, 256, 32768) == 65536 * (2 * 1280 + 1176 + 3 * 3420 / 2) * 2
    assert encoder_activation_bytes(spec.arch, 1, 8192, 256, 32768, image_limit=0) == 0
    small = estimate("qwen2.5-vl-7b", gpu="L4", engine="vllm")           # a small token budget: the tower wins
    text_only = estimate("qwen2.5-vl-7b", gpu="L4", engine="vllm", images_per_request=0)
    assert small.memory.per_gpu.activations == tower - small.memory.per_gpu.encoder_cache
    assert text_only.memory.per_gpu.activations < small.memory.per_gpu.activations
