"""rigsize.memory.llamacpp against the buffer sizes llama.cpp printed in public start-up logs
(data/validation/llamacpp_memory.toml; kyuz0/amd-strix-halo-toolboxes load logs at e7e27e6c).

Files made by llama-quantize's standard mixes (Q4_K_M) and plain BF16 conversions must match the
printed model buffers within 0.5%, and the KV cache and the device compute buffer to the MiB.
Unsloth 'UD' files (Q8_K_XL, Q3_K_XL) choose their own per-tensor types, so only their KV cache and
compute buffers are checked."""

import pytest

from rigsize.validation.local import memory_logs, memory_rows

STANDARD = ("strix-llama-3.3-70b-q4_k_m-rocm", "strix-llama-3.3-70b-q4_k_m-vulkan", "strix-qwen3-30b-a3b-bf16-rocm",
            "strix-gemma-3-27b-bf16-rocm")


def _rows():
    return {(r.case, r.metric): r for r in memory_rows()}


@pytest.mark.parametrize("case", STANDARD)
def test_standard_files_match_the_printed_buffers(case):
    if case not in {log["id"] for log in memory_logs()}:
        pytest.skip("log not in the packaged data")
    rows = _rows()
    for metric, tol in (("model_buffer_device", 0.005), ("model_buffer_host", 0.005), ("kv_cache", 1e-6),
                        ("compute_buffer_device", 0.001)):
        r = rows[(case, metric)]
        assert abs(r.error) <= tol, (metric, r.measured, r.predicted)


def test_kv_and_compute_of_every_log():
    rows = _rows()
    kv = [r for (c, m), r in rows.items() if m == "kv_cache"]
    comp = [r for (c, m), r in rows.items() if m == "compute_buffer_device"]
    assert kv and comp
    assert all(abs(r.error) < 1e-6 for r in kv)          # iSWA Gemma 3 included (two caches)
    assert all(abs(r.error) < 0.01 for r in comp)
