"""How src/rigsize/data/launch/torchtitan-0.3.0-flags.txt was made (offline after the downloads).

    pip download --no-deps torchtitan==0.3.0 -d /tmp/tt && unzip the wheel into /tmp/tt/x
    pip install --no-deps --target /tmp/ttenv tyro docstring_parser typeguard spmd_types==0.2.3 torchdata \
        torch_checkpointing einops triton protobuf
    python tools/extract_torchtitan_flags.py /tmp/tt/x /tmp/ttenv > src/rigsize/data/launch/torchtitan-0.3.0-flags.txt

torchtitan 0.3.0 has no TOML job files: ``python -m torchtitan.train --module M --config C`` loads the
config_registry function C of torchtitan.models.M (a Trainer.Config) and tyro parses ``--section.key`` overrides
over it (torchtitan/config/manager.py ConfigManager.parse_args).  This builds that tyro parser live, with
torch 2.13 CPU and the packages only logging and data loading need (tensorboard, wandb, datasets, tokenizers,
PIL, pyarrow) stubbed, and lists its option strings, the activation-checkpoint subcommands and the
config_registry functions of the dense and MoE text models.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import inspect
import re
import sys
from unittest import mock

STUBBED = ("tensorboard", "wandb", "datasets", "absl", "torch.utils.tensorboard", "tokenizers", "PIL", "pyarrow")
MODULES = ("llama3", "qwen3", "deepseek_v3")


class _Stub(importlib.abc.Loader, importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == s or name.startswith(s + ".") for s in STUBBED):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = mock.MagicMock(name=spec.name)
        m.__path__, m.__spec__, m.__name__ = [], spec, spec.name
        return m

    def exec_module(self, module):
        pass


def main(wheel_root: str, deps: str) -> None:
    sys.path[:0] = [wheel_root, deps]
    sys.meta_path.insert(0, _Stub())
    import tyro
    from torchtitan.config import ConfigManager

    cm = ConfigManager()
    loaded, _ = cm._load_config(["--module", "llama3", "--config", "llama3_8b"])
    from torchtitan.config.manager import custom_registry

    parser = tyro.extras.get_parser(type(loaded), default=loaded, registry=custom_registry)
    flags, subcommands = set(), set()
    for action in parser._actions:
        flags |= {s for s in action.option_strings if s.startswith("--")}
        for choice in (getattr(action, "choices", None) or {}):
            if isinstance(choice, str) and choice.startswith("activation-checkpoint:"):
                subcommands.add(choice.split(":", 1)[1])
    print("# torchtitan 0.3.0 'python -m torchtitan.train --module M --config C [--section.key VALUE ...]'.")
    print("# source: torchtitan-0.3.0-py3-none-any.whl (pip download --no-deps torchtitan==0.3.0): the tyro parser")
    print("#   ConfigManager builds over Trainer.Config (torchtitan/config/manager.py, trainer.py), built live with")
    print("#   torch 2.13 CPU and tyro 1.0.17, logging/data packages stubbed; read 2026-12-01 by")
    print("#   tools/extract_torchtitan_flags.py.  tyro accepts --a.b_c and --a.b-c alike; the list holds the")
    print("#   hyphenated names tyro prints.  [configs]: config_registry functions (module:function and the")
    print("#   Hugging Face checkpoint its hf_assets_path names, where it names one).")
    print("[loader]")                    # read by ConfigManager._load_config before tyro
    print("--config\n--module")
    print("[flags]")
    print("\n".join(sorted(flags)))
    print("[activation-checkpoint]")
    print("\n".join(sorted(subcommands)))
    print("[configs]")
    for name in MODULES:
        reg = importlib.import_module(f"torchtitan.models.{name}.config_registry")
        for fn, obj in sorted(inspect.getmembers(reg, inspect.isfunction)):
            if obj.__module__ != reg.__name__ or fn.startswith("_"):
                continue
            asset = re.search(r'hf_assets_path="\./assets/hf/([^"]+)"', inspect.getsource(obj))
            print(f"{name}:{fn}" + (f" {asset.group(1)}" if asset else ""))


if __name__ == "__main__":
    main(*sys.argv[1:3])
