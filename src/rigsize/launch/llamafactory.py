"""``llamafactory-cli train llamafactory.yaml`` for a LLaMA-Factory plan (full, LoRA, QLoRA; ZeRO via DeepSpeed).

Keys: LLaMA-Factory 0.9.5, pinned in data/launch/llamafactory-0.9.5-keys.txt (the fields of the dataclasses
hparams/parser.py hands HfArgumentParser, read from the released wheel; tools/extract_llamafactory_keys.py).
HfArgumentParser.parse_dict rejects a key no dataclass has, so every key written is checked against the list.

- finetune -> finetuning_type full; lora/qlora -> lora with lora_rank and lora_target (LLaMA-Factory's
  ``all`` = every linear layer, its default); qlora adds quantization_bit 4 (bitsandbytes, nf4 and double
  quantization by default: QuantizationArguments); pretrain -> stage pt.
- Gradient checkpointing is on unless disable_gradient_checkpointing (ModelArguments); selective
  recomputation is not LLaMA-Factory's.
- Several GPUs: the launcher runs torchrun when FORCE_TORCHRUN is set, with NNODES / NODE_RANK /
  NPROC_PER_NODE / MASTER_ADDR / MASTER_PORT from the environment (llamafactory/launcher.py).
- LLaMA-Factory trains data-parallel (ZeRO through ``deepspeed: ds_config.json``); a plan with tensor or
  pipeline parallelism is Megatron's.
"""

from __future__ import annotations

from rigsize.launch import deepspeed
from rigsize.launch.bundle import Launch, LaunchError, LaunchFile, command_line
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "0.9.5"
KEYS_FILE = f"llamafactory-{VERSION}-keys.txt"
CONFIG_NAME = "llamafactory.yaml"
MASTER_PORT = 29500          # torchrun's default --master-port
LAUNCHERS = ("torchrun",)   # llamafactory-cli starts torchrun itself (FORCE_TORCHRUN, launcher.py)
STAGE = {"finetune": "sft", "lora": "sft", "qlora": "sft", "pretrain": "pt"}


def config(run: PlannedRun) -> dict[str, object]:
    """The YAML's keys in LLaMA-Factory's example order (model, method, dataset, output, train)."""
    if run.task == "inference":
        raise LaunchError(f"LLaMA-Factory trains; this is an inference plan. Nearest: rigsize launch {run.model} "
                          "--task inference --engine vllm")
    if run.tp > 1 or run.pp > 1 or run.cp > 1:
        raise LaunchError(f"LLaMA-Factory trains data-parallel (ZeRO through DeepSpeed); this plan has tp={run.tp} "
                          f"pp={run.pp} cp={run.cp}. Nearest plan it can run: --framework llamafactory --zero 3 on "
                          f"{run.gpus} GPUs, or --framework megatron")
    if run.recompute == "selective":
        raise LaunchError("LLaMA-Factory checkpoints whole layers or nothing (disable_gradient_checkpointing); "
                          "this plan has --recompute selective. Nearest plan it can run: the same with --recompute full")
    micro = run.micro_batch or 1
    cfg: dict[str, object] = {"model_name_or_path": model_id(run), "trust_remote_code": True,
                              "stage": STAGE[run.task], "do_train": True,
                              "finetuning_type": "lora" if run.task in ("lora", "qlora") else "full"}
    if run.task in ("lora", "qlora"):
        cfg["lora_rank"] = run.lora_rank
        cfg["lora_target"] = run.lora_targets or "all"
    if run.task == "qlora":
        cfg["quantization_bit"] = 4
        cfg["quantization_method"] = "bnb"
    if run.zero or run.offload != "none":
        cfg["deepspeed"] = "ds_config.json"
    cfg.update({"dataset": "DATASET", "template": "TEMPLATE", "cutoff_len": run.seq, "output_dir": "out",
                "per_device_train_batch_size": micro,
                "gradient_accumulation_steps": deepspeed.accumulation(run)})
    cfg["fp16" if run.weights == "fp16" else "bf16"] = True
    if (run.record.get("inputs") or {}).get("adapter_dtype") == "bf16" and run.task in ("lora", "qlora"):
        cfg["pure_bf16"] = True                 # bf16 adapters (FinetuningArguments.pure_bf16)
    if run.recompute == "none":
        cfg["disable_gradient_checkpointing"] = True
    return cfg


def yaml_text(cfg: dict[str, object]) -> str:
    def scalar(v: object) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)
    return "".join(f"{k}: {scalar(v)}\n" for k, v in cfg.items())


def env_prefix(run: PlannedRun, head_addr: str, node_rank: str) -> list[str]:
    """The launcher's environment (unquoted, so $VARS expand); empty on one GPU."""
    if run.gpus == 1:
        return []
    env = ["FORCE_TORCHRUN=1", f"NPROC_PER_NODE={run.gpus_per_node}"]
    if run.nodes > 1:
        env += [f"NNODES={run.nodes}", f"NODE_RANK={node_rank}", f"MASTER_ADDR={head_addr}",
                f"MASTER_PORT={MASTER_PORT}"]
    return env


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         launcher: str = "torchrun") -> Launch:
    cfg = config(run)
    files = [LaunchFile(CONFIG_NAME, f"# LLaMA-Factory {VERSION}: llamafactory-cli train {CONFIG_NAME}\n"
                        + yaml_text(cfg))]
    if "deepspeed" in cfg:
        files.append(LaunchFile("ds_config.json", deepspeed.ds_config_text(run)))
    argv = ["llamafactory-cli", "train", CONFIG_NAME]
    env = env_prefix(run, head_addr, node_rank)
    command = " ".join(env + [command_line(argv)])
    notes = ["DATASET, TEMPLATE in llamafactory.yaml: a dataset name from LLaMA-Factory's data/dataset_info.json and "
             "the model's chat template (e.g. qwen, llama3)"]
    if run.nodes > 1:
        notes.append(f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address)")
    setup = f"pip install llamafactory=={VERSION}" + (f" deepspeed=={deepspeed.VERSION}" if "deepspeed" in cfg else "") \
        + (" bitsandbytes" if run.task == "qlora" else "")
    return Launch("llamafactory", VERSION, (command,), files=tuple(files), notes=tuple(notes), argv=(tuple(argv),),
                  setup=setup, launcher=launcher)
