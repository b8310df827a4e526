"""How src/rigsize/data/launch/<engine>-<version>-architectures.txt were made: the model architectures each
pinned vLLM and SGLang version's registry knows, read statically from the released wheel (both need CUDA
to import).

    pip download vllm==V --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_31_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d /tmp/vw/dl
    (SGLang 0.5.23 ships cp311 manylinux_2_34 wheels only: --python-version 3.11 --platform manylinux_2_34_x86_64)
    unzip only vllm/model_executor/models/* (or sglang/srt/models/*) into /tmp/vw/reg-<engine>-<V>/,
    write the wheel's name to WHEEL and its sha256 to WHEEL.sha256 there, delete the wheel, then
    python tools/extract_architectures.py vllm V /tmp/vw/reg-vllm-V > src/rigsize/data/launch/vllm-V-architectures.txt

- vLLM: the keys of ``_VLLM_MODELS`` in vllm/model_executor/models/registry.py, which ModelRegistry is built
  from (``for model_arch, (mod_relname, cls_name) in _VLLM_MODELS.items()``): the union of the dicts it spreads
  (``_TEXT_GENERATION_MODELS``, ``_MULTIMODAL_MODELS``, ...), the file's dict literals evaluated in order.  ``_PREVIOUSLY_SUPPORTED_MODELS`` and
  ``_OOT_SUPPORTED_MODELS`` only word the error, so they are left out.
- SGLang: sglang/srt/models/registry.py ``import_model_classes`` imports each top-level module of
  sglang/srt/models (packages skipped) and registers ``EntryClass.__name__`` (or each of a list's): the class
  names bound to ``EntryClass`` there, through local aliases and ``import ... as``.
"""

from __future__ import annotations

import ast
import sys
from datetime import date
from pathlib import Path


def vllm_architectures(registry: Path) -> list[str]:
    """Evaluates the module-level dict literals of registry.py in order (some spread a comprehension over
    another, e.g. the embedding models' ``**{k: (mod, arch) for k, (mod, arch) in
    _TEXT_GENERATION_MODELS.items() if arch == "LlamaForCausalLM"}``); nothing else of the file runs."""
    tree = ast.parse(registry.read_text())
    namespace: dict = {"__builtins__": {}}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
            try:
                namespace[target.id] = eval(compile(ast.Expression(node.value), str(registry), "eval"), namespace)
            except NameError:      # a dict of other values (ROCm reasons); _VLLM_MODELS fails if it needs one
                continue
    return sorted(namespace["_VLLM_MODELS"])


def _entry_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8-sig"))
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name.rsplit(".", 1)[-1]
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Name) and node.targets[0].id != "EntryClass":
            aliases[node.targets[0].id] = node.value.id

    def real(name: str) -> str:
        seen = set()
        while name in aliases and name not in classes and name not in seen:
            seen.add(name)
            name = aliases[name]
        return name

    def names(value: ast.expr) -> set[str]:
        if isinstance(value, ast.Name):
            return {real(value.id)}
        if isinstance(value, ast.List | ast.Tuple):
            return set().union(*(names(e) for e in value.elts))
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            return names(value.left) | names(value.right)
        raise SystemExit(f"{module}: EntryClass = {ast.unparse(value)} is not a class name or a list of them")

    out = set()
    for node in ast.walk(tree):        # conditional assignments (if/else at module level) count too
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EntryClass"
                                                for t in node.targets):
            out |= names(node.value)
        elif isinstance(node, ast.AugAssign) and getattr(node.target, "id", "") == "EntryClass":
            out |= names(node.value)
    return out


def sglang_architectures(models: Path) -> list[str]:
    out = set()
    for module in sorted(models.glob("*.py")):
        out |= _entry_names(module)
    return sorted(out)


def main(engine: str, version: str, root: str) -> None:
    base = Path(root)
    wheel, sha = (base / "WHEEL").read_text().strip(), (base / "WHEEL.sha256").read_text().strip()
    if engine == "vllm":
        read = "vllm/model_executor/models/registry.py: the keys of _VLLM_MODELS (the dicts it spreads)"
        archs = vllm_architectures(base / "vllm/model_executor/models/registry.py")
        name = "vLLM"
    else:
        read = ("sglang/srt/models/*.py: the class names bound to EntryClass (registry.py import_model_classes "
                "registers EntryClass.__name__ of each top-level module)")
        archs = sglang_architectures(base / "sglang/srt/models")
        name = "SGLang"
    print(f"# {name} {version}: every model architecture (config.json 'architectures') its model registry knows.")
    print(f"# source: {wheel} (sha256 {sha}; pip download --no-deps --only-binary=:all: {engine}=={version}), "
          f"read {date.today().isoformat()}:")
    print(f"#   {read}.")
    print("# extracted by tools/extract_architectures.py (static: the engine needs CUDA to import).")
    print("\n".join(archs))


if __name__ == "__main__":
    main(*sys.argv[1:4])
