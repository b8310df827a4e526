"""``tune run [--nproc_per_node G ...] RECIPE --config CONFIG key=value ...`` for a torchtune plan (full, LoRA,
QLoRA fine-tuning).

torchtune 0.6.1 (PyPI's newest): recipes, configs and override keys pinned in
data/launch/torchtune-0.6.1-recipes.txt, read from the wheel (tools/extract_torchtune_configs.py).

- Recipe: full_finetune_* for finetune, lora_finetune_* for LoRA and QLoRA (QLoRA = the ``*_qlora*`` configs,
  whose model builders quantize the base to NF4); ``_single_device`` on one GPU, ``_distributed`` otherwise.
- Config: the one whose header's ``tune download`` repo is the plan's checkpoint up to an Instruct/chat/-hf
  suffix (same architecture); a model with none is refused, naming presets that have one.  A checkpoint
  other than the config's own is pointed at by re-rooting checkpointer.checkpoint_dir and the tokenizer paths.
- Overrides (where the config or its recipe takes them): batch_size, gradient_accumulation_steps (global /
  (micro x dp)), enable_activation_checkpointing (recompute full/none), enable_activation_offloading,
  optimizer_in_bwd, dtype, tokenizer.max_seq_len, model.lora_rank and the LoRA targets (lora_attn_modules,
  apply_lora_to_mlp, apply_lora_to_output), fsdp_reshard_after_forward (ZeRO-3 true / ZeRO-2 false) and
  fsdp_cpu_offload (--offload params); the config's optimizer must be the plan's.
- Several GPUs: ``tune run`` passes torchrun's flags on (torchtune/_cli/run.py); without --rdzv_endpoint it
  runs standalone, so several nodes get ``--rdzv_backend c10d --rdzv_endpoint HEAD:PORT``.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import NamedTuple

from rigsize.launch import deepspeed, launchers
from rigsize.launch.bundle import Launch, LaunchError, command_line, known_sections
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "0.6.1"
RECIPES_FILE = f"torchtune-{VERSION}-recipes.txt"
LAUNCHERS = ("torchrun",)     # tune run is torchrun (torchtune/_cli/run.py)
# rigsize's optimizer names -> torchtune config components (the configs' own: torch.optim.AdamW,
# bitsandbytes.optim.PagedAdamW8bit, bitsandbytes.optim.PagedAdamW)
OPTIMIZERS = {"torch.optim.AdamW": "adamw", "bitsandbytes.optim.PagedAdamW": "adamw",
              "bitsandbytes.optim.PagedAdamW8bit": "adamw-8bit"}
ATTN = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "o_proj": "output_proj"}   # HF -> torchtune
MLP = {"gate_proj", "up_proj", "down_proj"}


class TuneConfig(NamedTuple):
    name: str
    recipe: str
    repo: str
    checkpoint_dir: str
    tokenizer_paths: tuple[tuple[str, str], ...]     # (key, the config's path under its checkpoint folder)
    optimizer: str
    keys: frozenset[str]


@lru_cache(maxsize=1)
def configs() -> tuple[TuneConfig, ...]:
    out = []
    for line in known_sections(RECIPES_FILE)["configs"]:
        name, recipe, repo, ckpt, tok, opt, keys = line.split(" ")
        paths = tuple(tuple(t.split("=", 1)) for t in tok.split(",") if t != "-")
        out.append(TuneConfig(name, recipe, repo, ckpt, paths, opt, frozenset(keys.split(","))))  # type: ignore[arg-type]
    return tuple(sorted(out))


def _family(repo: str) -> str:
    """A checkpoint's name without the org, 'Meta-' and Instruct/chat/-hf/-it suffixes: its architecture."""
    name = repo.rsplit("/", 1)[-1].lower().removeprefix("meta-")
    while True:
        stripped = re.sub(r"-(instruct|chat|hf|it)$", "", name)
        if stripped == name:
            return name
        name = stripped


def recipe_of(run: PlannedRun) -> str:
    kind = "full" if run.task == "finetune" else "lora"
    return f"{kind}_finetune_{'single_device' if run.gpus == 1 else 'distributed'}"


def _method(cfg: TuneConfig) -> str:
    return cfg.name.split("/")[1].split("_")[1]        # 8B_lora_single_device -> lora


def find_config(run: PlannedRun) -> TuneConfig:
    recipe, method = recipe_of(run), {"finetune": "full", "lora": "lora", "qlora": "qlora"}[run.task]
    usable = [c for c in configs() if c.recipe == recipe and _method(c) == method and "multinode" not in c.name]
    hub = model_id(run)
    found = [c for c in usable if _family(c.repo) == _family(hub)]
    if found:
        return min(found, key=lambda c: len(c.name))
    from rigsize.model.inputs import presets

    have = [p for p, row in presets().items() if row.hub_id and
            any(_family(c.repo) == _family(row.hub_id) for c in usable)]
    have = difflib.get_close_matches(run.model, have, n=len(have), cutoff=0)     # the most alike name first
    raise LaunchError(f"torchtune {VERSION} has no {recipe} config for {hub} (it has them for presets "
                      f"{', '.join(have[:6]) or 'none'}). Nearest plan it can run: rigsize launch "
                      f"{have[0] if have else 'llama-3.1-8b'} --task {run.task} --framework torchtune, or "
                      f"{run.model} with --framework hf")


def _lora_overrides(run: PlannedRun, cfg: TuneConfig) -> list[tuple[str, str]]:
    targets = set((run.lora_targets or ",".join([*ATTN, *MLP])).split(","))
    unknown = targets - set(ATTN) - MLP
    if unknown or (targets & MLP and not MLP <= targets):
        raise LaunchError(f"torchtune's LoRA takes attention projections (q/k/v/o_proj) and the whole MLP or none "
                          f"(apply_lora_to_mlp); this plan targets {','.join(sorted(targets))}. Nearest plan it can "
                          "run: the same without --lora-targets (every linear layer)")
    attn = [ATTN[t] for t in ATTN if t in targets]
    out = [("model.lora_rank", str(run.lora_rank)), ("model.lora_attn_modules", "[" + ",".join(attn) + "]"),
           ("model.apply_lora_to_mlp", str(MLP <= targets))]
    if "model.apply_lora_to_output" in cfg.keys:    # tied-embedding models have no separate output layer
        out.append(("model.apply_lora_to_output", "False"))
    return out


def _check(run: PlannedRun) -> None:
    if run.task not in ("finetune", "lora", "qlora"):
        other = "--framework megatron" if run.task == "pretrain" else "--engine vllm"
        raise LaunchError(f"torchtune's recipes fine-tune; this is a {run.task} plan. Nearest: rigsize launch "
                          f"{run.model} --task {run.task} {other}")
    if run.tp > 1 or run.pp > 1 or run.cp > 1:
        raise LaunchError(f"rigsize writes torchtune's data-parallel (FSDP2) recipes; this plan has tp={run.tp} "
                          f"pp={run.pp} cp={run.cp}. Nearest plan it can run: --framework torchtune --zero 3 on "
                          f"{run.gpus} GPUs")
    if run.weights == "fp16":
        raise LaunchError("torchtune's recipes train in bf16 or fp32, not fp16. Nearest plan it can run: the same "
                          "with --weights bf16")
    if run.recompute == "selective":
        raise LaunchError("torchtune checkpoints whole layers (enable_activation_checkpointing); this plan has "
                          "--recompute selective. Nearest plan it can run: the same with --recompute full")
    if run.offload == "optimizer" or (run.offload == "params" and run.gpus == 1):
        raise LaunchError(f"torchtune offloads parameters, gradients and optimizer states together through FSDP "
                          f"(fsdp_cpu_offload, distributed recipes); this plan has --offload {run.offload} on "
                          f"{run.gpus} GPU(s). Nearest plan it can run: the same with "
                          + ("--offload params on 2+ GPUs" if run.gpus > 1 else "--offload none"))


def overrides(run: PlannedRun, cfg: TuneConfig) -> tuple[list[tuple[str, str]], list[str]]:
    """(key, value) overrides in the config's own keys, and notes on what the config keeps."""
    _check(run)
    from rigsize.memory.frameworks import recipe

    get, asm = run.record.get("inputs", {}), run.record.get("assumptions", {})
    sized = recipe("torchtune", run.task, optimizer=get.get("optimizer"), recompute=run.recompute,
                   optimizer_in_backward=get.get("optimizer_in_backward"),
                   activation_offload=get.get("activation_offload"), zero=run.zero)    # as the planner sized it
    notes: list[str] = []
    opt = asm.get("optimizer") or get.get("optimizer") or "adamw"
    out: list[tuple[str, str]] = []
    if OPTIMIZERS.get(cfg.optimizer) != opt:
        if cfg.optimizer.startswith("bitsandbytes.") and opt == "adamw-8bit":
            out.append(("optimizer._component_", "bitsandbytes.optim.PagedAdamW8bit"))
        else:
            have = OPTIMIZERS.get(cfg.optimizer, cfg.optimizer)
            raise LaunchError(f"torchtune's {cfg.name} steps with {cfg.optimizer}; this plan sized {opt}. Nearest "
                              f"plan it can run: the same with --optimizer {have}")
    micro = run.micro_batch or 1
    out += [("batch_size", str(micro)), ("gradient_accumulation_steps", str(deepspeed.accumulation(run))),
            ("dtype", "bf16"), ("enable_activation_checkpointing", str(run.recompute == "full")),
            ("enable_activation_offloading", str(sized.activation_offload))]
    if sized.optimizer_in_backward and deepspeed.accumulation(run) > 1:
        raise LaunchError(f"torchtune steps in backward only without gradient accumulation; this plan accumulates "
                          f"{deepspeed.accumulation(run)} micro-batches. Nearest plan it can run: the same with "
                          f"--global-batch {micro * run.dp}")
    if "optimizer_in_bwd" in cfg.keys:
        out.append(("optimizer_in_bwd", str(sized.optimizer_in_backward)))
        if sized.optimizer_in_backward:     # the recipes refuse gradient clipping with it (full_finetune_*.py)
            out.append(("clip_grad_norm", "null"))
    elif sized.optimizer_in_backward:
        raise LaunchError(f"torchtune's {cfg.recipe} has no optimizer_in_bwd; this plan steps in backward. Nearest "
                          "plan it can run: the same without --optimizer-in-backward")
    if "tokenizer.max_seq_len" in cfg.keys:
        out.append(("tokenizer.max_seq_len", str(run.seq)))
    else:
        notes.append(f"{cfg.name} sets no tokenizer.max_seq_len: samples keep the dataset's length (planned "
                     f"{run.seq} tokens)")
    if run.task in ("lora", "qlora"):
        out += _lora_overrides(run, cfg)
        notes.append("lora_alpha stays the config's (it does not change memory)")
    if run.gpus > 1:
        out.append(("fsdp_reshard_after_forward", str(run.zero != 2)))
        out.append(("fsdp_cpu_offload", str(run.offload == "params")))
        if run.zero in (0, 1):
            notes.append(f"torchtune's distributed recipes shard with FSDP2 whatever the plan's --zero {run.zero}: "
                         "its model states per GPU are an upper bound")
    hub = model_id(run)
    if hub != cfg.repo:       # point the config at the plan's checkpoint (same architecture)
        root, new = "/tmp/" + cfg.repo.rsplit("/", 1)[-1], "/tmp/" + hub.rsplit("/", 1)[-1]
        out.append(("checkpointer.checkpoint_dir", cfg.checkpoint_dir.replace(root, new, 1)))
        out += [(k, path.replace(root, new, 1)) for k, path in cfg.tokenizer_paths]     # same files, new folder
        notes.append(f"{cfg.name} was written for {cfg.repo}; the overrides point it at {hub} (same architecture); "
                     "check checkpointer.checkpoint_files against the download")
    bad = [k for k, _ in out if k not in cfg.keys]
    if bad:
        raise LaunchError(f"torchtune's {cfg.name} has no {', '.join(bad)} to set for this plan. Nearest plan it "
                          f"can run: rigsize launch {run.model} --task {run.task} --framework hf")
    return out, notes


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         launcher: str = "torchrun") -> Launch:
    cfg = find_config(run)
    pairs, notes = overrides(run, cfg)
    argv = ["tune", "run"]
    if run.gpus > 1:
        argv += ["--nnodes", str(run.nodes), "--nproc_per_node", str(run.gpus_per_node)]
        if run.nodes > 1:
            argv += ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"{head_addr}:{launchers.PORT}"]
            notes.append(f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address)")
    words = len(argv)
    argv += [cfg.recipe, "--config", cfg.name, *(f"{k}={v}" for k, v in pairs)]
    hub = model_id(run)
    notes.insert(0, f"dataset: the config's ({cfg.name}); override dataset._component_=... for your own")
    setup = (f"pip install torchtune=={VERSION} torchao" + (" bitsandbytes" if "bitsandbytes" in
                                                            " ".join(argv + [cfg.optimizer]) else "")
             + f" && tune download {hub} --output-dir /tmp/{hub.rsplit('/', 1)[-1]}")
    return Launch("torchtune", VERSION, (command_line(argv),), notes=tuple(notes), argv=(tuple(argv),), setup=setup,
                  launcher=launcher, launcher_words=words)
