"""Build src/rigsize/data/validation/serving_holdout.csv from a snapshot of the MLPerf Inference v5.1 results
(ntuhpc/inference_results_v5.1, a fork of mlcommons/inference_results_v5.1).  Figures are copied
from each mlperf_log_summary.txt as printed; nanoseconds become milliseconds by moving the decimal
point six places (string shift, no arithmetic).  No rigsize code is imported: no prediction is made."""
import csv
import json
import re
import subprocess
import sys

GIT = sys.argv[1]                   # the snapshot's git dir
OUT = sys.argv[2]                   # src/rigsize/data/validation/serving_holdout.csv
COLUMNS_FROM = "src/rigsize/data/validation/serving_more.csv"
REPO = "ntuhpc/inference_results_v5.1"
SRC = ("MLPerf Inference v5.1 Datacenter results (ntuhpc/inference_results_v5.1, fork of "
       "mlcommons/inference_results_v5.1; same layout)")

def git(*a):
    return subprocess.run(["git", "--git-dir", GIT, *a], capture_output=True, text=True, check=True).stdout

COMMIT = git("rev-parse", "HEAD").strip()
FILES = git("ls-tree", "-r", "--name-only", "HEAD").split("\n")
SET = set(FILES)

BENCH = {  # benchmark dir -> (hf_model, model_class, dataset)
    "llama2-70b-99": ("meta-llama/Llama-2-70b-chat-hf", "dense", "OpenOrca (MLPerf llama2-70b set)"),
    "llama2-70b-99.9": ("meta-llama/Llama-2-70b-chat-hf", "dense", "OpenOrca (MLPerf llama2-70b set)"),
    "mixtral-8x7b": ("mistralai/Mixtral-8x7B-Instruct-v0.1", "moe", "MLPerf mixtral-8x7b set (OpenOrca + GSM8K + MBXP)"),
    "llama3.1-8b": ("meta-llama/Llama-3.1-8B-Instruct", "dense", "CNN/DailyMail (MLPerf llama3.1-8b set)"),
    "llama3_1-8b": ("meta-llama/Llama-3.1-8B-Instruct", "dense", "CNN/DailyMail (MLPerf llama3.1-8b set)"),
    "llama3.1-405b": ("meta-llama/Llama-3.1-405B-Instruct", "dense", "MLPerf llama3.1-405b set (long-context mix)"),
    "llama3_1-405b": ("meta-llama/Llama-3.1-405B-Instruct", "dense", "MLPerf llama3.1-405b set (long-context mix)"),
    "deepseek-r1": ("deepseek-ai/DeepSeek-R1", "moe", "MLPerf deepseek-r1 set"),
    # Krai open division: Llama 3.1 70B Instruct at fp8 on the llama2-70b task (open/Krai/model_mapping.json)
    "llama3_1-70b-fp8_dyn": ("meta-llama/Llama-3.1-70B-Instruct", "dense", "OpenOrca (MLPerf llama2-70b set; open/Krai/model_mapping.json maps to llama2-70b-99.9)"),
    "llama3_1-70b-fp8_pre": ("meta-llama/Llama-3.1-70B-Instruct", "dense", "OpenOrca (MLPerf llama2-70b set; open/Krai/model_mapping.json maps to llama2-70b-99.9)"),
    "llama3_1-70b-fp8_trtllm": ("meta-llama/Llama-3.1-70B-Instruct", "dense", "OpenOrca (MLPerf llama2-70b set; open/Krai/model_mapping.json maps to llama2-70b-99.9)"),
    "llama2-70b-fp8_quark": ("meta-llama/Llama-2-70b-chat-hf", "dense", "OpenOrca (MLPerf llama2-70b set; open/Krai/model_mapping.json maps to llama2-70b-99.9)"),
}
FAMILY = [("MI355X", "CDNA4"), ("MI325X", "CDNA3"), ("MI300X", "CDNA3"), ("B200", "Blackwell"), ("GB200", "Blackwell"),
          ("GB300", "Blackwell"), ("RTX PRO 6000 Blackwell", "Blackwell"), ("H100", "Hopper"), ("H200", "Hopper"),
          ("GH200", "Hopper"), ("L40S", "Ada"), ("RTX 4090", "Ada"), ("A100", "Ampere")]

def ms(ns):  # "1006329670" -> "1006.32967": the decimal point moved six places, nothing rounded
    s = ns.strip().rjust(7, "0")
    whole, frac = s[:-6].lstrip("0") or "0", s[-6:].rstrip("0")
    return f"{whole}.{frac}" if frac else whole

def summary(text):
    kv = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            kv.setdefault(re.sub(r"\s+", " ", k.strip()), v.strip())
    return kv

def engine_of(fw, system):
    f = fw.lower()
    if "sglang" in f: return "sglang"
    if "vllm" in f: return "vllm"
    if "tensorrt" in f or system.endswith("_TRT"): return "trtllm"
    return None

rows, skipped = [], []
pat = re.compile(r"^(closed|open)/([^/]+)/results/([^/]+)/([^/]+)/(Offline|Server|Interactive|offline|server|interactive)/performance/run_1/mlperf_log_summary\.txt$")
hits = [m for f in FILES if (m := pat.match(f))]
for m in hits:
    div, sub, system, bench, scen = m.groups()
    path = m.group(0)
    if sub == "NVIDIA" or bench not in BENCH:
        continue
    if bench == "llama2-70b-99.9" and f"{div}/{sub}/results/{system}/llama2-70b-99/{scen}/performance/run_1/mlperf_log_summary.txt" in SET:
        continue   # -99 kept where both runs exist (SERVING-MORE-README rule)
    sysf = f"{div}/{sub}/systems/{system}.json"
    if sysf not in SET:
        skipped.append((path, "no system json")); continue
    sj = json.loads(git("show", f"HEAD:{sysf}"))
    acc = sj.get("accelerator_model_name", "")
    fam = next((f for k, f in FAMILY if k in acc), None)
    if fam is None or "(x" in acc:
        skipped.append((path, f"accelerator not kept: {acc}")); continue
    fw = sj.get("framework", "")
    eng = engine_of(fw, system)
    if eng is None:
        skipped.append((path, f"framework not vLLM/SGLang/TensorRT: {fw}")); continue
    kv = summary(git("show", f"HEAD:{path}"))
    if kv.get("Result is") != "VALID":
        skipped.append((path, "result not VALID")); continue
    hf, mclass, dataset = BENCH[bench]
    gpus = int(sj["accelerators_per_node"]) * int(sj["number_of_nodes"])
    server = kv.get("Scenario") == "Server"
    tp = pp = dp = weights = ""
    cfgnote = ""
    if sub == "Krai":
        readme = f"{div}/{sub}/measurements/{system}/{bench}/{scen}/README.md"
        if readme in SET:
            t = git("show", f"HEAD:{readme}")
            perf = t.split("### Performance", 1)[1].split("###", 1)[0] if "### Performance" in t else ""
            g = dict(re.findall(r"[,\s](tp|pp|dp|quantization|num_gpus)=([^,\s]+)", perf))
            tp, pp, dp = g.get("tp", ""), g.get("pp", ""), g.get("dp", "")
            weights = (f"fp8 (benchmark name {bench}; axs query quantization={g.get('quantization', 'not given')} "
                       f"in {readme})") if "fp8" in bench else ""
            cfgnote = f"tp/pp/dp from the Performance command in {readme}; "
    limits = ""
    if server:
        tt, tpo = kv.get("ttft_latency (ns)", ""), kv.get("tpot_latency (ns)", "")
        if tt and tpo: limits = f"latency limits ttft {ms(tt)} ms, tpot {ms(tpo)} ms; "
    label = "Interactive" if scen.lower() == "interactive" else scen.capitalize()
    mode = ("offline max (MLPerf Offline: all samples in one query)" if not server else
            f"MLPerf {label}: Poisson arrivals at request_rate (scheduled samples/s)")
    r = dict(source_kind="mlperf", source=SRC,
             source_url=f"https://github.com/{REPO}/blob/{COMMIT}/{path}", as_of="2026-12-01", engine=eng,
             engine_version=fw, gpu=acc, gpu_family=fam, gpus=str(gpus), nodes=str(sj["number_of_nodes"]),
             tp=tp, pp=pp, ep="", dp=dp, hf_model=hf, model_class=mclass, weights=weights, kv_dtype="",
             dataset=dataset, isl="", osl="", load_mode=mode, concurrency="",
             request_rate=kv.get("Scheduled samples per second", "") if server else "", num_prompts="")
    if server:
        r.update(ttft_mean_ms=ms(kv["Mean First Token latency (ns)"]),
                 ttft_median_ms=ms(kv["50.00 percentile first token latency (ns)"]),
                 ttft_p99_ms=ms(kv["99.00 percentile first token latency (ns)"]),
                 tpot_mean_ms=ms(kv["Mean Time to Output Token (ns)"]),
                 tpot_median_ms=ms(kv["50.00 percentile time to output token (ns)"]),
                 tpot_p99_ms=ms(kv["99.00 percentile time to output token (ns)"]),
                 output_tokens_per_s=kv["Completed tokens per second"],
                 requests_per_s=kv["Completed samples per second"])
    else:
        r.update(output_tokens_per_s=kv["Tokens per second"], requests_per_s=kv["Samples per second"])
    tq = kv.get("target_qps", "")
    r["notes"] = (f"{cfgnote}MLPerf Inference v5.1 {div}, submitter {sub}, system {system}, benchmark {bench}, "
                  f"scenario directory {scen}, status {sj.get('status','')}, result VALID; target_qps {tq}; {limits}"
                  + ("TTFT/TPOT from LoadGen 'First Token latency' / 'Time to Output Token' (ns in the log, written here in ms "
                     "by moving the decimal point, nothing rounded); " if server else "")
                  + "output_tokens_per_s = LoadGen 'Tokens per second' (Offline) or 'Completed tokens per second' "
                    "(Server), whole system; requests_per_s = 'Samples per second' / 'Completed samples per second'; "
                    "per-request isl/osl vary (dataset)")
    rows.append(r)

rows.sort(key=lambda r: r["source_url"])

# Hand-copied tables (figures as printed; "39,891" is written 39891, the thousands separator dropped).
_SG_VER = "SGLang 0.5.13.post1 (docker lmsysorg/sglang:v0.5.13.post1-rocm720-mi30x)"
_GEMMA = ("https://github.com/sgl-project/sglang/pull/31216", "google/gemma-4-31B-it", "dense",
          "bf16 (PR title 'MI300X BF16')", "",
          "PR description 2026-07-14, table 'Speed Benchmarks (ISL/OSL 1000/1000)', strategy Balanced; model "
          "'google/gemma-4-31B-it (59GB, auto-selects tp=1)'; gpus = 1 because the table's tok/s/GPU equals its "
          "Throughput; ")
_MINIMAX = ("https://github.com/sgl-project/sglang/pull/31044", "MiniMaxAI/MiniMax-M2.7 (exact HF repo not stated)",
            "moe", "fp8 (PR title 'MI300X FP8')", "fp8_e4m3 (server flag --kv-cache-dtype fp8_e4m3)",
            "PR description 2026-07-13, table 'Speed Benchmarks (ISL/OSL 1000/1000)'; server flags "
            "--trust-remote-code --kv-cache-dtype fp8_e4m3 --attention-backend triton --mem-fraction-static 0.85; "
            "tp x ep from the table's 'TP x EP' column; gpus = tp (Throughput / tok/s/GPU = tp in every row); ")
HAND = [  # (source, tp, ep, gpus, concurrency, ttft_ms, tpot_ms, throughput, strategy)
    (_GEMMA, 1, "", 1, 1, "130", "21.49", "46", "Balanced"),
    (_GEMMA, 1, "", 1, 16, "151", "31.45", "492", "Balanced"),
    (_GEMMA, 1, "", 1, 64, "588", "62.93", "951", "Balanced"),
    (_GEMMA, 1, "", 1, 256, "39891", "192.91", "1047", "Balanced"),
    (_GEMMA, 1, "", 1, 1024, "218436", "681.22", "1045", "Balanced"),
    (_GEMMA, 1, "", 1, 4096, "640807", "1524.16", "1044", "Balanced"),
    (_MINIMAX, 2, 2, 2, 1, "210", "14.94", "65", "Low-latency"),
    (_MINIMAX, 2, 2, 2, 16, "167", "31.80", "486", "Low-latency"),
    (_MINIMAX, 4, 4, 4, 64, "419", "42.48", "1403", "Balanced"),
    (_MINIMAX, 4, 4, 4, 256, "337", "71.72", "3236", "Balanced"),
    (_MINIMAX, 8, 8, 8, 1024, "3547", "239.18", "4301", "High-throughput"),
    (_MINIMAX, 8, 8, 8, 4096, "18251", "431.16", "8344", "High-throughput"),
]
for (url, hf, mclass, weights, kvd, note), tp, ep, gpus, conc, ttft, tpot, thr, strategy in HAND:
    rows.append(dict(
        source_kind="github-pr", source="SGLang pull request benchmark table (AMD MI300X verified data)", source_url=url,
        as_of="2026-12-01", engine="sglang", engine_version=_SG_VER, gpu="AMD Instinct MI300X (8x192 GB HBM3 node)",
        gpu_family="CDNA3", gpus=str(gpus), nodes="1", tp=str(tp), pp="", ep=str(ep), dp="", hf_model=hf,
        model_class=mclass, weights=weights, kv_dtype=kvd, dataset="ISL/OSL 1000/1000 (benchmark tool and dataset not named)",
        isl="1000", osl="1000", load_mode="max-concurrency (the table's 'Concurrency'; num_prompts not stated)",
        concurrency=str(conc), ttft_mean_ms=ttft, tpot_mean_ms=tpot, output_tokens_per_s=thr,
        notes=note + f"strategy {strategy}; TTFT/TPOT columns 'TTFT (ms)' / 'TPOT (ms)' (mean or median not stated); "
                     "output_tokens_per_s is the column 'Throughput (tok/s)', which tokens it counts is not stated "
                     "(at concurrency 1 it is close to 1000/TPOT, i.e. output tokens)"))

# QwenLM/Qwen3 issue 1536, first post: the concurrency-1 run (the excerpt read ends at 'Median TPOT').
rows.append(dict(
    source_kind="github-issue", source="QwenLM/Qwen3 issue #1536 (vLLM benchmark_serving.py output)",
    source_url="https://github.com/QwenLM/Qwen3/issues/1536", as_of="2026-12-01", engine="vllm", engine_version="",
    gpu="NVIDIA A100 80GB (issue title '1x A100 80GB')", gpu_family="Ampere", gpus="1", nodes="1", tp="1", pp="", ep="",
    dp="", hf_model="Qwen/Qwen3-14B-AWQ", model_class="dense", weights="awq (checkpoint Qwen/Qwen3-14B-AWQ)",
    kv_dtype="", dataset="random", isl="16000", osl="200",
    load_mode="max-concurrency 1 with --request-rate 1", concurrency="1", request_rate="1", num_prompts="30",
    ttft_mean_ms="3345.37", ttft_median_ms="3452.00", ttft_p99_ms="3696.97", tpot_mean_ms="20.63",
    tpot_median_ms="20.94", output_tokens_per_s="26.84", total_tokens_per_s="2174.16", requests_per_s="0.13",
    total_input_tokens="480000", total_output_tokens="6000",
    notes="vllm serve Qwen/Qwen3-14B-AWQ --gpu-memory-utilization 0.95 --max-model-len 16384 --tensor-parallel-size 1 "
          "--enforce-eager --guided-decoding-backend guidance --max-num-seq 30; benchmark_serving.py --backend vllm "
          "--endpoint /v1/completions --dataset-name random --max-concurrency 1 --num-prompts 30 --request-rate 1 "
          "--random-input-len 16000 --random-output-len 200; vLLM version not stated; P99 TPOT and ITL not copied "
          "(beyond the stored excerpt)"))

print(len(rows), "rows;", len(skipped), "skipped", file=sys.stderr)
for p, why in skipped: print("  skip", p, "|", why, file=sys.stderr)
COLUMNS = next(csv.reader(open(COLUMNS_FROM)))      # the same columns as serving_more.csv, in its order
with open(OUT, "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for i, r in enumerate(rows, 1):
        r.update(row_id=f"sh{i:04d}", split="holdout", class_key=f"{r['engine']}|{r['gpu_family']}|{r['model_class']}")
        w.writerow({c: r.get(c, "") for c in COLUMNS})
