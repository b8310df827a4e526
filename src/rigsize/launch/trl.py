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

from rigsize.launch import deepspeed, launchers
from rigsize.launch.bundle import Launch, LaunchError, LaunchFile
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "1.16.0"
FLAGS_FILE = f"trl-{VERSION}-sft-flags.txt"
ACCELERATE_FLAGS_FILE = "accelerate-1.15.0-launch-flags.txt"
FRAMEWORKS = ("hf", "trl", "deepspeed")
MAIN_PORT = launchers.PORT     # accelerate's default --main_process_port
LAUNCHERS = ("accelerate", "torchrun", "deepspeed", "srun")     # the first is the default
SFT_MODULE = "trl.scripts.sft"


def check(run: PlannedRun, frameworks: tuple[str, ...] = FRAMEWORKS) -> None:
    if run.task == "inference" or run.task == "pretrain":
        other = "--engine vllm" if run.task == "inference" else "--framework megatron"
        raise LaunchError(f"trl sft fine-tunes; this is a {run.task} plan. Nearest: rigsize launch {run.model} "
                          f"--task {run.task} {other}")
    if run.framework not in frameworks:
        raise LaunchError(f"trl sft runs plans for hf, trl, deepspeed or fsdp; this plan was sized for "
                          f"{run.framework}. Nearest plan it can run: rigsize launch {run.model} --task {run.task} "
                          "--framework deepspeed")
    if run.tp > 1 or run.pp > 1 or run.cp > 1:
        raise LaunchError(f"trl sft scales by data parallelism (with ZeRO); this plan has tp={run.tp} pp={run.pp}. "
                          f"Nearest plan it can run: --framework deepspeed --zero 3 on {run.gpus} GPUs")


def sft_args(run: PlannedRun, checkpointing: bool | None = None, dtype: str | None = None) -> list[str]:
    """TRL's own arguments for the plan (model, data, batch, recompute, precision, PEFT).  ``--dtype``: TRL
    1.16.0 loads in ModelConfig.dtype, default float32 (trl/trainer/model_config.py), also QLoRA's compute
    dtype (get_quantization_config); rigsize sizes hf/trl/DeepSpeed with 16-bit parameters, so 16-bit it is."""
    micro = run.micro_batch or 1
    ckpt = run.recompute == "full" if checkpointing is None else checkpointing
    dtype = dtype or ("float16" if run.weights == "fp16" else "bfloat16")
    argv = ["--model_name_or_path", model_id(run), "--dtype", dtype, "--dataset_name", "$DATASET",
            "--output_dir", "out", "--max_length", str(run.seq), "--per_device_train_batch_size", str(micro),
            "--gradient_accumulation_steps", str(deepspeed.accumulation(run)),
            "--gradient_checkpointing", "true" if ckpt else "false",
            "--bf16", "false" if run.weights == "fp16" else "true"]
    if run.task in ("lora", "qlora"):
        targets = run.lora_targets or "all-linear"
        argv += ["--use_peft", "true", "--lora_r", str(run.lora_rank), "--lora_target_modules", *targets.split(",")]
    if run.task == "qlora":
        argv += ["--load_in_4bit", "true", "--bnb_4bit_quant_type", "nf4"]
    return argv


def launched(run: PlannedRun, launcher: str, args: list[str], accelerate_extra: list[str], head_addr: str,
             node_rank: str) -> tuple[list[str], int]:
    """``trl sft ARGS`` under accelerate (trl sft is accelerate launch; its flags go at the end), or
    ``python -m trl.scripts.sft ARGS`` under the other launchers (sft.py's __main__, TRL 1.16.0)."""
    if launcher == "accelerate":
        return ["trl", "sft", *args, *accelerate_extra, *launchers.accelerate_flags(run, head_addr, node_rank)], 0
    argv, words = launchers.program_argv(launcher, run, head_addr, node_rank, module=SFT_MODULE)
    return argv + args, words


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         launcher: str = "accelerate") -> Launch:
    check(run)
    files, notes = [], []
    argv = sft_args(run)
    if run.zero or run.framework == "deepspeed":
        files.append(LaunchFile("ds_config.json", deepspeed.ds_config_text(run)))
        argv += ["--deepspeed", "ds_config.json"]
    argv, words = launched(run, launcher, argv, [], head_addr, node_rank)
    if launcher == "deepspeed":
        files += launchers.hostfile(run)
    notes += node_notes(run, launcher)
    notes.append("DATASET: a Hugging Face dataset id or local dataset TRL can read")
    setup = f"pip install trl=={VERSION} peft" + (
        f" deepspeed=={deepspeed.VERSION}" if files or launcher == "deepspeed" else "") + (
        " bitsandbytes" if run.task == "qlora" else "")
    return Launch("trl", VERSION, (launchers.line(launcher, argv, words),), files=tuple(files), notes=tuple(notes),
                  argv=(tuple(argv),), setup=setup, launcher=launcher, launcher_words=words)


def node_notes(run: PlannedRun, launcher: str) -> list[str]:
    if run.nodes == 1 or launcher == "srun":
        return []
    return [f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address)"]
