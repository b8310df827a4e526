"""How src/rigsize/data/launch/torchtune-0.6.1-recipes.txt was made (offline after the download).

    pip download --no-deps torchtune==0.6.1 -d /tmp/tt && unzip /tmp/tt/torchtune-0.6.1-*.whl -d /tmp/tt/whl
    python tools/extract_torchtune_configs.py /tmp/tt/whl > src/rigsize/data/launch/torchtune-0.6.1-recipes.txt

- [flags]: ``tune run``'s option strings: torchtune/_cli/run.py copies every action of torch's
  ``torch.distributed.run.get_args_parser()`` (torchrun-2.13.0-flags.txt) and adds ``--config`` (recipe_args).
- [configs]: every config of the four fine-tuning recipes in torchtune/_recipe_registry.py
  (full_finetune_single_device, full_finetune_distributed, lora_finetune_single_device,
  lora_finetune_distributed), one line each: the name, its recipe, the Hub repo its header's ``tune download``
  names, its checkpointer.checkpoint_dir, the tokenizer paths under that folder (key=path), its optimizer component and the
  override keys rigsize writes that this config can take: a dotted key the YAML has, or a top-level key the
  recipe reads (``cfg.get("key"`` / ``cfg.key`` in recipes/<recipe>.py).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

RECIPES = ("full_finetune_single_device", "full_finetune_distributed", "lora_finetune_single_device",
           "lora_finetune_distributed")
OVERRIDES = ("batch_size", "gradient_accumulation_steps", "enable_activation_checkpointing",
             "enable_activation_offloading", "optimizer_in_bwd", "dtype", "tokenizer.max_seq_len",
             "model.lora_rank", "model.lora_attn_modules", "model.apply_lora_to_mlp", "model.apply_lora_to_output",
             "fsdp_reshard_after_forward", "fsdp_cpu_offload", "checkpointer.checkpoint_dir", "tokenizer.path",
             "tokenizer.merges_file", "output_dir", "optimizer._component_", "clip_grad_norm")


def registry(root: Path) -> dict[str, list[tuple[str, str]]]:
    tree = ast.parse((root / "torchtune" / "_recipe_registry.py").read_text())
    out: dict[str, list[tuple[str, str]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Recipe":
            kw = {k.arg: k.value for k in node.keywords}
            configs = [({k.arg: k.value.value for k in c.keywords}) for c in kw["configs"].elts]
            out[kw["name"].value] = [(c["name"], c["file_path"]) for c in configs]
    return out


def dotted(d: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in d.items():
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= dotted(v, prefix + k + ".")
    return keys


def recipe_reads(root: Path, recipe: str) -> set[str]:
    text = (root / "recipes" / f"{recipe}.py").read_text()
    return set(re.findall(r'cfg\.get\(\s*"([a-z_]+)"', text)) | set(re.findall(r"cfg\.([a-z_]+)\b", text)) - {"get"}


def main(root: Path) -> None:
    print("# torchtune 0.6.1: tune run's flags and the fine-tuning recipes' configs rigsize launches.")
    print("# source: the torchtune-0.6.1-py3-none-any.whl wheel (PyPI's newest, pip download --no-deps, 2026-12-01):")
    print("# torchtune/_cli/run.py, torchtune/_recipe_registry.py, recipes/*.py, recipes/configs/**.yaml;")
    print("# extracted by tools/extract_torchtune_configs.py. tune run's flags are torchrun's (torch 2.13.0) + --config.")
    print("[flags]")
    torchrun = Path(__file__).parents[1] / "src/rigsize/data/launch/torchrun-2.13.0-flags.txt"
    flags = {x.strip() for x in torchrun.read_text().splitlines() if x.startswith("--") and x.strip() != "--help"}
    for f in sorted(flags | {"--config"}):
        print(f)
    print("[configs]")
    print("# name recipe repo dir tokenizer-paths optimizer keys")
    reg = registry(root)
    for recipe in RECIPES:
        reads = recipe_reads(root, recipe)
        for name, path in reg[recipe]:
            text = (root / "recipes" / "configs" / path).read_text()
            cfg = yaml.safe_load(text)
            found = re.search(r"tune download (\S+)", text)
            ckpt = cfg.get("checkpointer", {}).get("checkpoint_dir", "")
            tok = [k for k in ("path", "merges_file") if str(cfg.get("tokenizer", {}).get(k, "")).startswith(ckpt)]
            keys = dotted(cfg) | reads
            usable = [k for k in OVERRIDES if k in keys]
            opt = (cfg.get("optimizer") or {}).get("_component_", "-")
            print(name, recipe, found.group(1) if found else "-", ckpt.rstrip("/") or "-",
                  ",".join(f"tokenizer.{k}={cfg['tokenizer'][k]}" for k in tok) or "-", opt, ",".join(usable))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
