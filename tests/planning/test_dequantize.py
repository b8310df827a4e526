"""A format a GPU has no kernel for is upcast at load (formats.gpu_runs "dequantize":
transformers upcasts MXFP4 to 16 bits on Volta), so it must be sized at 16 bits, not
at the checkpoint's 4.25: otherwise a plan would "fit" that runs out of memory."""

from __future__ import annotations

import rigsize


def test_mxfp4_on_volta_is_sized_as_fp16() -> None:
    dq = rigsize.estimate("gpt-oss-20b", gpu="V100-SXM2-32GB", weights="mxfp4")
    fp16 = rigsize.estimate("gpt-oss-20b", gpu="V100-SXM2-32GB", weights="fp16")
    assert dq.memory.per_gpu.weights == fp16.memory.per_gpu.weights
    assert dq.model.weight_format == "fp16" and "upcast" in dq.assumptions["weights_dequantized"]


def test_mxfp4_where_a_kernel_reads_it_stays_mxfp4() -> None:
    r = rigsize.estimate("gpt-oss-20b", gpu="H100", weights="mxfp4")
    assert r.model.weight_format == "mxfp4" and "weights_dequantized" not in r.assumptions
