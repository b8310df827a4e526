"""How src/rigsize/data/launch/*-flags.txt were made (run once per pinned version, offline after the downloads).

    pip download --no-deps vllm==0.33.0 sglang==0.5.23 trl==1.16.0 -d /tmp/wheels   # then unzip each
    git archive core_v0.19.0 megatron   (github.com/NVIDIA/Megatron-LM)               # into /tmp/mlm

- vLLM, SGLang: static (they need CUDA to import): ``add_argument_flags`` over vllm/engine/arg_utils.py and
  vllm/entrypoints/common/cli_args.py plus ``dataclass_fields(..., {"BaseFrontendArgs", "FrontendArgs"})``;
  ``add_argument_flags`` over sglang/srt/server_args.py plus ``sglang_fields`` over sglang/srt/arg_groups/fields/*.py.
  Older pinned versions (``--engine-version``; ``pip download --no-deps --only-binary=:all: --python-version 3.12
  --platform manylinux2014_x86_64 vllm==X``, only the parser files unzipped, the wheel deleted): vLLM 0.11.2,
  0.10.2, 0.8.5.post1, 0.6.6.post1 from vllm/engine/arg_utils.py, vllm/entrypoints/openai/cli_args.py (and
  vllm/entrypoints/cli/serve.py where it exists) plus ``dataclass_fields(..., {"FrontendArgs"})``; SGLang 0.5.5
  and 0.4.10.post2 from sglang/srt/server_args.py alone (no arg_groups/ yet).
- Megatron-LM, TRL, Accelerate: the real parser, built live: ``megatron.training.arguments.add_megatron_arguments``
  with GPU-only packages stubbed (``live_megatron``); ``HfArgumentParser((ScriptArguments, SFTConfig, ModelConfig))``;
  ``accelerate.commands.launch.launch_command_parser()``; each file lists ``parser._option_string_actions``.
- DeepSpeed launcher: ``live_deepspeed_launcher`` (deepspeed/launcher/runner.py parse_args).
- DeepSpeed keys: the installed package's constants and pydantic config fields; SkyPilot: ``json.dump`` of
  ``sky.utils.schemas.get_task_schema()`` from ``pip install skypilot==0.14.1`` in a scratch venv.
"""

from __future__ import annotations

import ast


def add_argument_flags(path):
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            for a in node.args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--"):
                    out.add(a.value)
                if isinstance(a, ast.JoinedStr):
                    out.add("<f-string>")
    return out

def dataclass_fields(path, classes):
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ClassDef) and node.name in classes:
            for st in node.body:
                if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and not st.target.id.startswith("_"):
                    out.add("--" + st.target.id.replace("_", "-"))
    return out

def sglang_fields(path):
    """Fields annotated A[T, "help"] or A[T, Arg(...)] (sglang arg_groups.arg_utils.add_cli_args_from_dataclass):
    the CLI name is Arg.cli_name or --field-name, plus Arg.aliases; Arg(no_cli=True) has none."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if not (isinstance(node, ast.ClassDef)):
            continue
        for st in node.body:
            if not (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)):
                continue
            ann = st.annotation
            if not (isinstance(ann, ast.Subscript) and getattr(ann.value, "id", "") in ("A", "Annotated")):
                continue
            elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            meta = elts[1] if len(elts) > 1 else None
            if meta is None:
                continue
            if isinstance(meta, ast.Constant) and isinstance(meta.value, str):
                out.add("--" + st.target.id.replace("_", "-"))
                continue
            if isinstance(meta, ast.Call) and getattr(meta.func, "id", "") == "Arg":
                kw = {k.arg: k.value for k in meta.keywords}
                if "no_cli" in kw and isinstance(kw["no_cli"], ast.Constant) and kw["no_cli"].value:
                    continue
                name = kw["cli_name"].value if "cli_name" in kw else "--" + st.target.id.replace("_", "-")
                out.add(name)
                if "aliases" in kw:
                    out |= {e.value for e in kw["aliases"].elts}
    return out


def live_megatron(stub_dir: str) -> list[str]:
    """Run with PYTHONPATH=<Megatron-LM checkout>; ``stub_dir`` holds a module that stubs GPU-only imports."""
    import sys
    import typing

    typing.override = getattr(typing, "override", lambda f: f)   # a Python 3.12 name Megatron 0.19 imports
    import torch.utils._triton
    torch.utils._triton.has_triton()          # cache "no triton" before triton is stubbed
    sys.path.insert(0, stub_dir)
    import argparse

    from megatron.training import arguments
    parser = arguments.add_megatron_arguments(argparse.ArgumentParser(allow_abbrev=False))
    return sorted(s for s in parser._option_string_actions if s.startswith("--"))


def live_deepspeed_launcher() -> list[str]:
    """The ``deepspeed`` launcher's option strings: runner.parse_args builds its parser inline, so catch it."""
    import argparse

    caught = {}

    def grab(self, args=None, namespace=None):
        caught["parser"] = self
        raise SystemExit

    argparse.ArgumentParser.parse_args = grab
    from deepspeed.launcher import runner
    try:
        runner.parse_args([])
    except SystemExit:
        pass
    return sorted(s for s in caught["parser"]._option_string_actions if s.startswith("--"))
