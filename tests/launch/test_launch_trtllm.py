"""--engine trtllm (issue 18): trtllm-serve and its --extra_llm_api_options YAML, pinned to TensorRT-LLM 1.2.1;
every flag and YAML key is in the pinned list (data/launch/trtllm-1.2.1-serve-flags.txt); the KV pool the
emitted fraction leaves holds the planned batch; layouts trtllm-serve cannot run are refused in one line.

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import launch, trtllm
from rigsize.launch.bundle import flags_of
from rigsize.launch.plan import planned_run, select
from rigsize.planning.search import search

CASES = {
    "trtllm-1.2.1-fp8kv-local": ("qwen2-7b", dict(task="inference", gpu="H100-SXM-80GB", engine="trtllm", batch=8,
                                 kv_dtype="fp8")),
    "trtllm-1.2.1-moe-tp2ep2-local": ("qwen3-30b-a3b", dict(task="inference", gpu="H100-SXM-80GB", gpus=2, tp=2,
                                      ep=2, engine="trtllm")),
    "trtllm-1.2.1-moe-attention-dp-local": ("qwen3-30b-a3b", dict(task="inference", gpu="H100-SXM-80GB", gpus=2,
                                            tp=1, ep=2, engine="trtllm")),
}
# The flags of TensorRT-LLM's own example (docs 0.20.0, examples/serve/deepseek_r1_reasoning_parser.sh), not
# written by rigsize: the pinned list must hold them.
NVIDIA_EXAMPLE_FLAGS = {"--host", "--port", "--backend", "--max_batch_size", "--max_num_tokens", "--tp_size",
                        "--ep_size", "--pp_size", "--kv_cache_free_gpu_memory_fraction", "--extra_llm_api_options",
                        "--reasoning_parser"}


def rec(case: str) -> dict:
    model, opts = CASES[case][:2]
    return planned(model, **opts)


def bundle(case: str):
    return launch(rec(case))


def val(argv, flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


def test_pinned_list_holds_nvidias_own_example() -> None:
    assert NVIDIA_EXAMPLE_FLAGS <= trtllm.sections()["trtllm-serve"]


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, prefix + k + ".")
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_every_flag_and_yaml_key_is_pinned(case: str) -> None:
    b, pinned = bundle(case), trtllm.sections()
    (argv,) = b.launch.argv
    assert argv[0] == "trtllm-serve"
    assert set(flags_of(argv)) <= pinned["trtllm-serve"], set(flags_of(argv)) - pinned["trtllm-serve"]
    for f in b.files:
        if f.name == trtllm.YAML_NAME:
            yaml = pytest.importorskip("yaml")
            assert _keys(yaml.safe_load(f.text)) <= pinned["extra_llm_api_options"]
            assert val(argv, "--extra_llm_api_options") == f.name


@pytest.mark.parametrize("case", list(CASES))
def test_sizes_multiply_to_the_gpu_count(case: str) -> None:
    run, argv = planned_run(rec(case)), bundle(case).launch.argv[0]
    assert int(val(argv, "--tp_size")) * int(val(argv, "--pp_size")) == run.gpus
    if run.ep > 1:
        assert int(val(argv, "--tp_size")) % int(val(argv, "--ep_size")) == 0


@pytest.mark.parametrize("case", list(CASES))
def test_kv_pool_admits_the_planned_concurrency(case: str) -> None:
    """TensorRT-LLM's fraction is of the memory left after weights and buffers (serve.py help)."""
    run, argv = planned_run(rec(case)), bundle(case).launch.argv[0]
    per = run.per_gpu
    free = run.memory_visible_bytes - per["weights"] - per["activations"] - per["overhead"]
    frac = float(val(argv, "--kv_cache_free_gpu_memory_fraction"))
    assert 0 < frac <= 0.9
    assert frac * free >= run.batch * run.kv_bytes_per_sequence
    assert int(val(argv, "--max_seq_len")) >= run.seq
    assert int(val(argv, "--max_batch_size")) >= run.batch


def test_fp8_kv_and_attention_dp_go_to_the_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    files = {f.name: f.text for f in bundle("trtllm-1.2.1-fp8kv-local").files}
    assert yaml.safe_load(files[trtllm.YAML_NAME]) == {"kv_cache_config": {"dtype": "fp8"}}
    files = {f.name: f.text for f in bundle("trtllm-1.2.1-moe-attention-dp-local").files}
    assert yaml.safe_load(files[trtllm.YAML_NAME])["enable_attention_dp"] is True
    assert trtllm.YAML_NAME not in {f.name for f in bundle("trtllm-1.2.1-moe-tp2ep2-local").files}


@pytest.mark.parametrize("model,opts,expect", [
    ("qwen2.5-72b", dict(gpus=16, tp=8), "Nearest plan it can run: the same on --gpus 8"),
    ("qwen2-7b", dict(gpus=2, tp=1), "Nearest plan it can run: --gpus 1 --tp 1"),
    ("qwen2-7b", dict(gpus=1, weights="gptq-int4"), "Nearest plan it can run: the same with --weights fp8"),
])
def test_refusals_name_the_nearest_plan(model: str, opts: dict, expect: str) -> None:
    r = select(search(model, task="inference", gpu="H100-SXM-80GB", engine="trtllm", top=1, **opts))
    with pytest.raises(RigsizeError, match=expect) as err:
        launch(r)
    assert "\n" not in str(err.value)
