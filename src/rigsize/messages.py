"""The message catalog: every user-facing sentence, in English and Chinese.

Keys are stable identifiers; texts are ``str.format`` templates.  JSON output is
never localized: only human-readable text goes through here.  Chinese terms follow
``shared/GLOSSARY-zh.md``.  Choose the language with ``--lang`` or ``RIGSIZE_LANG``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # --- input values ---
    "input.not_a_number": {
        "en": "{option}: '{value}' is not a number; write e.g. 4096, 8k, 1.5e9 or 70B",
        "zh": "{option}: '{value}' 不是数字；请写成 4096、8k、1.5e9 或 70B 这样的形式",
    },
    "input.not_a_count": {
        "en": "{option}: '{value}' must be a whole number >= 0, e.g. 8 or 8k",
        "zh": "{option}: '{value}' 必须是 >= 0 的整数，例如 8 或 8k",
    },
    "input.not_a_duration": {
        "en": "{option}: '{value}' is not a duration; write e.g. 200ms, 1.5s or 2h",
        "zh": "{option}: '{value}' 不是时长；请写成 200ms、1.5s 或 2h 这样的形式",
    },
    "input.too_small": {
        "en": "{option}: {value} is below the minimum {minimum}",
        "zh": "{option}: {value} 小于最小值 {minimum}",
    },
    "input.too_large": {
        "en": "{option}: {value} is above the cap {maximum}; check the value (caps live in rigsize.planning.limits)",
        "zh": "{option}: {value} 超过上限 {maximum}；请检查取值（上限见 rigsize.planning.limits）",
    },
    "input.bad_choice": {
        "en": "{option}: '{value}' is not one of {choices}",
        "zh": "{option}: '{value}' 不在可选值 {choices} 之中",
    },
    "input.unknown_key": {
        "en": "unknown option '{key}'{hint}",
        "zh": "未知选项 '{key}'{hint}",
    },
    "input.conflict": {
        "en": "{what}",
        "zh": "{what}",
    },
    "cli.usage": {
        "en": "{detail} (see '{help}')",
        "zh": "{detail}（参见 '{help}'）",
    },
    "cli.bad_lang_env": {
        "en": "RIGSIZE_LANG={value} is not one of en, zh; set it to en or zh, or unset it",
        "zh": "RIGSIZE_LANG={value} 不是 en 或 zh；请设为 en 或 zh，或取消设置",
    },
    "cli.bad_lang": {
        "en": "--lang: '{value}' is not one of en, zh",
        "zh": "--lang: '{value}' 不是 en 或 zh",
    },
    # --- models ---
    "model.unknown": {
        "en": "unknown model '{name}': not a preset, a file, a folder or a size like 72B{hint}; 'rigsize models' lists presets",
        "zh": "未知模型 '{name}'：既不是预设、文件、目录，也不是 72B 这样的规模{hint}；'rigsize models' 可列出预设",
    },
    "model.bad_json": {
        "en": "{path}: not valid JSON ({detail}); pass a Hugging Face config.json",
        "zh": "{path}: 不是合法的 JSON（{detail}）；请传入 Hugging Face 的 config.json",
    },
    "model.not_object": {
        "en": "{path}: a config must be a JSON object of Hugging Face fields",
        "zh": "{path}: 配置必须是由 Hugging Face 字段组成的 JSON 对象",
    },
    "model.no_model_type": {
        "en": "{path}: no 'model_type' field; add it (e.g. \"model_type\": \"llama\")",
        "zh": "{path}: 缺少 'model_type' 字段；请补上（例如 \"model_type\": \"llama\"）",
    },
    "model.unsupported_type": {
        "en": "model_type '{model_type}' is not supported yet (give its checkpoint folder or Hub id and its safetensors headers size it); supported: {supported}",
        "zh": "暂不支持 model_type '{model_type}'（给出检查点文件夹或 Hub id，即可按其 safetensors 头估算）；已支持：{supported}",
    },
    "model.missing_field": {
        "en": "{model_type} config lacks '{field}', which is needed to count parameters; add it to the config",
        "zh": "{model_type} 配置缺少计算参数量所需的字段 '{field}'；请补上",
    },
    "model.bad_field": {
        "en": "config field '{field}' = {value!r} is invalid: {why}",
        "zh": "配置字段 '{field}' = {value!r} 不合法：{why}",
    },
    "model.folder_no_config": {
        "en": "{path}: folder has no config.json; point at a Hugging Face checkpoint folder",
        "zh": "{path}: 目录中没有 config.json；请指向 Hugging Face 模型目录",
    },
    "model.bad_safetensors": {
        "en": "{path}: unreadable safetensors header ({detail})",
        "zh": "{path}: safetensors 文件头无法读取（{detail}）",
    },
    "model.bad_gguf": {
        "en": "{path}: unreadable GGUF file ({detail})",
        "zh": "{path}: GGUF 文件无法读取（{detail}）",
    },
    "model.gguf_arch": {
        "en": "{path}: GGUF architecture '{arch}' is not supported yet; supported: {supported}",
        "zh": "{path}: 暂不支持 GGUF 架构 '{arch}'；已支持：{supported}",
    },
    "model.hub_failed": {
        "en": "could not fetch config.json of '{repo}' from the Hub ({detail}); check the id, your network or HF_TOKEN, or use --offline with a cached copy",
        "zh": "无法从 Hub 获取 '{repo}' 的 config.json（{detail}）；请检查模型 id、网络或 HF_TOKEN，或在已有缓存时使用 --offline",
    },
    "model.hub_unreachable": {
        "en": "the Hugging Face Hub did not answer for '{repo}' within {seconds:.0f} s ({detail}); use --offline with a cached copy, or pass a local config.json or checkpoint folder",
        "zh": "Hugging Face Hub 在 {seconds:.0f} 秒内未响应 '{repo}'（{detail}）；请在已有缓存时使用 --offline，或传入本地的 config.json 或模型目录",
    },
    "model.hub_offline_miss": {
        "en": "'{repo}' is not in the local Hugging Face cache; run once without --offline",
        "zh": "本地 Hugging Face 缓存中没有 '{repo}'；请先不带 --offline 运行一次",
    },
    "model.bare_size": {
        "en": "'{name}': a bare size must be between {minimum} and {maximum} parameters",
        "zh": "'{name}'：规模必须介于 {minimum} 与 {maximum} 个参数之间",
    },
    "model.from_checkpoint": {
        "en": "model_type '{model_type}' is not laid out by rigsize: sized from its checkpoint's {tensors} tensors (weights exact; KV cache from the config's attention fields, every layer taken as full attention; activations approximate)",
        "zh": "rigsize 尚未解析 model_type '{model_type}'：已按其检查点的 {tensors} 个张量估算（权重精确；KV 缓存按配置中的注意力字段、每层都按全注意力计算；激活值为近似）",
    },
    "model.approximate": {
        "en": "'{name}' is a bare size: rigsize synthesized a Llama-3-style GQA-8 decoder ({summary}); all numbers are approximate",
        "zh": "'{name}' 只给出了规模：rigsize 按 Llama-3 风格的 GQA-8 解码器合成了配置（{summary}）；所有数字均为近似值",
    },
    "model.stored_differs": {
        "en": "the checkpoint stores {stored} parameters, the architecture has {params} ({why})",
        "zh": "检查点存储了 {stored} 个参数，而架构为 {params} 个（{why}）",
    },
    "model.unknown_dtype": {
        "en": "the config's torch_dtype {dtype} is not one rigsize reads (bfloat16, float16, float32); weights were sized as {fmt} — pass --weights to choose",
        "zh": "配置中的 torch_dtype {dtype} 不是 rigsize 能识别的类型（bfloat16、float16、float32）；权重按 {fmt} 估算，可用 --weights 指定",
    },
    "model.unknown_quant": {
        "en": "the config's quantization_config ({method}) is not a format rigsize knows; weights were sized as {fmt} — pass --weights to choose",
        "zh": "配置中的 quantization_config（{method}）不是 rigsize 已知的格式；权重按 {fmt} 估算，可用 --weights 指定",
    },
    "model.presets_none": {
        "en": "no preset matches '{query}'",
        "zh": "没有与 '{query}' 匹配的预设",
    },
    # --- hardware / formats / plans (more keys are added by their modules' issues) ---
    "gpu.unknown": {
        "en": "unknown GPU '{name}'{hint}; 'rigsize gpus' lists the catalog, --gpu-spec FILE describes another",
        "zh": "未知 GPU '{name}'{hint}；'rigsize gpus' 可列出目录，--gpu-spec FILE 可描述其他 GPU",
    },
    "cpu.unknown": {
        "en": "unknown CPU '{name}'{hint}; the CPU catalog (data/cpus.toml) lists the known hosts",
        "zh": "未知 CPU '{name}'{hint}；CPU 目录（data/cpus.toml）列出了已知主机",
    },
    "gpu.unknown_arch": {
        "en": "unknown GPU architecture '{name}'; use one of {suggestions}",
        "zh": "未知 GPU 架构 '{name}'；请使用 {suggestions} 之一",
    },
    "gpu.bad_spec": {
        "en": "{path}: {detail}",
        "zh": "{path}: {detail}",
    },
    "gpu.none_match": {
        "en": "no GPU in the catalog matches '{query}'; 'rigsize gpus' lists them all",
        "zh": "目录中没有与 '{query}' 匹配的 GPU；'rigsize gpus' 可列出全部",
    },
    "format.unknown": {
        "en": "unknown format '{name}'; did you mean {suggestions}? 'rigsize formats' lists them",
        "zh": "未知格式 '{name}'；是否想用 {suggestions}？'rigsize formats' 可列出全部格式",
    },
    "format.unknown_kv": {
        "en": "unknown KV-cache format '{name}'; did you mean {suggestions}? 'rigsize formats' lists them",
        "zh": "未知 KV 缓存格式 '{name}'；是否想用 {suggestions}？'rigsize formats' 可列出全部格式",
    },
    "format.kv_mla_only": {
        "en": "KV format '{name}' is the MLA (DeepSeek) latent layout; use fp8 or bf16 for this model",
        "zh": "KV 格式 '{name}' 仅适用于 MLA（DeepSeek）潜变量布局；此模型请使用 fp8 或 bf16",
    },
    "format.tp_groups_out": {
        "en": "{fmt}: {tensor} has {dim} output features = {groups} groups of {group}, which do not split evenly over tp={tp}; tp sizes that suit the attention heads, KV heads, intermediate size and these groups together: {good}",
        "zh": "{fmt}: {tensor} 的输出维度为 {dim}，即 {groups} 个大小为 {group} 的量化组，无法在 tp={tp} 下均分；同时满足注意力头、KV 头、intermediate_size 和这些量化组的 tp：{good}",
    },
    "format.tp_groups": {
        "en": "{fmt}: {tensor} has {dim} input features = {groups} groups of {group}, which do not split evenly over tp={tp}; tp sizes that suit the attention heads, KV heads, intermediate size and these groups together: {good}; or use a checkpoint padded for tp ({dim} zero-padded to a multiple of {group} x tp, as Qwen ships its 72B GPTQ/AWQ checkpoints)",
        "zh": "{fmt}: {tensor} 的输入维度为 {dim}，即 {groups} 个大小为 {group} 的量化组，无法在 tp={tp} 下均分；同时满足注意力头、KV 头、intermediate_size 和这些量化组的 tp：{good}；或改用为张量并行填充过的检查点（把 {dim} 用零填充到 {group} x tp 的整数倍，Qwen 发布的 72B GPTQ/AWQ 检查点即如此）",
    },
    "format.bad_pattern": {
        "en": "quantization_config lists the module pattern '{pattern}', which is not a valid regular expression; fix or remove it",
        "zh": "quantization_config 中的模块模式 '{pattern}' 不是合法的正则表达式；请修正或删除",
    },
    "format.gpu_cannot": {
        "en": "{gpu} cannot run {fmt} weights (no kernels for its architecture); see 'rigsize formats' and pick another --weights",
        "zh": "{gpu} 无法运行 {fmt} 格式的权重（其架构没有相应内核）；请参见 'rigsize formats' 并换用其他 --weights",
    },
    "plan.framework_dp_only": {
        "en": "invalid layout: {framework} scales by data parallelism only; use --framework megatron or torchtitan for tp/pp/cp, or deepspeed/fsdp with --zero",
        "zh": "并行方案无效：{framework} 只支持数据并行；张量/流水线/上下文并行请用 --framework megatron 或 torchtitan，或用 deepspeed/fsdp 加 --zero",
    },
    "plan.optimizer_in_backward_accum": {
        "en": "invalid layout: the optimizer step in backward (--optimizer-in-backward) needs one micro-batch per step, but global batch {global_batch} is {accum} micro-batches of {batch} per data-parallel rank; set --global-batch {one} or --optimizer-in-backward false",
        "zh": "并行方案无效：在反向传播中执行优化器更新（--optimizer-in-backward）要求每步只有一个微批次，但全局批次 {global_batch} 在每个数据并行副本上是 {accum} 个大小为 {batch} 的微批次；请设置 --global-batch {one}，或 --optimizer-in-backward false",
    },
    "input.adapter_dtype_task": {
        "en": "--adapter-dtype applies to --task lora or qlora, not {task}",
        "zh": "--adapter-dtype 只适用于 --task lora 或 qlora，不适用于 {task}",
    },
    "plan.invalid": {
        "en": "invalid layout: {why}",
        "zh": "并行方案无效：{why}",
    },
    # tp_problems (layout.py): each names the constraint, then the nearest tp sizes that
    # satisfy every constraint at once (layout.valid_tp_sizes)
    "plan.tp_heads": {
        "en": "tp={tp} does not divide {heads} attention heads; {hint}",
        "zh": "tp={tp} 无法整除 {heads} 个注意力头；{hint}",
    },
    "plan.tp_kv_whole": {
        "en": "tp={tp} neither divides nor is a multiple of {kv} KV heads (they must stay whole or be replicated); {hint}",
        "zh": "tp={tp} 既不能整除 {kv} 个 KV 头，也不是它的整数倍（KV 头必须完整保留或复制）；{hint}",
    },
    "plan.tp_kv": {
        "en": "tp={tp} does not divide {kv} KV heads; {hint}",
        "zh": "tp={tp} 无法整除 {kv} 个 KV 头；{hint}",
    },
    "plan.tp_intermediate": {
        "en": "tp={tp} does not divide intermediate_size {size}; {hint}",
        "zh": "tp={tp} 无法整除 intermediate_size {size}；{hint}",
    },
    "plan.tp_try_one": {"en": "try {a}", "zh": "可改用 {a}"},
    "plan.tp_try_two": {"en": "try {a} or {b}", "zh": "可改用 {a} 或 {b}"},
    "plan.tp_try_padded": {
        "en": "{hint} ({fmt} groups do not split over tp {blocked}; a checkpoint padded for tp would allow them)",
        "zh": "{hint}（{fmt} 的量化组无法在 tp {blocked} 下均分；为张量并行填充过的检查点可以使用这些 tp）",
    },
    "memory.engine_refuses": {
        "en": "vLLM would refuse to start: one request of --max-model-len {max_len:,} tokens needs more KV cache than the {tokens:,} tokens that remain; use --max-model-len {single:,} or less (or more GPUs, or an fp8 KV cache)",
        "zh": "vLLM 将无法启动：一个 --max-model-len {max_len:,} 个 token 的请求所需的 KV 缓存超过剩余的 {tokens:,} 个 token；请使用 --max-model-len {single:,} 或更小（或增加 GPU，或使用 fp8 KV 缓存）",
    },
    "memory.gpu_memory_basis": {
        "en": "{gpu}: the memory CUDA reports on this card was not measured; sized by {basis} ({gib:.2f} GiB), which is typically 0.4-0.8 GiB above what vLLM sees (gpus.toml memory_cuda_gib rows)",
        "zh": "{gpu}：未实测该卡 CUDA 报告的显存；按 {basis}（{gib:.2f} GiB）计算，通常比 vLLM 看到的高 0.4-0.8 GiB（见 gpus.toml 的 memory_cuda_gib）",
    },
    "memory.fewer_gpus": {
        "en": "{n} GPU(s) would already hold this job; {gpus} were requested",
        "zh": "{n} 张卡即可放下此任务；当前请求了 {gpus} 张",
    },
    "perf.unfitted_gpu": {
        "en": "speed assumptions for {gpu} ({arch}) were not fitted on measurements of that GPU family; borrowed from the {row} fit, so errors may be larger",
        "zh": "{gpu}（{arch}）的速度假设未在该 GPU 系列的实测数据上拟合；借用 {row} 的拟合值，误差可能更大",
    },
    "perf.training_framework": {
        "en": "no published {framework} runs on {family} GPUs were fitted: the training efficiency is borrowed from {row} (training.default: A100 Megatron-LM runs), so this step time has no measured error",
        "zh": "没有在 {family} GPU 上拟合过 {framework} 的公开实测：训练效率借用 {row}（training.default 为 A100 Megatron-LM 实测），此单步耗时没有实测误差",
    },
    "perf.offload": {
        "en": "offload: the CPU optimizer step is timed at the memory bandwidth of {host} shared by {per_node} GPU(s) "
              "(a lower bound: DeepSpeed's CPU-Adam is not measured here) and the PCIe copies at the link rate; "
              "give --host-cpu for your server's CPU",
        "zh": "卸载：CPU 上的优化器步骤按 {host} 的内存带宽（由 {per_node} 张 GPU 共享）计时（下限：未实测 DeepSpeed "
              "CPU-Adam），PCIe 拷贝按链路速率计；请用 --host-cpu 指定服务器的 CPU",
    },
    "perf.unknown": {"en": "speed not estimated: {why}", "zh": "未估算速度：{why}"},
    "cost.no_instance": {"en": "no cloud instance of {gpu} with a published {pricing} price holds this plan; give your own with --prices",
                         "zh": "没有公开 {pricing} 价格的 {gpu} 云实例能容纳此方案；可用 --prices 提供自己的价格"},
    "cost.no_server_price": {"en": "owning: no server price is published for this plan; give --server-price (USD per server)",
                             "zh": "自建：此方案没有公开的服务器价格；请用 --server-price 给出（每台服务器美元）"},
    "cost.unknown_provider": {
        "en": "--provider {name}: unknown cloud provider{hint}; known: {known} ('rigsize clouds' lists their "
              "instances; --prices FILE adds your own)",
        "zh": "--provider {name}：未知云厂商{hint}；已知：{known}（'rigsize clouds' 列出其实例；--prices FILE 可添加自己的）",
    },
    "cost.stale": {"en": "the cheapest price ({name}, as of {as_of}) is older than {days} days or undated; check it",
                   "zh": "最便宜的价格（{name}，日期 {as_of}）已超过 {days} 天或日期未知，请核实"},
    "perf.not_fit": {
        "en": "no speed given: the job does not fit (the busiest GPU is {short_gib:.2f} GiB short); make it fit first",
        "zh": "未给出速度：显存不足（占用最高的卡缺 {short_gib:.2f} GiB）；请先让任务放得下",
    },
    "perf.not_fit_host": {
        "en": "no speed given: the job does not fit in host RAM ({short_gib:.2f} GiB short for the layers, KV cache and buffers kept on the CPU); make it fit first (more --host-ram, or more layers on the GPU with --gpu-layers)",
        "zh": "未给出速度：主机内存不足（留在 CPU 上的层、KV 缓存与缓冲区缺 {short_gib:.2f} GiB）；请先让任务放得下（增加 --host-ram，或用 --gpu-layers 把更多层放到 GPU）",
    },
    "perf.no_kv_room": {
        "en": "no speed given: the weights fit, but the KV cache left cannot hold one request of this length (or of --max-model-len)",
        "zh": "未给出速度：权重放得下，但剩余的 KV 缓存容纳不下一个该长度（或 --max-model-len 长度）的请求",
    },
    "perf.speculative_unvalidated": {
        "en": "speculative decoding's speed is modelled (K + 1 verified tokens and the draft per step, acceptance "
              "{rate:.2f}), not fitted: no measured MTP runs are in the validation set, and the error band is that of "
              "plain decoding",
        "zh": "推测解码的速度为模型推算（每步验证 K + 1 个 token 并运行草稿，接受率 {rate:.2f}），未经拟合：验证集中没有"
              "实测的 MTP 运行，误差范围沿用普通解码的",
    },
    "perf.tp_across_nodes": {
        "en": "tp={tp} spans more GPUs than one server's fabric ({node}): its all-reduces cross the network "
              "({network} assumed), which engines advise against; keep tp within a node and use pp across nodes",
        "zh": "tp={tp} 超出单台服务器互联的 GPU 数（{node}）：其 all-reduce 需经网络（假定 {network}），"
              "推理引擎不建议这样做；请在节点内使用张量并行、跨节点使用流水线并行",
    },
    "perf.queueing": {
        "en": "the KV cache holds {running} sequences of this length, so {batch} concurrent requests queue for a slot (TTFT includes the wait)",
        "zh": "KV 缓存只能容纳 {running} 个该长度的序列，{batch} 个并发请求需排队（TTFT 含等待时间）",
    },
    "calibrate.no_gpu": {
        "en": "rigsize calibrate needs an NVIDIA GPU and PyTorch with CUDA ({why}); run it on the GPU machine",
        "zh": "rigsize calibrate 需要 NVIDIA GPU 和支持 CUDA 的 PyTorch（{why}）；请在 GPU 机器上运行",
    },
    "calibrate.unknown_device": {
        "en": "device '{name}' matches no catalog GPU; pass --gpu NAME",
        "zh": "设备 '{name}' 与目录中的 GPU 不匹配；请用 --gpu NAME 指定",
    },
    # --- report text ---
    "report.model": {"en": "Model", "zh": "模型"},
    "report.params": {"en": "Parameters", "zh": "参数量"},
    "report.active_params": {"en": "Active parameters per token", "zh": "每 token 激活参数量"},
    "report.stored_params": {"en": "Stored parameters", "zh": "存储的参数量"},
    "report.kv_per_token": {"en": "KV cache per token", "zh": "每 token 的 KV 缓存"},
    "report.weight_bytes": {"en": "Model weights", "zh": "模型权重"},
    "report.breakdown": {"en": "Parameter breakdown", "zh": "参数量分解"},
    "report.component": {"en": "Component", "zh": "组件"},
    "report.share": {"en": "Share", "zh": "占比"},
    "report.approximate": {"en": "approximate", "zh": "近似"},
    "report.source": {"en": "Source", "zh": "来源"},
    "report.warnings": {"en": "Warnings", "zh": "警告"},
    "report.assumptions": {"en": "Assumptions", "zh": "假设"},
    "report.presets": {"en": "Model presets", "zh": "模型预设"},
    "report.family": {"en": "Family", "zh": "系列"},
    "report.hub_id": {"en": "Hub id", "zh": "Hub 仓库 id"},
    "report.memory_per_gpu": {"en": "Memory per GPU (busiest GPU)", "zh": "单卡显存（占用最高的卡）"},
    "report.bytes": {"en": "Bytes", "zh": "大小"},
    "report.suggestions": {"en": "What would make it fit", "zh": "如何放得下"},
    "task.inference": {"en": "inference", "zh": "推理"},
    "task.finetune": {"en": "full fine-tuning", "zh": "全参数微调"},
    "task.lora": {"en": "LoRA", "zh": "LoRA 微调"},
    "task.qlora": {"en": "QLoRA", "zh": "QLoRA 微调"},
    "task.pretrain": {"en": "pre-training", "zh": "预训练"},
    "mem.weights": {"en": "Weights", "zh": "模型权重"},
    "mem.kv_cache": {"en": "KV cache", "zh": "KV 缓存"},
    "mem.activations": {"en": "Activations", "zh": "激活值"},
    "mem.gradients": {"en": "Gradients", "zh": "梯度"},
    "mem.optimizer": {"en": "Optimizer states", "zh": "优化器状态"},
    "mem.overhead": {"en": "Runtime overhead", "zh": "运行时开销"},
    "mem.total": {"en": "Total", "zh": "合计"},
    "mem.usable": {"en": "Usable", "zh": "可用显存"},
    "mem.host_ram": {"en": "Host RAM: weights {w}, KV {kv}, compute {c}", "zh": "主机内存：权重 {w}，KV {kv}，计算 {c}"},
    "mem.host_usable": {"en": "Host RAM available", "zh": "主机可用内存"},
    "mem.unified_total": {"en": "Unified memory: GPU + CPU of", "zh": "统一内存：GPU 与 CPU 合计 / 总量"},
    "mem.device": {"en": "Device {name} ({n} layers)", "zh": "设备 {name}（{n} 层）"},
    "mem.fits": {"en": "Fits, headroom", "zh": "放得下，余量"},
    "mem.not_fits": {"en": "Does not fit, short by", "zh": "显存不足，缺口"},
    "mem.gpu_fits": {"en": "GPU memory fits, headroom", "zh": "显存放得下，余量"},
    "mem.host_short": {"en": "Does not fit: host RAM short by", "zh": "主机内存不足，缺口"},
    "mem.max_concurrency": {"en": "Max concurrent sequences", "zh": "最大并发数"},
    "mem.kv_cache_tokens": {"en": "KV cache size (tokens)", "zh": "KV 缓存容量（token）"},
    "mem.concurrency_at_max_len": {"en": "Max concurrency at {n} tokens per request",
                                   "zh": "每请求 {n} 个 token 时的最大并发"},
    "mem.max_context_single": {"en": "Longest context, one request", "zh": "单请求最长上下文"},
    "mem.max_context_at_concurrency": {"en": "Longest context at this concurrency", "zh": "当前并发下的最长上下文"},
    "mem.stage": {"en": "Stage {i} ({role}, layers {first}+{n})", "zh": "第 {i} 级（{role}，第 {first} 层起 {n} 层）"},
    "stage.only": {"en": "only", "zh": "唯一"},
    "stage.first": {"en": "first", "zh": "首级"},
    "stage.middle": {"en": "middle", "zh": "中间级"},
    "stage.last": {"en": "last", "zh": "末级"},
    "report.performance": {"en": "Speed (closed loop, concurrency = batch)", "zh": "速度（闭环，并发数 = 批大小）"},
    "report.training_speed": {"en": "Training speed", "zh": "训练速度"},
    "perf.step": {"en": "Step time", "zh": "单步耗时"},
    "perf.tokens": {"en": "Throughput", "zh": "吞吐量"},
    "perf.days": {"en": "Time to train", "zh": "训练时长"},
    "report.validation": {"en": "Validation against published and measured runs", "zh": "与公开及实测数据的对比验证"},
    "perf.e2e": {"en": "End-to-end latency", "zh": "端到端延迟"},
    "perf.throughput": {"en": "Output throughput", "zh": "输出吞吐量"},
    "perf.requests": {"en": "Requests", "zh": "请求速率"},
    "perf.encoder": {"en": "  of which vision encoder", "zh": "  其中视觉编码器"},
    "perf.encoder_detail": {"en": "{ms:,.1f} ms ({images} x {patches:,} patches, {bound})",
                            "zh": "{ms:,.1f} ms（{images} 张图，每张 {patches:,} 个图块，{bound}）"},
    "perf.speculative": {"en": "  speculative (MTP)", "zh": "  推测解码（MTP）"},
    "perf.speculative_detail": {"en": "{k} draft token(s), acceptance {rate:.2f}: {tokens:.2f} tokens per {ms:,.2f} ms "
                                      "step",
                                "zh": "{k} 个草稿 token，接受率 {rate:.2f}：每步 {ms:,.2f} ms 产出 {tokens:.2f} 个 token"},
    "perf.prompt_rate": {"en": "Prompt processing", "zh": "提示词处理速度"},
    "perf.decode_split": {"en": "  per token from {where}", "zh": "  每个 token 读取 {where}"},
    "perf.decode_fixed": {"en": "  per token, fixed per-layer cost", "zh": "  每个 token 的逐层固定开销"},
    "report.gpus": {"en": "GPU catalog (dense peaks)", "zh": "GPU 目录（稠密峰值算力）"},
    "report.memory": {"en": "Memory", "zh": "显存"},
    "report.visible": {"en": "Visible", "zh": "可见显存"},
    "report.interconnect": {"en": "Interconnect (per direction)", "zh": "互联（单向）"},
    "report.per_node": {"en": "GPUs/node", "zh": "每节点卡数"},
    "report.unknown": {"en": "unknown", "zh": "未知"},
    "report.formats": {"en": "Weight and KV-cache formats", "zh": "权重与 KV 缓存格式"},
    "report.format": {"en": "Format", "zh": "格式"},
    "report.kind": {"en": "Kind", "zh": "类别"},
    "report.bits_per_weight": {"en": "Bits/weight (4096x4096)", "zh": "每权重比特数 (4096x4096)"},
    "report.high_precision": {"en": "Kept in higher precision", "zh": "保留高精度的张量"},
    # --- labels of the terminal tables (render.py); every one has both languages ---
    "report.name": {"en": "Name", "zh": "名称"},
    "report.gpu": {"en": "GPU", "zh": "GPU 型号"},
    "report.hbm": {"en": "HBM TB/s", "zh": "显存带宽 TB/s"},
    "report.bf16_tflops": {"en": "BF16 TFLOPS", "zh": "BF16 峰值算力 TFLOPS"},
    "report.fp8_tflops": {"en": "FP8 TFLOPS", "zh": "FP8 峰值算力 TFLOPS"},
    "report.tdp": {"en": "TDP W", "zh": "功耗 W"},
    "report.kind_weight": {"en": "weight", "zh": "权重"},
    "report.kind_kv": {"en": "KV cache", "zh": "KV 缓存"},
    "report.all_at_bits": {"en": "none (every tensor at {bits} bits)", "zh": "无（所有张量均为 {bits} 比特）"},
    "report.calibrated": {
        "en": "wrote {output}: {gpu} compute {compute} of dense bf16 peak, memory {memory} of peak bandwidth",
        "zh": "已写入 {output}：{gpu} 算力达到 bf16 稠密峰值的 {compute}，显存带宽达到峰值的 {memory}",
    },
    "report.no_peak": {"en": "unknown (no published peak)", "zh": "未知（无公开峰值）"},
    "perf.ttft": {"en": "TTFT", "zh": "首 token 延迟 (TTFT)"},
    "perf.band": {"en": "median ±{median:.0%}, {n} reserved {who}{moe} runs on {family}",
                  "zh": "中位误差 ±{median:.0%}，{n} 个 {family} 上 {who}{moe} 的留出实测"},
    "perf.band_moe": {"en": " MoE", "zh": " 混合专家 (MoE)"},
    "perf.band_none": {"en": "not validated for this GPU family", "zh": "未在该 GPU 系列上验证"},
    "perf.band_field_none": {"en": "not validated: under 20 reserved runs measure this figure",
                             "zh": "未验证：实测该指标的留出数据不足 20 条"},
    "perf.tpot": {"en": "TPOT", "zh": "每输出 token 时间 (TPOT)"},
    "perf.mfu_hfu": {"en": "MFU / HFU", "zh": "算力利用率 MFU / HFU"},
    "perf.days_unit": {"en": "d", "zh": "天"},
    "perf.gpu_hours_unit": {"en": "GPU-h", "zh": "卡时"},
    "bound.compute": {"en": "compute-bound", "zh": "计算受限"},
    "bound.memory": {"en": "memory-bound", "zh": "访存受限"},
    "bound.communication": {"en": "communication-bound", "zh": "通信受限"},
    "bound.overhead": {"en": "overhead-bound", "zh": "调度开销受限"},
    "bound.bubble": {"en": "pipeline-bubble-bound", "zh": "流水线气泡受限"},
    "bound.tp_comm": {"en": "tp-communication-bound", "zh": "张量并行通信受限"},
    "bound.dp_comm": {"en": "dp-communication-bound", "zh": "数据并行通信受限"},
    "bound.pp_comm": {"en": "pp-communication-bound", "zh": "流水线并行通信受限"},
    "bound.ep_comm": {"en": "ep-communication-bound", "zh": "专家并行通信受限"},
    "bound.cp_comm": {"en": "cp-communication-bound", "zh": "上下文并行通信受限"},
    "bound.moe_overhead": {"en": "moe-dispatch-overhead-bound", "zh": "MoE 分发开销受限"},
    "bound.offload": {"en": "cpu-offload-bound", "zh": "CPU 卸载受限"},
    "part.compute": {"en": "compute", "zh": "计算"},
    "part.bubble": {"en": "pipeline bubble", "zh": "流水线气泡"},
    "part.tp_comm": {"en": "tp communication", "zh": "张量并行通信"},
    "part.dp_comm": {"en": "dp communication", "zh": "数据并行通信"},
    "part.pp_comm": {"en": "pp communication", "zh": "流水线并行通信"},
    "part.ep_comm": {"en": "ep communication", "zh": "专家并行通信"},
    "part.cp_comm": {"en": "cp communication", "zh": "上下文并行通信"},
    "part.moe_overhead": {"en": "moe dispatch overhead", "zh": "MoE 分发开销"},
    "part.offload": {"en": "cpu offload", "zh": "CPU 卸载"},
    "part.attention": {"en": "attention", "zh": "注意力"},
    "part.mlp": {"en": "mlp", "zh": "MLP 前馈层"},
    "part.embedding": {"en": "embedding", "zh": "词嵌入"},
    "part.lm_head": {"en": "lm_head", "zh": "输出层 (lm_head)"},
    "part.norms": {"en": "norms", "zh": "归一化层"},
    "part.other": {"en": "other", "zh": "其他"},
    "part.moe/experts": {"en": "moe/experts", "zh": "MoE 路由专家"},
    "part.moe/shared_experts": {"en": "moe/shared_experts", "zh": "MoE 共享专家"},
    "part.moe/router": {"en": "moe/router", "zh": "MoE 路由器"},
    "part.vision/tower": {"en": "vision/tower", "zh": "视觉编码器"},
    "part.vision/projector": {"en": "vision/projector", "zh": "视觉投影层"},
    "val.source": {"en": "source", "zh": "数据来源"},
    "val.case": {"en": "case", "zh": "用例"},
    "val.metric": {"en": "metric", "zh": "指标"},
    "val.split": {"en": "split", "zh": "划分"},
    "val.n": {"en": "n", "zh": "条数"},
    "val.measured": {"en": "measured", "zh": "实测"},
    "val.predicted": {"en": "predicted", "zh": "预测"},
    "val.error": {"en": "error", "zh": "误差"},
    "val.median": {"en": "median |error|", "zh": "误差绝对值中位数"},
    "val.worst": {"en": "worst |error|", "zh": "最大误差绝对值"},
    "val.class": {"en": "class", "zh": "类别"},
    "report.clouds": {"en": "Cloud GPU instances", "zh": "云上 GPU 实例"},
    "report.plan": {"en": "Plans for {model}, {task}, by {objective}", "zh": "{model} 的方案（{task}，按 {objective} 排序）"},
    "plan.rank": {"en": "#", "zh": "名次"},
    # the whole-server datasheet (rigsize.hardware.servers)
    "server.title": {"en": "Server (per node)", "zh": "服务器配置 (每节点)"},
    "server.gpu": {"en": "GPU        {gpus_per_node}x {gpu} ({nodes} node(s))",
                   "zh": "GPU        {gpus_per_node} 卡 {gpu} ({nodes} 个节点)"},
    "server.cpu": {"en": "CPU        {cpu_cores} cores for this node's GPUs (the reference server's cores per GPU); "
                         "reference CPUs: {cpu_class}",
                   "zh": "CPU        本节点 GPU 需 {cpu_cores} 核（按参考服务器每 GPU 的核数）；参考服务器 CPU：{cpu_class}"},
    "server.ram": {"en": "RAM        {ram_gb:,.0f} GB", "zh": "内存       {ram_gb:,.0f} GB"},
    "server.nvme": {"en": "Storage    {nvme_tb:,.1f} TB NVMe SSD; write {nvme_write}",
                    "zh": "存储       {nvme_tb:,.1f} TB NVMe 固态硬盘; 写入 {nvme_write}"},
    "server.checkpoint": {"en": "Checkpoint {checkpoint_gb:,.0f} GB (weights + optimizer states)",
                          "zh": "检查点     {checkpoint_gb:,.0f} GB (模型权重 + 优化器状态)"},
    "server.shared": {"en": "Shared     {shared_storage}", "zh": "共享存储   {shared_storage}"},
    "server.shared_pfs": {"en": "parallel file system (Lustre, GPFS, WEKA, ...)",
                          "zh": "并行文件系统 (Lustre, GPFS, WEKA 等)"},
    "server.shared_none": {"en": "not required", "zh": "不需要"},
    "server.network": {"en": "Network    {network}; needs {gbps:,.1f} Gb/s per GPU between nodes",
                       "zh": "网络       {network}; 节点间每卡需 {gbps:,.1f} Gb/s"},
    "server.network_single": {"en": "Network    none between nodes (single node)",
                              "zh": "网络       无需节点间互联 (单节点)"},
    "server.power": {"en": "Power      {kw:,.1f} kW per node, {rack_kw:,.1f} kW for {nodes} node(s) (before PUE)",
                     "zh": "功耗       每节点 {kw:,.1f} kW, {nodes} 个节点共 {rack_kw:,.1f} kW (未计 PUE)"},
    "server.software": {"en": "Software   {name} {version}: {why}", "zh": "软件       {name} {version}: {why}"},
    "server.unknown": {"en": "unknown", "zh": "未知"},
    "server.rule": {"en": "  {key}: {rule} [{source}]", "zh": "  {key}: {rule} [来源: {source}]"},
    "report.overview": {"en": "What {model} needs, by scenario", "zh": "{model} 在各场景下需要的配置"},
    "overview.scenario": {"en": "scenario", "zh": "场景"},
    "overview.workload": {"en": "workload", "zh": "负载"},
    "overview.hardware": {"en": "recommended configuration", "zh": "推荐配置"},
    "overview.speed": {"en": "speed / time", "zh": "速度 / 时长"},
    "overview.cost": {"en": "cost", "zh": "成本"},
    "overview.narrow": {"en": "Narrow it with --task, goals (--tpot 50ms, --budget-per-hour 20, --deadline-days 7), --gpu, --allow-quant or --have '4x RTX-4090'.",
                        "zh": "可用 --task、目标（--tpot 50ms、--budget-per-hour 20、--deadline-days 7）、--gpu、--allow-quant 或 --have '4x RTX-4090' 缩小范围。"},
    "scenario.low_latency": {"en": "low latency (1 user)", "zh": "低延迟（1 个用户）"},
    "scenario.high_throughput": {"en": "high throughput (64 users)", "zh": "高吞吐（64 个用户）"},
    "scenario.finetune": {"en": "full fine-tuning", "zh": "全参数微调"},
    "scenario.lora": {"en": "LoRA", "zh": "LoRA 微调"},
    "scenario.qlora": {"en": "QLoRA", "zh": "QLoRA 微调"},
    "scenario.pretrain": {"en": "pre-training", "zh": "预训练"},
    "scenario.workstation": {"en": "workstation (llama.cpp, 1 user)", "zh": "工作站（llama.cpp，1 个用户）"},
    "report.what_fits": {"en": "What fits on {have} ({engine}, 1 user, 8K context)",
                         "zh": "{have} 上能运行的模型（{engine}，1 个用户，8K 上下文）"},
    "fits.model": {"en": "model", "zh": "模型"},
    "fits.params": {"en": "parameters", "zh": "参数量"},
    "fits.weights": {"en": "format", "zh": "格式"},
    "fits.context": {"en": "longest context", "zh": "最长上下文"},
    "fits.speed": {"en": "generation", "zh": "生成速度"},
    "fits.none": {"en": "Does not fit in any format tried: {models}", "zh": "所试格式都放不下：{models}"},
    "plan.none_short": {"en": "no plan meets the goals", "zh": "没有满足目标的方案"},
    "plan.hardware": {"en": "hardware", "zh": "硬件"},
    "plan.formats": {"en": "formats", "zh": "格式"},
    "plan.engine": {"en": "engine", "zh": "引擎/框架"},
    "plan.speed": {"en": "speed", "zh": "速度"},
    "plan.cost": {"en": "cost", "zh": "成本"},
    "plan.memory": {"en": "memory / GPU", "zh": "单卡显存"},
    "plan.counts": {"en": "{n} candidates considered, {pruned} pruned; rejected: {rejected}",
                    "zh": "共考察 {n} 个候选，剪枝 {pruned} 个；淘汰原因：{rejected}"},
    "plan.none": {"en": "No plan meets every goal: relax a goal, allow more GPUs (--max-gpus) or formats (--allow-quant)",
                  "zh": "没有方案满足全部目标：请放宽目标、允许更多 GPU（--max-gpus）或更多格式（--allow-quant）"},
    "plan.none_context": {
        "en": "context_too_long: the weights fit, but the engine would refuse one request of the model's full context; "
              "give a shorter --max-model-len",
        "zh": "context_too_long：权重放得下，但引擎无法容纳一个模型完整上下文长度的请求；请给出更短的 --max-model-len"},
    "report.cost": {"en": "Cost ({pricing})", "zh": "成本（{pricing}）"},
    "cloud.provider": {"en": "provider", "zh": "云厂商"},
    "cloud.instance": {"en": "instance", "zh": "实例"},
    "cloud.gpu": {"en": "GPU", "zh": "GPU 型号"},
    "cloud.gpus": {"en": "GPUs", "zh": "GPU 数"},
    "cloud.on_demand": {"en": "on-demand / h", "zh": "按需 / 小时"},
    "cloud.spot": {"en": "spot / h", "zh": "竞价 / 小时"},
    "cloud.as_of": {"en": "price as of", "zh": "价格日期"},
    "cost.per_hour": {"en": "Per hour", "zh": "每小时"},
    "cost.per_mtok": {"en": "Per million output tokens", "zh": "每百万输出 token"},
    "cost.per_mtrain": {"en": "Per million trained tokens (compute time)", "zh": "每百万训练 token（仅计算时间）"},
    "cost.run": {"en": "The run (allowance included)", "zh": "整次训练（含故障冗余）"},
    "cost.stale_short": {"en": "stale", "zh": "价格过期"},
    "cost.on_prem": {"en": "Owning instead", "zh": "改为自建"},
    "cost.break_even": {"en": "cheaper than renting above {share:.0%} utilization",
                        "zh": "利用率高于 {share:.0%} 时比租用便宜"},
    "val.p90": {"en": "p90 |error|", "zh": "误差绝对值 90 分位"},
    "val.target": {"en": "target", "zh": "目标"},
    "val.too_few": {"en": "too few rows", "zh": "行数不足"},
    "report.validation_classes": {"en": "Per class (engine or framework | GPU family | dense or MoE)",
                                  "zh": "按类别（引擎或框架 | GPU 系列 | 稠密或 MoE）"},
    "split.fit": {"en": "fit", "zh": "拟合集"},
    "split.reserved": {"en": "reserved", "zh": "保留集"},
    "split.other": {"en": "other", "zh": "其他"},
    "split.published": {"en": "published", "zh": "公开数据"},
    "split.spec-decode?": {"en": "spec-decode?", "zh": "疑似投机解码"},
    "split.reserved-too-few": {"en": "reserved-too-few", "zh": "保留集（条数过少）"},
    "split.whole-run (layout unknown)": {"en": "whole-run (layout unknown)", "zh": "整次训练（并行方案未知）"},
    "split.settings unpublished": {"en": "settings unpublished", "zh": "设置未公开"},
    "split.published (GiB)": {"en": "published (GiB)", "zh": "公开数据 (GiB)"},
    "split.published (unit unstated)": {"en": "published (unit unstated)", "zh": "公开数据（单位未说明）"},
    "report.change": {"en": "change {change}", "zh": "改为 {change}"},
    "fmt.gguf_kept": {
        "en": "output.weight {out}; norms, routers, biases, position embeddings F32",
        "zh": "output.weight 为 {out}；归一化层、路由器、偏置、位置嵌入为 F32",
    },
    "fmt.rope_bits": {"en": "RoPE key dims at {bits} bits", "zh": "RoPE 键维度为 {bits} 比特"},
    "fmt.kept_bits": {"en": "{roles}: {bits}-bit", "zh": "{roles}：{bits} 比特"},
    # --- launch (rigsize launch): LaunchError texts and notes, stored in English by the emitters and shown
    # in the reader's language through translate(); commands and file contents are code and stay as written
    "launch.header": {"en": "{tool} {version} on {gpus} x {gpu}, target {target}; files in {out}",
                      "zh": "{tool} {version}，{gpus} 卡 {gpu}，目标平台 {target}；文件在 {out}"},
    "launch.setup": {"en": "setup: {setup}", "zh": "安装：{setup}"},
    "launch.setup_ollama": {"en": "install Ollama {version} (ollama.com/download)",
                            "zh": "安装 Ollama {version}（ollama.com/download）"},
    "launch.setup_llamacpp": {
        "en": "build llama.cpp (cmake -B build -DGGML_CUDA=ON or -DGGML_METAL=ON; cmake --build build) at commit {version}",
        "zh": "在提交 {version} 处构建 llama.cpp（cmake -B build -DGGML_CUDA=ON 或 -DGGML_METAL=ON；cmake --build build）"},
    "launch.version_chosen": {"en": "written for {tool} {version} (--engine-version; the default is {default})",
                              "zh": "按 {tool} {version} 编写（--engine-version；默认版本为 {default}）"},
    "launch.version_sized": {
        "en": "written for {tool} {version} (the version the plan was sized for; the default is {default})",
        "zh": "按 {tool} {version} 编写（即方案估算所用的版本；默认版本为 {default}）"},
    "launch.version_not_pinned": {
        "en": "{tool} {version} has no pinned flag list; rigsize launch writes {tool} {pinned} (--engine-version)",
        "zh": "{tool} {version} 没有固定的参数列表；rigsize launch 支持 {tool} {pinned}（--engine-version）"},
    "launch.version_not_sized": {
        "en": "this plan was sized for {tool} {sized}, not {asked} (its memory budget depends on the version). "
              "Nearest plan {tool} {asked} can run: rigsize launch {model} --task inference --engine {tool} "
              "--engine-version {asked}",
        "zh": "该方案按 {tool} {sized} 估算，而非 {asked}（显存预算随版本而变）。{tool} {asked} 能运行的最接近方案："
              "rigsize launch {model} --task inference --engine {tool} --engine-version {asked}"},
    "launch.version_not_newest": {
        "en": "this plan was sized by {tool} >= {since}'s memory rules, not {version}'s. Nearest plan {tool} {version} "
              "can run: rigsize launch {model} --task inference --engine {tool} --engine-version {version}",
        "zh": "该方案按 {tool} >= {since} 的显存规则估算，而非 {version} 的。{tool} {version} 能运行的最接近方案："
              "rigsize launch {model} --task inference --engine {tool} --engine-version {version}"},
    "engine.trtllm_version": {
        "en": "--engine-version names a vLLM, SGLang or transformers version; trtllm's memory follows TensorRT-LLM's "
              "KV budget with vLLM's newest activation and runtime terms (no TensorRT-LLM versions are modelled)",
        "zh": "--engine-version 指定 vLLM、SGLang 或 transformers 的版本；trtllm 的显存按 TensorRT-LLM 的 KV 预算、"
              "vLLM 最新的激活与运行时开销估算（未按 TensorRT-LLM 版本建模）"},
    "engine.sglang_too_old": {
        "en": "--engine-version {version}: rigsize models SGLang's memory budget from {oldest} on (use "
              "--engine-version {oldest} or newer)",
        "zh": "--engine-version {version}：rigsize 从 SGLang {oldest} 起对其显存预算建模（请使用 --engine-version "
              "{oldest} 或更新版本）"},
    "engine.version_ambiguous": {
        "en": "--engine-version {version} names a release line whose memory rules change at {edges}; give the "
              "full release (e.g. --engine-version {example})",
        "zh": "--engine-version {version} 指的是一个版本系列，其显存规则在 {edges} 处改变；请给出完整版本号（例如 "
              "--engine-version {example}）"},
    "engine.version_newer": {
        "en": "{version} is newer than {newest}, the newest release whose rules rigsize read: {newest}'s rules are "
              "assumed",
        "zh": "{version} 比 rigsize 读过规则的最新版本 {newest} 更新：按 {newest} 的规则估算"},
    "engine.mem_fraction_not_sglang": {
        "en": "--mem-fraction-static is SGLang's budget; use it with --engine sglang (vLLM's is "
              "--gpu-memory-utilization)",
        "zh": "--mem-fraction-static 是 SGLang 的显存预算参数；请与 --engine sglang 一起使用（vLLM 用 "
              "--gpu-memory-utilization）"},
    "engine.free_fraction_not_trtllm": {
        "en": "--kv-cache-free-gpu-memory-fraction is TensorRT-LLM's budget; use it with --engine trtllm (vLLM's is "
              "--gpu-memory-utilization, SGLang's --mem-fraction-static)",
        "zh": "--kv-cache-free-gpu-memory-fraction 是 TensorRT-LLM 的显存预算参数；请与 --engine trtllm 一起使用（vLLM 用 "
              "--gpu-memory-utilization，SGLang 用 --mem-fraction-static）"},
    "engine.utilization_not_trtllm": {
        "en": "--gpu-memory-utilization is vLLM's budget; TensorRT-LLM's is --kv-cache-free-gpu-memory-fraction (a share "
              "of the memory left after the weights, the profiled activations and non-torch memory)",
        "zh": "--gpu-memory-utilization 是 vLLM 的显存预算参数；TensorRT-LLM 用 --kv-cache-free-gpu-memory-fraction（扣除"
              "权重、实测激活峰值和非 torch 显存后剩余显存的占比）"},
    "engine.utilization_not_sglang": {
        "en": "--gpu-memory-utilization is vLLM's budget; SGLang's is --mem-fraction-static (a share of the memory "
              "free before the weights load)",
        "zh": "--gpu-memory-utilization 是 vLLM 的显存预算参数；SGLang 用 --mem-fraction-static（加载权重前空闲显存的"
              "占比）"},
    "launch.version_training": {
        "en": "--engine-version picks an inference engine's version; {task} launches write {tool} {version}",
        "zh": "--engine-version 用于选择推理引擎的版本；{task} 任务的启动配置按 {tool} {version} 编写"},
    "launch.vllm_lacks_flag": {
        "en": "vllm {version} has no {flag}, which this plan needs. Nearest version that can: --engine-version "
              "{nearest} (plan and launch with it)",
        "zh": "vllm {version} 没有该方案所需的 {flag}。能运行它的最接近版本：--engine-version {nearest}"
              "（用它重新规划并启动）"},
    "launch.vllm_kv_auto": {
        "en": "vllm {version} has no {kv} KV cache beside {dtype} weights (its --kv-cache-dtype auto is the model "
              "dtype). Nearest version that can: --engine-version {nearest} (plan and launch with it)",
        "zh": "vllm {version} 在 {dtype} 模型权重下无法使用 {kv} KV 缓存（其 --kv-cache-dtype auto 即模型的数据类型）。"
              "能运行它的最接近版本：--engine-version {nearest}（用它重新规划并启动）"},
    "launch.vllm_tower": {
        "en": "vllm {version} may build the vision tower at --limit-mm-per-prompt 0 (the general skip is from "
              "0.15.0), and this plan was sized without it. Nearest version that can: --engine-version {nearest} "
              "(plan and launch with it); or plan with --images-per-request 1",
        "zh": "vllm {version} 在 --limit-mm-per-prompt 0 时仍可能构建视觉编码器（通用的跳过规则始于 0.15.0），"
              "而该方案估算时未计入它。能运行它的最接近版本：--engine-version {nearest}（用它重新规划并启动）；"
              "或以 --images-per-request 1 重新规划"},
    "launch.vllm_mtp": {
        "en": "vllm {version} has no 'mtp' speculative method, which this plan's --speculative mtp needs. Nearest "
              "version that can: --engine-version {nearest} (plan and launch with it)",
        "zh": "vllm {version} 没有该方案的 --speculative mtp 所需的 'mtp' 推测解码方法。能运行它的最接近版本："
              "--engine-version {nearest}（用它重新规划并启动）"},
    "launch.trtllm_mtp": {
        "en": "trtllm-serve takes MTP speculative decoding from speculative_config in its --extra_llm_api_options "
              "YAML, a key rigsize does not write yet. Nearest plan that launches: the same with --engine vllm or "
              "--engine sglang",
        "zh": "trtllm-serve 的 MTP 推测解码取自其 --extra_llm_api_options YAML 中的 speculative_config，"
              "rigsize 尚未写入该键。能启动的最接近方案：同一方案改用 --engine vllm 或 --engine sglang"},
    "launch.vllm_ray": {
        "en": "vllm {version} has no --nnodes, and its Ray cluster serves one replica, not dp={dp} over nodes. "
              "Nearest version that can: --engine-version {nearest} (plan and launch with it); or plan with --dp 1",
        "zh": "vllm {version} 没有 --nnodes，其 Ray 集群只能运行一个副本，不能跨节点运行 dp={dp}。"
              "能运行它的最接近版本：--engine-version {nearest}（用它重新规划并启动）；或以 --dp 1 重新规划"},
    "launch.note_ray": {
        "en": "run the same command on each of the {nodes} nodes (HEAD_ADDR = node 0's address): node 0 starts the "
              "Ray head and vllm serve, which waits for all {gpus} GPUs to join",
        "zh": "在全部 {nodes} 个节点上各运行同一条命令（HEAD_ADDR = 0 号节点的地址）：0 号节点启动 Ray head 和 "
              "vllm serve，后者会等待全部 {gpus} 张 GPU 加入"},
    "launch.vllm_ep": {
        "en": "vllm sets EP = TP x DP = {ep}, not ep={asked}. Nearest plan vllm can run: the same with --ep {ep2}",
        "zh": "vllm 的专家并行度固定为 EP = TP x DP = {ep}，而非 ep={asked}。vllm 能运行的最接近方案："
              "同一方案加 --ep {ep2}"},
    "launch.sglang_kv_auto": {
        "en": "sglang {version} has no bf16 KV cache beside float16 weights (its --kv-cache-dtype auto is the model "
              "dtype). Nearest version that can: --engine-version 0.5.5",
        "zh": "sglang {version} 在 float16 模型权重下无法使用 bf16 KV 缓存（其 --kv-cache-dtype auto 即模型的数据类型）。"
              "能运行它的最接近版本：--engine-version 0.5.5"},
    "launch.no_architecture": {
        "en": "{tool} {version} has no {arch} ({model}'s architecture) in its model registry. Oldest pinned version "
              "that has it: --engine-version {oldest} (the default is {default})",
        "zh": "{tool} {version} 的模型注册表中没有 {arch}（{model} 的模型架构）。具备它的最早固定版本："
              "--engine-version {oldest}（默认版本为 {default}）"},
    "launch.no_architecture_any": {
        "en": "{tool} {version} has no {arch} ({model}'s architecture) in its model registry, nor has any pinned "
              "{tool} version ({versions}; the default is {default})",
        "zh": "{tool} {version} 的模型注册表中没有 {arch}（{model} 的模型架构），所有固定的 {tool} 版本（{versions}；"
              "默认版本为 {default}）也都没有"},
    "launch.not_inference": {
        "en": "{tool} serves models; this is a {task} plan. Nearest plan {tool} can run: rigsize launch {model} "
              "--task inference --engine {tool}",
        "zh": "{tool} 用于模型推理服务；这是一个 {task} 方案。{tool} 能运行的最接近方案：rigsize launch {model} "
              "--task inference --engine {tool}"},
    "launch.kv_dtype": {
        "en": "{tool} {version} has no {kv} KV cache (it takes {choices}). Nearest plan {tool} can run: the same "
              "with {hint}",
        "zh": "{tool} {version} 不支持 {kv} KV 缓存（支持 {choices}）。{tool} 能运行的最接近方案：同一方案加 {hint}"},
    "launch.weights": {
        "en": "{tool} {version} does not load {weights} weights in rigsize's list. Nearest plan {tool} can run: the "
              "same with --weights fp8 or awq-int4",
        "zh": "在 rigsize 支持的格式中，{tool} {version} 无法加载 {weights} 模型权重。{tool} 能运行的最接近方案："
              "同一方案加 --weights fp8 或 awq-int4"},
    "launch.no_checkpoint": {
        "en": "model '{model}' has no checkpoint to load (a bare size is a sizing stand-in); plan a preset, a Hub "
              "id or a config.json, e.g. rigsize launch qwen2.5-72b ...",
        "zh": "模型 '{model}' 没有可加载的检查点（仅给出规模只是估算的替身）；请用预设、Hub id 或 config.json 规划，"
              "例如 rigsize launch qwen2.5-72b ..."},
    "launch.engine_for_training": {
        "en": "--engine is for inference; this is a {task} plan. Nearest: rigsize launch {model} --task {task} "
              "--framework {framework}",
        "zh": "--engine 用于推理；这是一个 {task} 方案。最接近的做法：rigsize launch {model} --task {task} "
              "--framework {framework}"},
    "launch.framework_not_sized": {
        "en": "this plan was sized for {sized}, not {name}. Nearest plan {name} can run: rigsize launch {model} "
              "--task {task} --framework {name}",
        "zh": "该方案按 {sized} 估算，而非 {name}。{name} 能运行的最接近方案：rigsize launch {model} --task {task} "
              "--framework {name}"},
    "launch.no_framework": {
        "en": "no launch emitter for framework {name} yet ({choices}). Nearest: rigsize launch {model} --task "
              "{task} --framework {framework}",
        "zh": "暂不支持为训练框架 {name} 生成启动配置（已支持：{choices}）。最接近的做法：rigsize launch {model} "
              "--task {task} --framework {framework}"},
    "launch.bad_target": {"en": "--target {target}: one of {choices}",
                          "zh": "--target {target}：应为 {choices} 之一"},
    "launch.no_engine": {
        "en": "no launch emitter for engine {name} yet ({choices}). Nearest: rigsize launch {model} --task "
              "inference --engine vllm",
        "zh": "暂不支持为推理引擎 {name} 生成启动配置（已支持：{choices}）。最接近的做法：rigsize launch {model} "
              "--task inference --engine vllm"},
    "launch.engine_not_sized": {
        "en": "this plan was sized for {sized}, not {name} (memory budgets and speed differ). Nearest plan {name} "
              "can run: rigsize launch {model} --task inference --engine {name}",
        "zh": "该方案按 {sized} 估算，而非 {name}（显存预算和速度都不同）。{name} 能运行的最接近方案："
              "rigsize launch {model} --task inference --engine {name}"},
    "launch.local_not_sized": {
        "en": "this plan was sized for {sized}, not {name} (memory and speed differ). Nearest plan {name} can run: "
              "rigsize launch {model} --task inference --engine {name}",
        "zh": "该方案按 {sized} 估算，而非 {name}（显存和速度都不同）。{name} 能运行的最接近方案："
              "rigsize launch {model} --task inference --engine {name}"},
    "launch.launcher_inference": {
        "en": "--launcher is for training commands; {task} plans are served by their engine. Nearest: rigsize "
              "launch {model} --task {task} without --launcher",
        "zh": "--launcher 用于训练命令；{task} 方案由推理引擎提供服务。最接近的做法：rigsize launch {model} "
              "--task {task}，不加 --launcher"},
    "launch.bad_launcher": {"en": "--launcher {launcher}: one of {choices}",
                            "zh": "--launcher {launcher}：应为 {choices} 之一"},
    "launch.launcher_unfit": {
        "en": "{tool} does not run under {launcher} in rigsize's launches (it runs under {allowed}). Nearest: the "
              "same with --launcher {first}",
        "zh": "在 rigsize 生成的启动配置中，{tool} 不能由 {launcher} 启动（可用 {allowed}）。最接近的做法："
              "同一方案加 --launcher {first}"},
    "launch.srun_outside_slurm": {
        "en": "srun starts processes inside a Slurm allocation; this launch targets {target}. Nearest: the same "
              "with --target slurm, or --launcher {first}",
        "zh": "srun 只在 Slurm 分配的资源内启动进程；本次启动的目标平台是 {target}。最接近的做法：同一方案加 "
              "--target slurm，或 --launcher {first}"},
    "launch.ds_batch": {
        "en": "global batch {total} is not a whole number of micro-batches of {micro} on {dp} data-parallel ranks. "
              "Nearest plan it can run: --global-batch {batch}",
        "zh": "全局批次 {total} 不是 {dp} 个数据并行 rank 上大小为 {micro} 的微批次的整数倍。能运行的最接近方案："
              "--global-batch {batch}"},
    "launch.ds_layout": {
        "en": "DeepSpeed ZeRO shards over data parallelism only; this plan has tp={tp} pp={pp} cp={cp}. Nearest "
              "plan it can run: --framework deepspeed --zero 3 on the same {gpus} GPUs, or --framework megatron",
        "zh": "DeepSpeed ZeRO 只在数据并行维度上分片；该方案为 tp={tp} pp={pp} cp={cp}。能运行的最接近方案："
              "在同样的 {gpus} 张 GPU 上 --framework deepspeed --zero 3，或 --framework megatron"},
    "launch.ds_offload": {
        "en": "DeepSpeed offloads the optimizer from ZeRO stage 2 and parameters at stage 3; this plan has --zero "
              "{zero} --offload {offload}. Nearest plan it can run: the same with --zero 3",
        "zh": "DeepSpeed 从 ZeRO 第 2 阶段起才能卸载优化器状态，第 3 阶段才能卸载参数；该方案为 --zero {zero} "
              "--offload {offload}。能运行的最接近方案：同一方案加 --zero 3"},
    "launch.k8s_engine": {
        "en": "--target k8s runs vLLM or SGLang for inference (a LeaderWorkerSet); this plan is for {tool}. Nearest "
              "plan it can run: rigsize launch {model} --task inference --engine vllm --target k8s, or --target "
              "skypilot",
        "zh": "--target k8s 的推理只运行 vLLM 或 SGLang（LeaderWorkerSet）；该方案使用 {tool}。能运行的最接近方案："
              "rigsize launch {model} --task inference --engine vllm --target k8s，或 --target skypilot"},
    "launch.no_context": {
        "en": "the plan records no context size (memory.max_model_len); plan again with this rigsize",
        "zh": "该方案没有记录上下文长度（memory.max_model_len）；请用当前版本的 rigsize 重新规划"},
    "launch.gguf_weights": {
        "en": "llama.cpp loads GGUF types; {weights} is not one. Nearest plan llama.cpp can run: the same with "
              "--weights q4_k_m",
        "zh": "llama.cpp 只加载 GGUF 类型，{weights} 不是。llama.cpp 能运行的最接近方案：同一方案加 --weights q4_k_m"},
    "launch.llamacpp_kv": {
        "en": "llama.cpp has no {kv} KV cache (it takes f16, bf16, q8_0, q4_0). Nearest plan llama.cpp can run: "
              "the same with --kv-dtype q8_0",
        "zh": "llama.cpp 不支持 {kv} KV 缓存（支持 f16、bf16、q8_0、q4_0）。llama.cpp 能运行的最接近方案："
              "同一方案加 --kv-dtype q8_0"},
    "launch.lf_inference": {
        "en": "LLaMA-Factory trains; this is an inference plan. Nearest: rigsize launch {model} --task inference "
              "--engine vllm",
        "zh": "LLaMA-Factory 用于训练；这是一个推理方案。最接近的做法：rigsize launch {model} --task inference "
              "--engine vllm"},
    "launch.lf_layout": {
        "en": "LLaMA-Factory trains data-parallel (ZeRO through DeepSpeed); this plan has tp={tp} pp={pp} cp={cp}. "
              "Nearest plan it can run: --framework llamafactory --zero 3 on {gpus} GPUs, or --framework megatron",
        "zh": "LLaMA-Factory 只做数据并行训练（ZeRO 借助 DeepSpeed）；该方案为 tp={tp} pp={pp} cp={cp}。能运行的"
              "最接近方案：在 {gpus} 张 GPU 上 --framework llamafactory --zero 3，或 --framework megatron"},
    "launch.lf_recompute": {
        "en": "LLaMA-Factory checkpoints whole layers or nothing (disable_gradient_checkpointing); this plan has "
              "--recompute selective. Nearest plan it can run: the same with --recompute full",
        "zh": "LLaMA-Factory 的梯度检查点只能整层开启或全部关闭（disable_gradient_checkpointing）；该方案为 "
              "--recompute selective。能运行的最接近方案：同一方案加 --recompute full"},
    "launch.megatron_task": {
        "en": "Megatron-LM trains all weights; this is a {task} plan. Nearest: rigsize launch {model} --task "
              "{task} --framework hf",
        "zh": "Megatron-LM 训练全部权重；这是一个 {task} 方案。最接近的做法：rigsize launch {model} --task {task} "
              "--framework hf"},
    "launch.megatron_zero": {
        "en": "Megatron-LM shards optimizer states only (--use-distributed-optimizer, like ZeRO-1); this plan has "
              "--zero {zero} --offload {offload}. Nearest plan it can run: --framework megatron --zero 1 --offload "
              "none, or --framework deepspeed",
        "zh": "Megatron-LM 只对优化器状态分片（--use-distributed-optimizer，相当于 ZeRO-1）；该方案为 --zero {zero} "
              "--offload {offload}。能运行的最接近方案：--framework megatron --zero 1 --offload none，或 "
              "--framework deepspeed"},
    "launch.megatron_vpp": {
        "en": "{layers} layers do not split into pp={pp} x vpp={vpp} virtual stages. Nearest plan it can run: "
              "--vpp 1",
        "zh": "{layers} 层无法均分为 pp={pp} x vpp={vpp} 个虚拟流水线阶段。能运行的最接近方案：--vpp 1"},
    "launch.mlx_weights": {
        "en": "mlx-lm loads MLX formats; {weights} is not one. Nearest plan mlx can run: the same with --weights "
              "mlx-4bit",
        "zh": "mlx-lm 只加载 MLX 格式，{weights} 不是。mlx 能运行的最接近方案：同一方案加 --weights mlx-4bit"},
    "launch.ollama_kv": {
        "en": "Ollama's KV cache types are f16, q8_0, q4_0, not {kv}. Nearest plan Ollama can run: the same with "
              "--kv-dtype q8_0",
        "zh": "Ollama 的 KV 缓存类型为 f16、q8_0、q4_0，不支持 {kv}。Ollama 能运行的最接近方案：同一方案加 "
              "--kv-dtype q8_0"},
    "launch.skypilot_gpu": {
        "en": "{gpu} has no SkyPilot accelerator name in the GPU catalog (skypilot_name). Nearest plan SkyPilot "
              "can run: the same on --gpu H100-SXM-80GB or another GPU 'rigsize gpus' lists with one, or --target "
              "slurm",
        "zh": "GPU 目录中 {gpu} 没有 SkyPilot 加速器名称（skypilot_name）。SkyPilot 能运行的最接近方案：同一方案改用 "
              "--gpu H100-SXM-80GB 或 'rigsize gpus' 中带此名称的其他 GPU，或 --target slurm"},
    "launch.titan_recipe": {
        "en": "torchtitan {version} trains its own model definitions and has no recipe for {hub} (it has "
              "{choices}). Nearest plan it can run: rigsize launch {model} --task {task} --framework megatron",
        "zh": "torchtitan {version} 只训练其自带的模型定义，没有 {hub} 的配方（已有 {choices}）。能运行的最接近方案："
              "rigsize launch {model} --task {task} --framework megatron"},
    "launch.titan_task": {
        "en": "torchtitan trains all weights; this is a {task} plan. Nearest: rigsize launch {model} --task {task} "
              "--framework hf",
        "zh": "torchtitan 训练全部权重；这是一个 {task} 方案。最接近的做法：rigsize launch {model} --task {task} "
              "--framework hf"},
    "launch.titan_zero": {
        "en": "torchtitan shards with FSDP2 (ZeRO-3, optional CPU offload of parameters, gradients and optimizer "
              "together) or replicates (DDP); this plan has --zero {zero} --offload {offload}. Nearest plan it can "
              "run: the same with --zero 3{extra}",
        "zh": "torchtitan 用 FSDP2 分片（ZeRO-3，可将参数、梯度和优化器状态一起卸载到 CPU）或做复制（DDP）；该方案为 "
              "--zero {zero} --offload {offload}。能运行的最接近方案：同一方案加 --zero 3{extra}"},
    "launch.titan_vpp": {
        "en": "rigsize writes torchtitan's default pipeline schedule (one stage per rank); this plan has vpp={vpp}. "
              "Nearest plan it can run: the same with --vpp 1",
        "zh": "rigsize 按 torchtitan 默认的流水线调度（每个 rank 一个阶段）编写；该方案为 vpp={vpp}。能运行的"
              "最接近方案：同一方案加 --vpp 1"},
    "launch.titan_fp8": {
        "en": "rigsize writes torchtitan's bf16 recipes; this plan trains fp8 GEMMs. Nearest plan it can run: the "
              "same with --precision bf16",
        "zh": "rigsize 按 torchtitan 的 bf16 配方编写；该方案以 fp8 GEMM 训练。能运行的最接近方案：同一方案加 "
              "--precision bf16"},
    "launch.trl_task": {
        "en": "trl sft fine-tunes; this is a {task} plan. Nearest: rigsize launch {model} --task {task} {other}",
        "zh": "trl sft 用于微调；这是一个 {task} 方案。最接近的做法：rigsize launch {model} --task {task} {other}"},
    "launch.trl_framework": {
        "en": "trl sft runs plans for {frameworks}; this plan was sized for {framework}. Nearest plan it can run: "
              "rigsize launch {model} --task {task} --framework deepspeed",
        "zh": "trl sft 只运行为 {frameworks} 估算的方案；该方案按 {framework} 估算。能运行的最接近方案："
              "rigsize launch {model} --task {task} --framework deepspeed"},
    "launch.trl_layout": {
        "en": "trl sft scales by data parallelism (with ZeRO); this plan has tp={tp} pp={pp}. Nearest plan it can "
              "run: --framework deepspeed --zero 3 on {gpus} GPUs",
        "zh": "trl sft 靠数据并行（配合 ZeRO）扩展；该方案为 tp={tp} pp={pp}。能运行的最接近方案：在 {gpus} 张 GPU "
              "上 --framework deepspeed --zero 3"},
    "launch.trtllm_dp": {
        "en": "trtllm-serve is one model replica (data parallelism only as attention DP of an MoE model with tp=1); "
              "this plan has tp={tp} dp={dp} ep={ep}. Nearest plan it can run: --gpus {gpus} --tp {tp2} (one "
              "replica; run {dp2} behind a load balancer)",
        "zh": "trtllm-serve 只是一个模型副本（数据并行仅限 tp=1 的 MoE 模型的注意力 DP）；该方案为 tp={tp} dp={dp} "
              "ep={ep}。能运行的最接近方案：--gpus {gpus} --tp {tp2}（一个副本；在负载均衡器后运行 {dp2} 个）"},
    "launch.uneven_nodes": {
        "en": "the plan's {gpus} GPUs do not fill its {nodes} nodes of {per_node}; launchers start the same GPUs "
              "on every node. Nearest plan it can run: the same on --gpus {low} or --gpus {high}",
        "zh": "该方案的 {gpus} 块 GPU 无法均匀占满 {nodes} 个各 {per_node} 块 GPU 的节点；启动器在每个节点上启动相同数量的 "
              "GPU。能运行的最接近方案：同一方案改为 --gpus {low} 或 --gpus {high}"},
    "launch.trtllm_nodes": {
        "en": "rigsize writes TensorRT-LLM {version} for one node; this plan spans {nodes} (trtllm-serve runs "
              "across nodes under mpirun/srun with trtllm-llmapi-launch). Nearest plan it can run: the same on "
              "--gpus {gpus}, or --engine vllm",
        "zh": "rigsize 只为单节点编写 TensorRT-LLM {version}；该方案跨 {nodes} 个节点（trtllm-serve 跨节点需在 "
              "mpirun/srun 下配合 trtllm-llmapi-launch 运行）。能运行的最接近方案：同一方案改为 --gpus {gpus}，"
              "或 --engine vllm"},
    "launch.trtllm_weights": {
        "en": "TensorRT-LLM {version}'s PyTorch backend loads bf16/fp16 or ModelOpt fp8/nvfp4 checkpoints in "
              "rigsize's list, not {weights}. Nearest plan it can run: the same with --weights fp8",
        "zh": "在 rigsize 支持的格式中，TensorRT-LLM {version} 的 PyTorch 后端加载 bf16/fp16 或 ModelOpt fp8/nvfp4 "
              "检查点，不支持 {weights}。能运行的最接近方案：同一方案加 --weights fp8"},
    "launch.trtllm_ep": {
        "en": "TensorRT-LLM splits experts inside the TP group (--ep_size divides --tp_size); this plan has tp={tp} "
              "ep={ep}. Nearest plan it can run: --ep {tp2}",
        "zh": "TensorRT-LLM 在张量并行组内切分专家（--ep_size 整除 --tp_size）；该方案为 tp={tp} ep={ep}。"
              "能运行的最接近方案：--ep {tp2}"},
    # notes
    "launch.note_prequantized_vllm": {
        "en": "serve a {weights} checkpoint of {model}: vLLM reads its quantization_config",
        "zh": "使用 {model} 的 {weights} 检查点：vLLM 会读取其中的 quantization_config"},
    "launch.note_prequantized_sglang": {
        "en": "serve a {weights} checkpoint of {model}: SGLang reads its quantization_config",
        "zh": "使用 {model} 的 {weights} 检查点：SGLang 会读取其中的 quantization_config"},
    "launch.note_modelopt": {
        "en": "serve a ModelOpt {weights} checkpoint of {model} (hf_quant_config.json): TensorRT-LLM's PyTorch "
              "backend does not quantize at load",
        "zh": "使用 {model} 的 ModelOpt {weights} 检查点（hf_quant_config.json）：TensorRT-LLM 的 PyTorch 后端"
              "不在加载时量化"},
    "launch.note_nodes_rank0": {
        "en": "run the same command on each of the {nodes} nodes, node rank 0 first (HEAD_ADDR = node 0's address)",
        "zh": "在全部 {nodes} 个节点上各运行同一条命令，先启动 0 号节点（HEAD_ADDR = 0 号节点的地址）"},
    "launch.note_nodes": {
        "en": "run the same command on each of the {nodes} nodes (HEAD_ADDR = node 0's address)",
        "zh": "在全部 {nodes} 个节点上各运行同一条命令（HEAD_ADDR = 0 号节点的地址）"},
    "launch.note_nodes_env": {
        "en": "run on each of the {nodes} nodes with NODE_RANK and HEAD_ADDR set",
        "zh": "在全部 {nodes} 个节点上运行，并设置 NODE_RANK 和 HEAD_ADDR"},
    "launch.note_fit_off": {
        "en": "--fit off: llama.cpp would otherwise shrink unset parameters to its own fit; the values written are "
              "the ones rigsize sized",
        "zh": "--fit off：否则 llama.cpp 会按自己的估算缩小未设置的参数；写入的取值就是 rigsize 估算的取值"},
    "launch.note_split": {
        "en": "{gpus} GPUs: llama.cpp splits by each device's free memory (--tensor-split to set it)",
        "zh": "{gpus} 张 GPU：llama.cpp 按各设备的空闲显存切分（用 --tensor-split 指定）"},
    "launch.note_gguf": {
        "en": "or download a ready {quant} GGUF of {hub} and name it {out}",
        "zh": "也可以下载 {hub} 现成的 {quant} GGUF 文件，并命名为 {out}"},
    "launch.note_lf_dataset": {
        "en": "DATASET, TEMPLATE in llamafactory.yaml: a dataset name from LLaMA-Factory's data/dataset_info.json "
              "and the model's chat template (e.g. qwen, llama3)",
        "zh": "llamafactory.yaml 中的 DATASET、TEMPLATE：LLaMA-Factory 的 data/dataset_info.json 中的数据集名称，"
              "以及模型的对话模板（例如 qwen、llama3）"},
    "launch.note_data_args": {
        "en": "DATA_ARGS: data, tokenizer and optimizer arguments (not sized by rigsize)",
        "zh": "DATA_ARGS：数据、分词器和优化器参数（rigsize 不估算这些）"},
    "launch.note_mlx_kv": {
        "en": "mlx-lm grows its KV cache with each request (no context is reserved): the plan's memory is for its "
              "prompt + output tokens",
        "zh": "mlx-lm 的 KV 缓存随请求增长（不预留上下文）：方案的内存按其输入 token + 输出 token 估算"},
    "launch.note_ollama_serve": {
        "en": "ollama serve runs in its own terminal (or as the system service, with the same environment)",
        "zh": "ollama serve 在单独的终端中运行（或作为系统服务运行，环境变量相同）"},
    "launch.note_titan_assets": {
        "en": "tokenizer and config: torchtitan's scripts/download_hf_assets.py --repo_id {hub} --assets tokenizer "
              "(into ./assets/hf/{name}, the registry config's hf_assets_path); data, optimizer and steps are the "
              "registry config's (override with --section.key)",
        "zh": "分词器和配置：torchtitan 的 scripts/download_hf_assets.py --repo_id {hub} --assets tokenizer"
              "（下载到 ./assets/hf/{name}，即注册配置的 hf_assets_path）；数据、优化器和步数沿用注册配置"
              "（用 --section.key 覆盖）"},
    "launch.note_trl_dataset": {
        "en": "DATASET: a Hugging Face dataset id or local dataset TRL can read",
        "zh": "DATASET：Hugging Face 数据集 id，或 TRL 能读取的本地数据集"},
    "launch.note_k8s_vars": {"en": "set {vars} in k8s.yaml (declared empty)",
                             "zh": "在 k8s.yaml 中设置 {vars}（已声明为空）"},
    "launch.note_k8s_replicas": {
        "en": "{replicas} LWS replicas of {nodes} node(s) each serve one {tool} instance; the Service spreads "
              "requests over their leaders",
        "zh": "{replicas} 个 LWS 副本，每个 {nodes} 个节点，各运行一个 {tool} 实例；Service 把请求分发到各副本的 leader"},
    "launch.note_k8s_rdma": {
        "en": "RDMA: add your cluster's RDMA device resource (e.g. the NVIDIA Network Operator's "
              "rdma/rdma_shared_device_a) and secondary-network annotation to the pods; without them NCCL falls "
              "back to TCP sockets on eth0",
        "zh": "RDMA：为 Pod 加上集群的 RDMA 设备资源（例如 NVIDIA Network Operator 的 rdma/rdma_shared_device_a）"
              "和辅助网络注解；否则 NCCL 会退回到 eth0 上的 TCP 套接字"},
    "launch.note_k8s_token": {
        "en": "HF_TOKEN: kubectl create secret generic hf-token --from-literal=token=... (optional)",
        "zh": "HF_TOKEN：kubectl create secret generic hf-token --from-literal=token=...（可选）"},
    "launch.note_fsdp": {
        "en": "FSDP2 {mode} over {dp} ranks, fp32 parameters computed in bf16, as rigsize sized it",
        "zh": "FSDP2 {mode}，{dp} 个 rank，FP32 参数以 BF16 计算，与 rigsize 的估算一致"},
    "launch.note_fsdp_lora": {
        "en": "FSDP2 {mode} over {dp} ranks, a bf16 frozen base with fp32 adapters computed in bf16, as rigsize sized it",
        "zh": "FSDP2 {mode}，{dp} 个 rank，冻结的基座为 BF16、适配器为 FP32，以 BF16 计算，与 rigsize 的估算一致"},
    "launch.note_tune_dataset": {
        "en": "dataset: the config's ({config}); override dataset._component_=... for your own",
        "zh": "数据集：沿用配置 {config} 中的；用 dataset._component_=... 换成你自己的"},
    "launch.note_tune_seq": {
        "en": "{config} sets no tokenizer.max_seq_len: samples keep the dataset's length (planned {seq} tokens)",
        "zh": "{config} 未设置 tokenizer.max_seq_len：样本保持数据集中的长度（规划为 {seq} 个 token）"},
    "launch.note_tune_alpha": {"en": "lora_alpha stays the config's (it does not change memory)",
                               "zh": "lora_alpha 沿用配置中的取值（它不影响显存）"},
    "launch.note_tune_fsdp": {
        "en": "torchtune's distributed recipes shard with FSDP2 whatever the plan's --zero {zero}: its model states "
              "per GPU are an upper bound",
        "zh": "无论方案的 --zero {zero} 为何，torchtune 的分布式配方都用 FSDP2 分片：方案中每卡的模型状态是上界"},
    "launch.note_tune_repo": {
        "en": "{config} was written for {repo}; the overrides point it at {hub} (same architecture); check "
              "checkpointer.checkpoint_files against the download",
        "zh": "{config} 原为 {repo} 编写；覆盖项把它指向 {hub}（架构相同）；请对照下载的文件检查 "
              "checkpointer.checkpoint_files"},
    # FSDP and torchtune launches (launch/fsdp.py, launch/torchtune.py)
    "launch.fsdp_qlora": {
        "en": "rigsize writes FSDP for full and LoRA fine-tuning; QLoRA under FSDP needs 4-bit storage in the FSDP "
              "dtype, which rigsize does not size. Nearest plan it can run: rigsize launch {model} --task qlora "
              "--framework hf",
        "zh": "rigsize 只为全参数微调和 LoRA 微调编写 FSDP；FSDP 下的 QLoRA 需要以 FSDP 的数据类型存储 4 比特权重，"
              "rigsize 不估算这种情况。能运行的最接近方案：rigsize launch {model} --task qlora --framework hf"},
    "launch.fsdp_zero": {
        "en": "FSDP2 shards gradients and optimizer states (ZeRO-2, SHARD_GRAD_OP) or everything (ZeRO-3, "
              "FULL_SHARD); this plan has --zero {zero}. Nearest plan it can run: the same with --zero 3",
        "zh": "FSDP2 对梯度和优化器状态分片（ZeRO-2，SHARD_GRAD_OP），或全部分片（ZeRO-3，FULL_SHARD）；该方案为 "
              "--zero {zero}。能运行的最接近方案：同一方案加 --zero 3"},
    "launch.fsdp_offload": {
        "en": "FSDP offloads parameters and gradients together (the optimizer then steps on the CPU), not the "
              "optimizer states alone. Nearest plan it can run: the same with --offload params",
        "zh": "FSDP 把参数和梯度一起卸载（优化器随之在 CPU 上更新），不能只卸载优化器状态。能运行的最接近方案："
              "同一方案加 --offload params"},
    "launch.fsdp_recompute": {
        "en": "FSDP's activation checkpointing recomputes whole layers; this plan has --recompute selective. "
              "Nearest plan it can run: the same with --recompute full",
        "zh": "FSDP 的激活重计算以整层为单位；该方案为 --recompute selective。能运行的最接近方案："
              "同一方案加 --recompute full"},
    "launch.tune_no_config": {
        "en": "torchtune {version} has no {recipe} config for {hub} (it has them for presets {have}). Nearest plan "
              "it can run: rigsize launch {first} --task {task} --framework torchtune, or {model} with --framework hf",
        "zh": "torchtune {version} 没有 {hub} 的 {recipe} 配置（有配置的预设：{have}）。能运行的最接近方案："
              "rigsize launch {first} --task {task} --framework torchtune，或对 {model} 用 --framework hf"},
    "launch.tune_lora_targets": {
        "en": "torchtune's LoRA takes attention projections (q/k/v/o_proj) and the whole MLP or none "
              "(apply_lora_to_mlp); this plan targets {targets}. Nearest plan it can run: the same without "
              "--lora-targets (every linear layer)",
        "zh": "torchtune 的 LoRA 作用于注意力投影（q/k/v/o_proj），MLP 则整体作用或不作用（apply_lora_to_mlp）；"
              "该方案的目标模块为 {targets}。能运行的最接近方案：同一方案去掉 --lora-targets（所有线性层）"},
    "launch.tune_task": {
        "en": "torchtune's recipes fine-tune; this is a {task} plan. Nearest: rigsize launch {model} --task {task} "
              "{other}",
        "zh": "torchtune 的配方用于微调；这是一个 {task} 方案。最接近的做法：rigsize launch {model} --task {task} "
              "{other}"},
    "launch.tune_layout": {
        "en": "rigsize writes torchtune's data-parallel (FSDP2) recipes; this plan has tp={tp} pp={pp} cp={cp}. "
              "Nearest plan it can run: --framework torchtune --zero 3 on {gpus} GPUs",
        "zh": "rigsize 按 torchtune 的数据并行（FSDP2）配方编写；该方案为 tp={tp} pp={pp} cp={cp}。能运行的最接近"
              "方案：在 {gpus} 张 GPU 上 --framework torchtune --zero 3"},
    "launch.tune_fp16": {
        "en": "torchtune's recipes train in bf16 or fp32, not fp16. Nearest plan it can run: the same with "
              "--weights bf16",
        "zh": "torchtune 的配方以 bf16 或 fp32 训练，不支持 fp16。能运行的最接近方案：同一方案加 --weights bf16"},
    "launch.tune_recompute": {
        "en": "torchtune checkpoints whole layers (enable_activation_checkpointing); this plan has --recompute "
              "selective. Nearest plan it can run: the same with --recompute full",
        "zh": "torchtune 的梯度检查点以整层为单位（enable_activation_checkpointing）；该方案为 --recompute "
              "selective。能运行的最接近方案：同一方案加 --recompute full"},
    "launch.tune_offload": {
        "en": "torchtune offloads parameters, gradients and optimizer states together through FSDP "
              "(fsdp_cpu_offload, distributed recipes); this plan has --offload {offload} on {gpus} GPU(s). "
              "Nearest plan it can run: the same with {fix}",
        "zh": "torchtune 通过 FSDP 把参数、梯度和优化器状态一起卸载（fsdp_cpu_offload，分布式配方）；该方案为 "
              "--offload {offload}，{gpus} 张 GPU。能运行的最接近方案：同一方案加 {fix}"},
    "launch.tune_optimizer": {
        "en": "torchtune's {config} steps with {have}; this plan sized {opt}. Nearest plan it can run: the same "
              "with --optimizer {fix}",
        "zh": "torchtune 的 {config} 使用 {have} 优化器；该方案按 {opt} 估算。能运行的最接近方案：同一方案加 "
              "--optimizer {fix}"},
    "launch.tune_accumulation": {
        "en": "torchtune steps in backward only without gradient accumulation; this plan accumulates {steps} "
              "micro-batches. Nearest plan it can run: the same with --global-batch {batch}",
        "zh": "torchtune 只有在不做梯度累积时才能在反向传播中更新参数；该方案累积 {steps} 个微批次。能运行的最接近"
              "方案：同一方案加 --global-batch {batch}"},
    "launch.tune_no_bwd": {
        "en": "torchtune's {recipe} has no optimizer_in_bwd; this plan steps in backward. Nearest plan it can run: "
              "the same without --optimizer-in-backward",
        "zh": "torchtune 的 {recipe} 没有 optimizer_in_bwd；该方案在反向传播中更新参数。能运行的最接近方案："
              "同一方案去掉 --optimizer-in-backward"},
    "launch.tune_keys": {
        "en": "torchtune's {config} has no {keys} to set for this plan. Nearest plan it can run: rigsize launch "
              "{model} --task {task} --framework hf",
        "zh": "torchtune 的 {config} 没有该方案需要设置的 {keys}。能运行的最接近方案：rigsize launch {model} "
              "--task {task} --framework hf"},
    # the plan file a launch reads (launch/plan.py)
    "launch.plan_missing": {"en": "--plan-file {path}: no such file", "zh": "--plan-file {path}：文件不存在"},
    "launch.plan_directory": {"en": "--plan-file {path}: a directory; give the JSON file that rigsize plan --json wrote",
                              "zh": "--plan-file {path}：这是一个目录；请给出 rigsize plan --json 写出的 JSON 文件"},
    "launch.plan_unreadable": {"en": "--plan-file {path}: cannot be read ({detail})",
                               "zh": "--plan-file {path}：无法读取（{detail}）"},
    "launch.plan_bad_json": {"en": "--plan-file {path}: not valid JSON ({detail})",
                             "zh": "--plan-file {path}：不是合法的 JSON（{detail}）"},
    "launch.plan_not_object": {
        "en": "not a rigsize plan: the file must hold the JSON object rigsize plan --json prints",
        "zh": "不是 rigsize 方案：文件必须是 rigsize plan --json 输出的 JSON 对象"},
    "launch.plan_overview": {"en": "this plan file is an overview; add --scenario KEY ({keys})",
                             "zh": "该方案文件是场景总览；请加上 --scenario KEY（{keys}）"},
    "launch.plan_no_scenario": {"en": "--scenario {scenario}: not in this plan file ({keys})",
                                "zh": "--scenario {scenario}：不在该方案文件中（{keys}）"},
    "launch.plan_scenario_error": {"en": "scenario {scenario} has no plan: {error}",
                                   "zh": "场景 {scenario} 没有方案：{error}"},
    "launch.plan_scenario_flag": {
        "en": "--scenario needs an overview plan file (rigsize plan MODEL --json without --task)",
        "zh": "--scenario 需要场景总览的方案文件（rigsize plan MODEL --json，不加 --task）"},
    "launch.plan_no_recs": {
        "en": "not a rigsize plan: no 'recommendations' (save one with rigsize plan MODEL --task T --json)",
        "zh": "不是 rigsize 方案：缺少 'recommendations'（用 rigsize plan MODEL --task T --json 保存一份）"},
    "launch.plan_empty": {
        "en": "the plan has no recommendation (nothing met the goals; rejected: {rejected}); relax them and plan again",
        "zh": "该方案没有推荐配置（没有满足目标的方案；淘汰原因：{rejected}）；请放宽目标后重新规划"},
    "launch.plan_rank": {"en": "--rank {rank}: the plan has ranks 1 to {count}",
                         "zh": "--rank {rank}：该方案只有第 1 到第 {count} 名"},
    "launch.cli_both": {"en": "give MODEL or --plan-file, not both", "zh": "MODEL 与 --plan-file 只能给一个"},
    "launch.cli_task": {"en": "rigsize launch MODEL needs --task (or --plan-file FILE)",
                        "zh": "rigsize launch MODEL 需要 --task（或 --plan-file FILE）"},
    "launch.cli_nothing": {"en": "rigsize launch needs MODEL --task T, or --plan-file FILE",
                           "zh": "rigsize launch 需要 MODEL --task T，或 --plan-file FILE"},
}


def current_lang(explicit: str | None = None) -> str:
    """``explicit`` (from ``--lang``) wins, then ``RIGSIZE_LANG``, then English."""
    lang = (explicit or os.environ.get("RIGSIZE_LANG") or "en").lower()
    return lang if lang in LANGS else "en"


def render(key: str, lang: str = "en", /, **params: object) -> str:
    """The text for ``key`` in ``lang`` (English where a translation is missing)."""
    entry = MESSAGES.get(key)
    if entry is None:  # a programming error, but never hide the user's problem
        return f"{key}: {params}"
    template = entry.get(lang) or entry["en"]
    # a Note inside a message (a hint, a reason) is rendered in the same language
    params = {k: v.render(lang) if isinstance(v, Note) else v for k, v in params.items()}
    if key == "input.conflict" and lang != "en" and isinstance(params.get("what"), str):
        # a sentence raised in English ("{what}", e.g. a launch refusal): its own template's translation
        params["what"] = translate(params["what"], lang)
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return entry["en"] + f" {params}"


def t(key: str, lang: str = "en") -> str:
    """A label without parameters."""
    return render(key, lang)


_FIELD = re.compile(r"\{(\w+)[^{}]*\}")


@cache
def _english_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """A regex per English template (fields become groups), most literal text first;
    templates with no words of their own ("{what}", "{path}: {detail}") cannot be
    recognised and are left out."""
    out = []
    for key, entry in MESSAGES.items():
        en = entry["en"]
        if sum(c.isalpha() for c in _FIELD.sub("", en)) < 3:
            continue
        regex, pos, seen = "", 0, set()
        for m in _FIELD.finditer(en):
            name = m.group(1)
            regex += re.escape(en[pos:m.start()]) + (f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
            seen.add(name)
            pos = m.end()
        out.append((len(_FIELD.sub("", en)), re.compile(regex + re.escape(en[pos:]), re.S), key))
    return tuple((p, k) for _, p, k in sorted(out, key=lambda row: -row[0]))


def translate(text: str, lang: str) -> str:
    """``text`` (a message rendered in English, as reports store warnings) in ``lang``:
    matched against the English templates and re-rendered with the same field values."""
    if lang == "en":
        return text
    for pattern, key in _english_patterns():
        m = pattern.fullmatch(text)
        if m and lang in MESSAGES[key]:
            values = m.groupdict()
            return _FIELD.sub(lambda f: values.get(f.group(1), f.group(0)), MESSAGES[key][lang])
    return text


@dataclass(frozen=True)
class Note:
    """A message kept as key and parameters, rendered late in the reader's language
    (English in JSON, which is never localized)."""

    key: str
    params: dict[str, object] = field(default_factory=dict)

    def render(self, lang: str = "en") -> str:
        return render(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render("en")
