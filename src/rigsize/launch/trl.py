"""``trl sft`` for fine-tuning plans (full, LoRA, QLoRA), with PEFT's LoRA settings and, for a DeepSpeed
plan, its ds_config.

Flags: TRL 1.16.0's parser HfArgumentParser((ScriptArguments, SFTConfig, ModelConfig)), pinned in
data/launch/trl-1.16.0-sft-flags.txt; trl sft hands the arguments it does not know to ``accelerate
launch`` (trl/cli/commands/training.py), whose flags are pinned in accelerate-1.15.0-launch-flags.txt.
ModelConfig's use_peft / lora_r / lora_target_modules / load_in_4bit / bnb_4bit_quant_type become a
peft.LoraConfig and a transformers BitsAndBytesConfig (trl/trainer/utils.py get_peft_config,
get_quantization_config).  lora_alpha and lora_dropout keep TRL's defaults (32, 0.05): rigsize's memory
does not depend on them.
"""

from __future__ import annotations

from rigsize.launch import deepspeed
from rigsize.launch.bundle import Launch, LaunchError, LaunchFile, command_line
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "1.16.0"
FLAGS_FILE = f"trl-{VERSION}-sft-flags.txt"
ACCELERATE_FLAGS_FILE = "accelerate-1.15.0-launch-flags.txt"
FRAMEWORKS = ("hf", "trl", "deepspeed")
MAIN_PORT = 29500          # accelerate's default --main_process_port


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK") -> Launch:
    if run.task == "inference" or run.task == "pretrain":
        other = "--engine vllm" if run.task == "inference" else "--framework megatron"
        raise LaunchError(f"trl sft fine-tunes; this is a {run.task} plan. Nearest: rigsize launch {run.model} "
                          f"--task {run.task} {other}")
    if run.framework not in FRAMEWORKS:
        raise LaunchError(f"trl sft runs plans for hf, trl or deepspeed; this plan was sized for {run.framework}. "
                          f"Nearest plan it can run: rigsize launch {run.model} --task {run.task} --framework deepspeed")
    if run.tp > 1 or run.pp > 1 or run.cp > 1:
        raise LaunchError(f"trl sft scales by data parallelism (with ZeRO); this plan has tp={run.tp} pp={run.pp}. "
                          f"Nearest plan it can run: --framework deepspeed --zero 3 on {run.gpus} GPUs")
    files, notes = [], []
    micro = run.micro_batch or 1
    argv = ["trl", "sft", "--model_name_or_path", model_id(run), "--dataset_name", "$DATASET",
            "--output_dir", "out", "--max_length", str(run.seq), "--per_device_train_batch_size", str(micro),
            "--gradient_accumulation_steps", str(deepspeed.accumulation(run)),
            "--gradient_checkpointing", "true" if run.recompute == "full" else "false",
            "--bf16", "false" if run.weights == "fp16" else "true"]
    if run.task in ("lora", "qlora"):
        targets = run.lora_targets or "all-linear"
        argv += ["--use_peft", "true", "--lora_r", str(run.lora_rank), "--lora_target_modules", *targets.split(",")]
    if run.task == "qlora":
        argv += ["--load_in_4bit", "true", "--bnb_4bit_quant_type", "nf4"]
    if run.zero or run.framework == "deepspeed":
        files.append(LaunchFile("ds_config.json", deepspeed.ds_config_text(run)))
        argv += ["--deepspeed", "ds_config.json"]
    if run.gpus > 1:        # accelerate launch's own flags, passed through by trl sft
        argv += ["--num_processes", str(run.gpus)]
    if run.nodes > 1:
        argv += ["--num_machines", str(run.nodes), "--machine_rank", node_rank, "--main_process_ip", head_addr,
                 "--main_process_port", str(MAIN_PORT)]
        notes.append(f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address)")
    notes.append("DATASET: a Hugging Face dataset id or local dataset TRL can read")
    setup = f"pip install trl=={VERSION} peft" + (f" deepspeed=={deepspeed.VERSION}" if files else "") + (
        " bitsandbytes" if run.task == "qlora" else "")
    return Launch("trl", VERSION, (command_line(argv),), files=tuple(files), notes=tuple(notes), argv=(tuple(argv),),
                  setup=setup)
