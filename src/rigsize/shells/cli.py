"""The ``rigsize`` command line: a thin shell over the public API.

Flags are generated from ``rigsize.planning.options.OPTIONS``; values pass through the same
parser the Python API uses.  Every error is one line on stderr and exit code 2, in
the language chosen by ``--lang`` or ``RIGSIZE_LANG``; click's own usage box is
replaced (see ``main``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from rigsize.errors import InputError, RigsizeError
from rigsize.messages import LANGS, current_lang, render, translate
from rigsize.planning.options import Option, options_for

EXIT_USAGE = 2


def _click_option(opt: Option) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if opt.kind == "flag" and opt.default is None:   # tri-state: --sp / --no-sp / unset
        return click.option(f"{opt.flag}/--no-{opt.flag[2:]}", opt.name, default=None, help=opt.help)
    if opt.kind == "flag":
        return click.option(opt.flag, opt.name, is_flag=True, default=None, help=opt.help)
    extra = f" [one of: {', '.join(opt.choices)}]" if opt.choices else ""
    shown = f" [default: {opt.default}]" if opt.default is not None else ""
    return click.option(opt.flag, opt.name, type=str, default=None, metavar=opt.kind.upper(),
                        help=opt.help + extra + shown)


def _with_options(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(options_for(command)):
            fn = _click_option(opt)(fn)
        return fn
    return decorate


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


# --lang and --json are accepted on the group and on every command, before or after
# the command name ("rigsize --lang zh models" = "rigsize models --lang zh"); the
# values live in ctx.meta, which the group's and the command's contexts share.
def _set_lang(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        if value.lower() not in LANGS:
            raise InputError("cli.bad_lang", value=value)
        ctx.meta["rigsize.lang"] = value.lower()


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["rigsize.json"] = True


def _shell_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--json", is_flag=True, expose_value=False, callback=_set_json, is_eager=True,
                      help="Print exactly one JSON object (schema in schema/<command>.schema.json).")(fn)
    return click.option("--lang", default=None, expose_value=False, callback=_set_lang, is_eager=True,
                        help="Language of text output: en or zh (or RIGSIZE_LANG); JSON is never localized.")(fn)


def _lang(ctx: click.Context) -> str:
    return current_lang(ctx.meta.get("rigsize.lang"))


def _as_json(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("rigsize.json"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_shell_options
@click.version_option(package_name="rigsize")
def cli() -> None:
    """What server do I need to run this LLM, for this job?"""


@cli.command()
@click.argument("model")
@_with_options("estimate")
@_shell_options
@click.pass_context
def estimate(ctx: click.Context, model: str, **options: Any) -> None:
    """Size MODEL (preset, config.json, folder, .gguf, Hub id or a size like 72B)."""
    from rigsize.planning.estimate import estimate as run_estimate

    given = {k: v for k, v in options.items() if v is not None}
    report = run_estimate(model, **given)
    if _as_json(ctx):
        _emit_json(report.model_dump(mode="json"))
    else:
        from rigsize.shells.render import print_estimate

        print_estimate(report, _lang(ctx))


class _progress_bar:
    """A bar on stderr for searches longer than a moment (half a second), only on a terminal."""

    def __enter__(self) -> Callable[[int, int], None] | None:
        import time

        if not sys.stderr.isatty():
            return None
        self.start, self.bar, self.task = time.monotonic(), None, None

        def update(done: int, total: int) -> None:
            if self.bar is None and time.monotonic() - self.start > 0.5:
                from rich.console import Console
                from rich.progress import Progress

                self.bar = Progress(console=Console(stderr=True), transient=True)
                self.bar.start()
                self.task = self.bar.add_task("searching", total=total)
            if self.bar is not None:
                self.bar.update(self.task, completed=done, total=total)
        return update

    def __exit__(self, *_exc: object) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.stop()


@cli.command()
@click.argument("model", required=False, default=None)
@_with_options("plan")
@_shell_options
@click.pass_context
def plan(ctx: click.Context, model: str | None, **options: Any) -> None:
    """Search GPUs, counts, layouts, formats and engines for MODEL; rank the plans that meet the goals.
    Without --task: the overview of every scenario (low latency, high throughput, fine-tuning, LoRA, QLoRA,
    pre-training, workstation). Without MODEL, with --have: which presets fit on that hardware and how fast."""
    from rigsize.planning.search import search, what_fits_on

    given = {k: v for k, v in options.items() if v is not None}
    with _progress_bar() as progress:
        result = search(model, progress=progress, **given) if model is not None else what_fits_on(**given)
    if _as_json(ctx):
        from rigsize.report import PlanOutput

        _emit_json(PlanOutput.model_validate(result).model_dump(mode="json", by_alias=True))
    else:
        from rigsize.shells.render import print_overview, print_plan, print_what_fits

        show = print_overview if "scenarios" in result else print_what_fits if "have" in result else print_plan
        show(result, _lang(ctx))


def _check_out_dir(out: Path) -> None:
    """The launch folder: an existing folder, or one that can be made (its nearest existing
    parent a writable folder); a file or an unwritable place is refused in one line."""
    if out.exists() and not out.is_dir():
        raise InputError("input.conflict", what=f"--out-dir {out}: exists and is not a folder; give a folder "
                         "(it is created if missing)")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("input.conflict", what=f"--out-dir {out}: {parent} is not a folder you can write to; "
                         "give another folder")


@cli.command()
@click.argument("model", required=False, default=None)
@_with_options("launch")
@_shell_options
@click.pass_context
def launch(ctx: click.Context, model: str | None, **options: Any) -> None:
    """Turn a plan into the commands and files that run it (vLLM, SGLang, TRL/PEFT + DeepSpeed, Megatron-LM;
    locally, on SkyPilot or under Slurm): plans MODEL first, or reads --plan-file."""

    from rigsize.launch import launch as run_launch
    from rigsize.launch import read_plan_file, select
    from rigsize.launch.versions import plan_options
    from rigsize.planning.options import LAUNCH_OPTIONS, parse_options

    given = {k: v for k, v in options.items() if v is not None}
    own = parse_options({k: given.pop(k) for k in [o.name for o in LAUNCH_OPTIONS] if k in given}, command="launch")
    if own.get("out_dir"):          # refused before any search: the folder is known
        _check_out_dir(Path(own["out_dir"]))
    if own.get("plan_file"):
        if model:
            raise InputError("input.conflict", what="give MODEL or --plan-file, not both")
        plan_obj, source = read_plan_file(own["plan_file"]), {"plan_file": own["plan_file"]}
    elif model:
        from rigsize.planning.search import search

        if "task" not in given:
            raise InputError("input.conflict", what="rigsize launch MODEL needs --task (or --plan-file FILE)")
        plan_obj, source = search(model, **plan_options(given)[0]), {"model": model, "options": given}
    else:
        raise InputError("input.conflict", what="rigsize launch needs MODEL --task T, or --plan-file FILE")
    rec = select(plan_obj, int(own.get("rank", 1)), own.get("scenario"))
    source.update(rank=int(own.get("rank", 1)), scenario=own.get("scenario"))
    bundle = run_launch(rec, engine=given.get("engine") if own.get("plan_file") else None,
                        framework=given.get("framework") if own.get("plan_file") else None,
                        target=own.get("target", "local"), source=source, launcher=own.get("launcher"),
                        engine_version=given.get("engine_version"))
    out = Path(own.get("out_dir") or f"launch-{rec['model']['name'].replace('/', '-')}")
    _check_out_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for f in bundle.files:
            (out / f.name).write_text(f.text)
            if f.executable:
                (out / f.name).chmod(0o755)
    except OSError as err:
        raise InputError("input.conflict", what=f"--out-dir {out}: cannot write there ({err.strerror}); "
                         "give a folder you can write to") from None
    if _as_json(ctx):
        from rigsize.report import LaunchReport

        _emit_json(LaunchReport(tool=bundle.launch.tool, version=bundle.launch.version,
                                version_from=bundle.version_from, target=bundle.target,
                                gpu=bundle.gpu or None, gpus=bundle.gpus or None,
                                launcher=bundle.launch.launcher or None,
                                commands=list(bundle.commands), files=[str(out / f.name) for f in bundle.files],
                                notes=list(bundle.launch.notes)).model_dump(mode="json"))
        return
    lang = _lang(ctx)       # commands and files are code: only the comment lines are localized
    click.echo("# " + render("launch.header", lang, tool=bundle.launch.tool, version=bundle.launch.version,
                             gpus=bundle.gpus, gpu=bundle.gpu, target=bundle.target, out=f"{out}/"))
    click.echo("# " + render("launch.setup", lang, setup=translate(bundle.launch.setup, lang)))
    for note in bundle.launch.notes:
        click.echo(f"# {translate(note, lang)}")
    for line in bundle.commands:
        click.echo(line)


@cli.command()
@click.argument("query", required=False, default="")
@_shell_options
@click.pass_context
def models(ctx: click.Context, query: str) -> None:
    """List model presets, optionally those matching QUERY."""
    from rigsize.api import list_presets
    from rigsize.report import ModelList

    rows = list_presets(query)
    if not rows and not _as_json(ctx):
        raise InputError("model.presets_none", query=query)
    if _as_json(ctx):
        _emit_json(ModelList(schema_version=1, models=rows).model_dump(mode="json"))
    else:
        from rigsize.shells.render import print_presets

        print_presets(rows, _lang(ctx))


@cli.command()
@click.argument("query", required=False, default="")
@_shell_options
@click.pass_context
def gpus(ctx: click.Context, query: str) -> None:
    """List the GPU catalog (dense peaks, memory, bandwidth, sources), or those matching QUERY."""
    from rigsize.hardware.gpus import gpu_table
    from rigsize.report import GpuList

    q = query.lower()
    rows = [r for r in gpu_table() if not q or q in r["name"].lower() or any(q in a.lower() for a in r["aliases"])]
    if not rows:
        raise InputError("gpu.none_match", query=query)
    if _as_json(ctx):
        _emit_json(GpuList.model_validate({"schema_version": 1, "gpus": rows}).model_dump(mode="json"))
    else:
        from rigsize.shells.render import print_gpus

        print_gpus(rows, _lang(ctx))


@cli.command()
@click.option("--gpu", "gpu", default=None, help="Only instances of this catalog GPU.")
@click.option("--provider", "provider", default=None, help="Only this provider (aws, gcp, azure, oci, ...).")
@click.option("--region", "region", default=None, help="Only instances offered in this region.")
@click.option("--prices", "prices", default=None, help="Your own prices (TOML [[instance]] rows or a SkyPilot vms.csv).")
@click.option("--max-price-age", "max_age", default=None, help="Days after which a price is stale (default 180).")
@_shell_options
@click.pass_context
def clouds(ctx: click.Context, gpu: str | None, provider: str | None, region: str | None, prices: str | None,
           max_age: str | None) -> None:
    """List cloud GPU instances with their prices, sources and dates."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.hardware.instances import DEFAULT_MAX_PRICE_AGE_DAYS, catalog
    from rigsize.planning.options import BY_NAME
    from rigsize.report import InstanceList

    # checked as estimate's --max-price-age is (planning.options: a whole number of days, 1 to 36500)
    max_age = DEFAULT_MAX_PRICE_AGE_DAYS if max_age is None else BY_NAME["max_price_age"].parse(max_age)

    rows = list(catalog(prices, provider))
    if gpu:
        name = resolve_gpu(gpu).name
        rows = [i for i in rows if i.gpu == name]
    if provider:
        rows = [i for i in rows if i.provider == provider.lower()]
    if region:
        rows = [i for i in rows if region in i.regions or i.price_region == region]
    if not rows:
        raise InputError("input.conflict", what="no instance matches; drop a filter, or see 'rigsize clouds'")
    table = [{"provider": i.provider, "name": i.name, "gpu": i.gpu, "gpus": i.gpus, "vcpus": i.vcpus,
              "ram_gib": i.ram_gib, "network": i.network, "regions": list(i.regions), "price_region": i.price_region,
              "currency": i.currency, "prices_per_hour": i.prices, "usd_per_hour_on_demand": i.usd_per_hour("on-demand"),
              "as_of": i.as_of, "stale": i.stale(max_age), "source": i.source}
             for i in sorted(rows, key=lambda i: (i.gpu, i.provider, i.usd_per_hour("on-demand") or float("inf")))]
    if _as_json(ctx):
        _emit_json(InstanceList.model_validate({"schema_version": 1, "instances": table}).model_dump(mode="json"))
    else:
        from rigsize.shells.render import print_instances

        print_instances(table, _lang(ctx))


@cli.command()
@_shell_options
@click.pass_context
def formats(ctx: click.Context) -> None:
    """List weight and KV-cache formats with their true bits per weight."""
    from rigsize.model.formats import format_table
    from rigsize.report import FormatList

    rows = format_table()
    if _as_json(ctx):
        _emit_json(FormatList.model_validate({"schema_version": 1, "formats": rows}).model_dump(mode="json"))
    else:
        from rigsize.shells.render import print_formats

        print_formats(rows, _lang(ctx))


@cli.command()
@click.option("--source", "source", default="all",
              help="all, serving, training, finetune (peak memory), kv (vLLM start-up logs, transformers memory) "
                   "or local (llama.cpp llama-bench runs and start-up buffer sizes). serving-holdout (never in "
                   "all): the serving holdout, opened once after a model change is final "
                   "(data/validation/SERVING-HOLDOUT-README.md).")
@click.option("--cases", "show_cases", is_flag=True, help="List every case, not only the summary.")
@_shell_options
@click.pass_context
def validate(ctx: click.Context, source: str, show_cases: bool) -> None:
    """Compare predictions with measurements nobody here produced (fitted and reserved apart)."""
    from rigsize.validation import (
        finetune_rows,
        published_rows,
        serving_rows,
        summarize,
        summarize_classes,
        training_rows,
        whole_run_rows,
    )

    if source not in ("all", "serving", "training", "finetune", "kv", "local", "serving-holdout"):
        raise InputError("input.bad_choice", option="--source", value=source,
                         choices="all, serving, training, finetune, kv, local, serving-holdout")
    rows = []
    if source == "serving-holdout":     # only when asked by name: never part of "all"
        from rigsize.validation.serving_holdout import holdout_rows

        rows += holdout_rows()
    if source in ("all", "training"):
        from rigsize.validation.training_more import more_training_rows

        rows += training_rows() + whole_run_rows() + more_training_rows()
    if source in ("all", "finetune"):
        rows += finetune_rows()
    if source in ("all", "kv"):
        from rigsize.validation.kv import sglang_startup_rows, transformers_rows, vllm_startup_rows

        rows += vllm_startup_rows() + sglang_startup_rows() + transformers_rows()
    if source in ("all", "serving"):
        from rigsize.validation.serving_more import more_rows

        rows += serving_rows() + more_rows() + published_rows()
    if source in ("all", "local"):
        from rigsize.validation.local import local_rows

        rows += local_rows()
    summary, by_class = summarize(rows), summarize_classes(rows)
    if _as_json(ctx):
        from rigsize.report import ValidationReport

        _emit_json(ValidationReport(schema_version=1, summary=summary, by_class=by_class, cases=[
            {"source": r.source, "case": r.case, "metric": r.metric, "split": r.split, "measured": r.measured,
             "predicted": r.predicted, "error": r.error, "class": r.cls} for r in rows]).model_dump(mode="json"))
        return
    from rigsize.shells.render import print_validation

    print_validation(rows, summary, show_cases, _lang(ctx), by_class=by_class)


@cli.command()
@click.option("--gpu", "gpu", default=None, help="Catalog GPU whose peaks to compare with (default: detected).")
@click.option("--output", "output", default="rigsize-profile.json", help="Where to write the profile.")
@_shell_options
@click.pass_context
def calibrate(ctx: click.Context, gpu: str | None, output: str) -> None:
    """Measure this machine's GPU (matmul per dtype, HBM bandwidth) and write a profile."""
    from rigsize.speed.calibrate import calibrate as run

    profile = run(gpu, output)
    if _as_json(ctx):
        from rigsize.report import CalibrationReport

        _emit_json(CalibrationReport(schema_version=1, output=output, profile=profile).model_dump(mode="json"))
    else:
        from rigsize.shells.render import print_calibration

        print_calibration(output, profile, _lang(ctx))


def _lang_from_argv(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return current_lang(argv[i + 1])
        if arg.startswith("--lang="):
            return current_lang(arg.split("=", 1)[1])
    return current_lang()


def _fail(line: str) -> int:
    line = line.replace("\r", "\\r").replace("\n", "\\n")   # user text must not split the one line
    click.echo(f"rigsize: error: {line}", err=True)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into one line and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    lang = _lang_from_argv(args)
    env_lang = os.environ.get("RIGSIZE_LANG")
    if env_lang and env_lang.lower() not in LANGS and not any(a == "--lang" or a.startswith("--lang=") for a in args):
        return _fail(render("cli.bad_lang_env", lang, value=env_lang))    # as --lang xx is refused, not ignored
    if argv is None and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # `rigsize ... | head` ends quietly, as Unix tools do
    try:
        cli.main(args=args, prog_name="rigsize", standalone_mode=False)
    except RigsizeError as err:
        return _fail(err.render(lang))
    except click.exceptions.NoArgsIsHelpError as err:   # bare "rigsize": show help, not an error
        click.echo(err.ctx.get_help() if err.ctx else "")
        return 0
    except click.UsageError as err:
        path = err.ctx.command_path if err.ctx else "rigsize"
        command = path.split(" ", 1)[1] if " " in path else ""
        hint = f"rigsize {command} --help" if command else "rigsize --help"
        return _fail(render("cli.usage", lang, detail=err.format_message(), help=hint))
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except BrokenPipeError:       # e.g. `rigsize ... | head`: the reader left, nothing to report
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug in rigsize: still one line, but say it is ours
        if os.environ.get("RIGSIZE_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _fail(f"internal error ({type(exc).__name__}: {first}); please report it, "
                     "with RIGSIZE_DEBUG=1 for the traceback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
