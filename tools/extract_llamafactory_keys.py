"""How src/rigsize/data/launch/llamafactory-0.9.5-keys.txt was made (offline after the downloads).

    pip download --no-deps llamafactory==0.9.5 transformers==5.6.0 -d /tmp/lf   # then unzip both
    python tools/extract_llamafactory_keys.py /tmp/lf/x /tmp/lf/tf > src/rigsize/data/launch/llamafactory-0.9.5-keys.txt

``llamafactory-cli train config.yaml`` parses the YAML with HfArgumentParser(_TRAIN_ARGS) (hparams/parser.py:
ModelArguments, DataArguments, TrainingArguments, FinetuningArguments, GeneratingArguments): a key is a field of
one of those dataclasses or of a base class.  The LLaMA-Factory classes are read with ``ast`` (their bases
followed by name inside hparams/); TrainingArguments ends in transformers' Seq2SeqTrainingArguments, whose
fields are read the same way from transformers 5.6.0 (the newest LLaMA-Factory 0.9.5 allows: <=5.6.0).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

TRAIN_ARGS = ("ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments")


def classes(files: list[Path]) -> dict[str, ast.ClassDef]:
    out = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ClassDef):
                out.setdefault(node.name, node)
    return out


def fields(cls: ast.ClassDef) -> set[str]:
    return {st.target.id for st in cls.body if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)
            and not st.target.id.startswith("_")}


def all_fields(name: str, lf: dict[str, ast.ClassDef], tf: dict[str, ast.ClassDef], seen: set[str],
               in_tf: bool = False) -> set[str]:
    """A class's fields and its bases' (LLaMA-Factory's BaseTrainingArguments = transformers'
    Seq2SeqTrainingArguments, training_args.py without USE_MCA; bases inside transformers stay there)."""
    if not in_tf and name == "BaseTrainingArguments":
        name, in_tf = "Seq2SeqTrainingArguments", True
    scope = tf if in_tf else lf
    if (in_tf, name) in seen or name not in scope:
        return set()
    seen.add((in_tf, name))
    cls = scope[name]
    out = fields(cls)
    for base in cls.bases:
        if isinstance(base, ast.Name):
            out |= all_fields(base.id, lf, tf, seen, in_tf)
    return out


def main(lf_root: str, tf_root: str) -> None:
    lf = classes(sorted(Path(lf_root, "llamafactory", "hparams").glob("*.py")))
    tf = classes([Path(tf_root, "transformers", "training_args.py"),
                  Path(tf_root, "transformers", "training_args_seq2seq.py")])
    print("# LLaMA-Factory 0.9.5 'llamafactory-cli train' YAML keys: every field of HfArgumentParser(_TRAIN_ARGS)")
    print("#   (hparams/parser.py: ModelArguments, DataArguments, TrainingArguments, FinetuningArguments,")
    print("#   GeneratingArguments, with their bases; TrainingArguments extends transformers' Seq2SeqTrainingArguments).")
    print("# source: llamafactory-0.9.5-py3-none-any.whl (pip download --no-deps llamafactory==0.9.5),")
    print("#   src llamafactory/hparams/*.py, and transformers-5.6.0-py3-none-any.whl (the newest transformers 0.9.5")
    print("#   allows) training_args.py / training_args_seq2seq.py; read with ast 2026-12-01 by")
    print("#   tools/extract_llamafactory_keys.py; [launcher env]: the variables llamafactory/launcher.py reads.")
    for name in TRAIN_ARGS:
        print(f"[{name}]")
        for key in sorted(all_fields(name, lf, tf, set())):
            print(key)
    # the environment llamafactory-cli's launcher reads before it runs torchrun (launcher.py)
    text = Path(lf_root, "llamafactory", "launcher.py").read_text()
    print("[launcher env]")
    for key in sorted(set(re.findall(r'(?:os\.getenv|is_env_enabled)\("([A-Z_]+)"', text))):
        print(key)


if __name__ == "__main__":
    main(*sys.argv[1:3])
