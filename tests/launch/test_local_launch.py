"""Local launch emitters (issue 19): llama-server, an Ollama Modelfile, mlx_lm.server.  Every option written
is in the list extracted from the pinned version (data/launch/); the values are the plan's own."""

from __future__ import annotations

import shlex

import pytest

from rigsize.errors import RigsizeError
from rigsize.launch import launch, llamacpp, mlx, ollama
from rigsize.launch.bundle import known_flags
from rigsize.launch.plan import select
from rigsize.planning.search import search


def _bundle(model, **opts):
    plan = search(model, task="inference", **opts)
    rec = select(plan)
    return rec, launch(rec)


def _opts(argv):
    return [a for a in argv if a.startswith("-")]


def test_llama_server_writes_the_planned_layers_and_context():
    rec, b = _bundle("llama-3.1-70b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=8192)
    argv = b.launch.argv[-1]
    assert argv[0] == "llama-server"
    assert set(_opts(argv)) <= known_flags(llamacpp.FLAGS_FILE)
    ngl = argv[argv.index("--n-gpu-layers") + 1]
    assert int(ngl) == rec["inputs"]["gpu_layers"] < 81          # a 70B Q4_K_M does not fit a 24 GB card whole
    assert argv[argv.index("--ctx-size") + 1] == "8192" == str(rec["memory"]["max_model_len"])
    assert any(c.startswith("llama-quantize") and c.endswith("Q4_K_M") for c in b.commands)


def test_llama_server_all_layers_and_quantized_cache():
    rec, b = _bundle("llama-3.1-8b", engine="llamacpp", gpu="RTX-4090", weights="q8_0", max_model_len=16384,
                     kv_dtype="q8_0")
    argv = b.launch.argv[-1]
    assert argv[argv.index("--n-gpu-layers") + 1] == "all"
    assert argv[argv.index("--cache-type-v") + 1] == "q8_0"
    assert argv[argv.index("--flash-attn") + 1] == "on"      # llama.cpp quantizes V only with flash attention


def test_ollama_modelfile_and_commands():
    rec, b = _bundle("llama-3.1-8b", engine="ollama", gpu="RTX-4090", weights="q4_k_m")
    modelfile = next(f.text for f in b.files if f.name == "Modelfile")
    lines = modelfile.strip().splitlines()
    known = known_flags(ollama.FLAGS_FILE)
    assert lines[0].split()[0] in known and lines[0].endswith("-Q4_K_M.gguf")
    for line in lines[1:]:
        word, key, value = line.split()
        assert word == "PARAMETER" and key in known
    # Ollama 0.32.15 on a 24 GB card: the 32768 VRAM tier (server/routes.go), planned and written
    assert "PARAMETER num_ctx 32768" in lines and rec["memory"]["max_model_len"] == 32768
    create = shlex.split(next(c for c in b.commands if c.startswith("ollama create")))
    assert set(_opts(create)) <= known


def test_mlx_convert_and_server():
    rec, b = _bundle("llama-3.1-70b", engine="mlx", gpu="M2-Ultra-192GB", weights="mlx-4bit")
    known = known_flags(mlx.FLAGS_FILE)
    for argv in b.launch.argv:
        assert set(_opts(argv)) <= known
    convert = b.launch.argv[0]
    assert convert[convert.index("--q-bits") + 1] == "4" and convert[convert.index("--q-group-size") + 1] == "64"


@pytest.mark.parametrize("opts, words", [
    ({"engine": "mlx", "gpu": "RTX-4090"}, "Apple silicon"),
    ({"engine": "llamacpp", "gpu": "RTX-4090", "weights": "nf4"}, "GGUF"),
])
def test_refusals_are_one_line(opts, words):
    with pytest.raises(RigsizeError) as err:
        _bundle("llama-3.1-8b", **opts)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_cpu_only_llama_server_offloads_nothing():
    rec, b = _bundle("llama-3.1-8b", engine="llamacpp", gpu="cpu", host_cpu="EPYC-9654", weights="q4_k_m",
                     max_model_len=8192)
    argv = b.launch.argv[-1]
    assert argv[argv.index("--device") + 1] == "none" and argv[argv.index("--n-gpu-layers") + 1] == "0"
    assert set(_opts(argv)) <= known_flags(llamacpp.FLAGS_FILE)
