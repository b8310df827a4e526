"""Terminal output (rich tables) for the CLI.  Holds no formulas: it only formats
report objects, in the chosen language."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rigsize.messages import MESSAGES, render, t, translate
from rigsize.report import EstimateReport, PresetRow, Suggestion
from rigsize.speed.error_bands import names
from rigsize.units import GB, GiB


def _part(key: str, lang: str) -> str:
    """A breakdown key (``mlp``, ``moe/experts``, ``tp_comm``) as a label; a key without
    an entry prints as itself (and the label test fails on it)."""
    return t(f"part.{key}", lang) if f"part.{key}" in MESSAGES else key


def _bound(key: str, lang: str) -> str:
    return t(f"bound.{key}", lang) if f"bound.{key}" in MESSAGES else key


def _suggestion(s: Suggestion, lang: str) -> str:
    """The suggestion's sentence, or, where the catalog has no translation of it, the
    change itself as options (``gpus=4, tp=4``)."""
    text = translate(s.description, lang)
    if text == s.description and lang != "en":
        text = render("report.change", lang, change=", ".join(f"{k}={v}" for k, v in s.change.items()))
    return text


def _split(key: str, lang: str) -> str:
    return t(f"split.{key}", lang) if f"split.{key}" in MESSAGES else key


def human_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def human_bytes(n: float) -> str:
    """Both conventions, since GPU nameplates use GB and tools print GiB."""
    if abs(n) >= GiB / 10:
        return f"{n / GiB:.2f} GiB ({n / GB:.1f} GB)"
    if abs(n) >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n:,.0f} B"


def print_estimate(report: EstimateReport, lang: str, console: Console | None = None) -> None:
    console = console or Console()
    m = report.model
    title = f"{t('report.model', lang)}: {m.name}"
    if m.approximate:
        title += f" ({t('report.approximate', lang)})"
    summary = Table(title=title, show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row(t("report.params", lang), f"{human_count(m.params)} ({m.params:,})")
    if m.active_params != m.params:
        summary.add_row(t("report.active_params", lang), f"{human_count(m.active_params)} ({m.active_params:,})")
    if m.stored_params is not None:
        summary.add_row(t("report.stored_params", lang), f"{human_count(m.stored_params)} ({m.stored_params:,})")
    summary.add_row(f"{t('report.weight_bytes', lang)} [{m.weight_format}]", human_bytes(m.weight_bytes))
    summary.add_row(f"{t('report.kv_per_token', lang)} [{m.kv_dtype}]", human_bytes(m.kv_bytes_per_token))
    summary.add_row(t("report.source", lang), m.origin.split(" (")[0])   # the citation's URL part
    console.print(summary)

    parts = Table(title=t("report.breakdown", lang), title_justify="left")
    parts.add_column(t("report.component", lang))
    parts.add_column(t("report.params", lang), justify="right")
    parts.add_column(t("report.share", lang), justify="right")
    for key, n in sorted(m.breakdown.items(), key=lambda kv: -kv[1]):
        parts.add_row(_part(key, lang), f"{n:,}", f"{100 * n / m.params:.1f}%")
    console.print(parts)
    _print_memory(console, report, lang)
    # assumptions are the JSON keys and values that reproduce the result (identifiers, as on the command line)
    _print_list(console, t("report.assumptions", lang), [f"{k} = {v}" for k, v in report.assumptions.items()])
    _print_list(console, t("report.warnings", lang), [translate(w, lang) for w in report.warnings])


def _print_memory(console: Console, report: EstimateReport, lang: str) -> None:
    """The memory table, what would make it fit, the speed table and the cost."""
    console.print(_memory_table(report, lang))
    _print_list(console, t("report.suggestions", lang), [_suggestion(s, lang) + f" -> {human_bytes(s.total_bytes)}"
                                                         for s in report.memory.suggestions])
    perf = report.performance
    if perf is not None and hasattr(perf, "step_seconds"):
        console.print(_training_speed_table(perf, lang))
    elif perf is not None:
        console.print(_serving_speed_table(perf, lang))
    print_cost(report.cost, lang, console)


def _layout_text(report: EstimateReport) -> str:
    """``tp=8 pp=1 dp=1``, with ep and cp where used and, in training, zero, recompute, offload."""
    par = report.parallel
    layout = f"tp={par.tp} pp={par.pp} dp={par.dp}" + (f" ep={par.ep}" if par.ep > 1 else "") + (
        f" cp={par.cp}" if par.cp > 1 else "")
    if report.task != "inference":
        layout += f" zero={par.zero} recompute={par.recompute}" + (
            f" offload={par.offload}" if par.offload != "none" else "")
    return layout


def _memory_table(report: EstimateReport, lang: str) -> Table:
    """Bytes per GPU by part, the total against the usable memory, the KV pool and the stages."""
    mem, hw = report.memory, report.hardware
    title = (f"{t('report.memory_per_gpu', lang)}: {t('task.' + report.task, lang)}, "
             f"{hw.gpus}x {hw.gpu} ({_layout_text(report)})")
    table = Table(title=title, title_justify="left")
    table.add_column(t("report.component", lang))
    table.add_column(t("report.bytes", lang), justify="right")
    p = mem.per_gpu
    for key in ("weights", "kv_cache", "activations", "gradients", "optimizer", "overhead"):
        value = getattr(p, key)
        if value or key in ("weights",):
            table.add_row(t(f"mem.{key}", lang), human_bytes(value))
    table.add_row(f"[bold]{t('mem.total', lang)}[/bold]", f"[bold]{human_bytes(p.total)}[/bold]")
    table.add_row(t("mem.usable", lang), human_bytes(mem.usable_bytes))
    host_short = mem.details.get("host/short", 0)      # local engines: system RAM is what is short
    if host_short and mem.details.get("host/device_is_host"):
        pass                                           # --gpu cpu: the one device's memory is that RAM
    elif host_short and mem.headroom_bytes >= 0:
        table.add_row(t("mem.gpu_fits", lang), human_bytes(mem.headroom_bytes))
    else:
        verdict = t("mem.fits", lang) if mem.fits else t("mem.not_fits", lang)
        style = "green" if mem.fits else "red"
        table.add_row(f"[{style}]{verdict}[/{style}]", f"[{style}]{human_bytes(abs(mem.headroom_bytes))}[/{style}]")
    if host_short:
        table.add_row(f"[red]{t('mem.host_short', lang)}[/red]", f"[red]{human_bytes(host_short)}[/red]")
    if mem.max_concurrency is not None:
        table.add_row(t("mem.max_concurrency", lang), f"{mem.max_concurrency:,}")
    if mem.kv_cache_tokens is not None:
        table.add_row(t("mem.kv_cache_tokens", lang), f"{mem.kv_cache_tokens:,}")
        table.add_row(render("mem.concurrency_at_max_len", lang, n=f"{mem.max_model_len:,}"),
                      f"{mem.max_concurrency_at_max_model_len:.2f}x")
        table.add_row(t("mem.max_context_single", lang), f"{mem.max_context_single:,}")
        table.add_row(t("mem.max_context_at_concurrency", lang), f"{mem.max_context_at_concurrency:,}")
    _local_rows(table, mem, lang)
    if len(mem.per_stage) > 1 and "host/weights" not in mem.details:
        for st in mem.per_stage:
            table.add_row(render("mem.stage", lang, i=st.stage, role=t(f"stage.{st.role}", lang),
                                 first=st.first_layer, n=st.num_layers),
                          human_bytes(st.per_gpu.total))
    return table


def _local_rows(table: Table, mem: Any, lang: str) -> None:
    """Local inference (llama.cpp / Ollama / MLX): each GPU's total and what lives in host RAM."""
    d = mem.details
    if "host/weights" not in d:
        return
    if len(mem.per_stage) > 1:
        for st in mem.per_stage:
            table.add_row(render("mem.device", lang, name=f"gpu{st.stage}", n=st.num_layers),
                          human_bytes(st.per_gpu.total))
    table.add_row(render("mem.host_ram", lang, w=human_bytes(d["host/weights"]), kv=human_bytes(d["host/kv_cache"]),
                         c=human_bytes(d["host/compute"])), human_bytes(d["host/total"]))
    if d.get("host/unified_bytes"):
        table.add_row(t("mem.unified_total", lang),
                      f"{human_bytes(d['host/total'] + mem.per_gpu.total)} / {human_bytes(d['host/unified_bytes'])}")
    else:
        table.add_row(t("mem.host_usable", lang), human_bytes(d["host/usable"]))


def _speed_table(title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    return table


def _training_speed_table(perf: Any, lang: str) -> Table:
    """Step time, tokens/s, MFU/HFU (each with its error band), the step's parts, days and GPU-hours."""
    table = _speed_table(t("report.training_speed", lang))
    table.add_row(t("perf.step", lang), f"{perf.step_seconds:,.2f} s ({_bound(perf.bound, lang)})"
                  + _band(perf, "step_seconds", lang))
    table.add_row(t("perf.tokens", lang), f"{perf.tokens_per_second:,.0f} tokens/s"
                  + _band(perf, "tokens_per_second", lang))
    table.add_row(t("perf.mfu_hfu", lang), f"{perf.mfu:.1%} / {perf.hfu:.1%}" + _band(perf, "mfu", lang))
    for key, value in perf.breakdown.model_dump().items():
        if value:
            table.add_row(f"  {_part(key, lang)}", f"{value:,.3f} s")
    if perf.train_days is not None:
        table.add_row(t("perf.days", lang), f"{perf.train_days:,.1f} {t('perf.days_unit', lang)}, "
                      f"{perf.gpu_hours:,.0f} {t('perf.gpu_hours_unit', lang)}")
    return table


def _serving_speed_table(perf: Any, lang: str) -> Table:
    """TTFT, TPOT (each with its bound and error band), end-to-end time, throughput, requests/s."""
    table = _speed_table(t("report.performance", lang))
    table.add_row(t("perf.ttft", lang), f"{perf.ttft_seconds * 1e3:,.1f} ms ({_bound(perf.bound.prefill, lang)})"
                  + _band(perf, "ttft_seconds", lang))
    enc = getattr(perf, "encoder", None)
    if enc is not None:          # the vision tower's part of TTFT (performance.encoder)
        detail = render("perf.encoder_detail", lang, ms=enc.seconds * 1e3, images=enc.images,
                        patches=enc.patches_per_image, bound=_bound(enc.bound, lang))
        table.add_row(t("perf.encoder", lang), detail)
    table.add_row(t("perf.tpot", lang), f"{perf.tpot_seconds * 1e3:,.2f} ms ({_bound(perf.bound.decode, lang)})"
                  + _band(perf, "tpot_seconds", lang))
    spec = getattr(perf, "speculative", None)
    if spec is not None:         # the draft behind TPOT (performance.speculative)
        table.add_row(t("perf.speculative", lang), render("perf.speculative_detail", lang,
                                                          k=spec.num_speculative_tokens, rate=spec.acceptance_rate,
                                                          tokens=spec.tokens_per_step, ms=perf.itl_seconds * 1e3))
    table.add_row(t("perf.e2e", lang), f"{perf.e2e_seconds:,.2f} s")
    table.add_row(t("perf.throughput", lang), f"{perf.output_tokens_per_second:,.0f} tokens/s "
                  f"({perf.output_tokens_per_second_per_gpu:,.0f} / GPU)"
                  + _band(perf, "output_tokens_per_second", lang))
    table.add_row(t("perf.requests", lang), f"{perf.requests_per_second:,.2f} req/s")
    local = perf.efficiency
    if "prompt_tokens_per_second" in local:         # local inference: prompt rate and where decode time goes
        table.add_row(t("perf.prompt_rate", lang), f"{local['prompt_tokens_per_second']:,.0f} tokens/s")
        for key, value in local.items():
            if key.startswith("decode_s_per_token/") and value:
                where = key.split("/", 1)[1]
                label = t("perf.decode_fixed", lang) if where == "fixed" else render("perf.decode_split", lang,
                                                                                     where=where)
                table.add_row(label, f"{value * 1e3:,.2f} ms")
    return table


def _band(perf: Any, field: str, lang: str) -> str:
    """`` (median ±9%, 212 reserved vLLM runs on Hopper)`` beside a figure, or that it is not
    validated; nothing where no band was looked up (efficiency overridden)."""
    if field not in perf.error_band:
        return ""
    b = perf.error_band[field]
    if b is None:       # the whole class unvalidated, or only this figure (too few runs measure it)
        key = "perf.band_none" if not any(perf.error_band.values()) else "perf.band_field_none"
        return f" ({t(key, lang)})"
    who, family, moe = names(b.class_)
    return " (" + render("perf.band", lang, median=b.median_abs, n=b.n, who=who, family=family,
                         moe=t("perf.band_moe", lang) if moe else "") + ")"


def print_plan(result: dict, lang: str, console: Console | None = None) -> None:
    """The ranked plans, one row each, and the search's counts."""
    console = console or Console()
    table = Table(title=render("report.plan", lang, model=result["model"], task=result["task"],
                               objective=result["objective"]), title_justify="left")
    for col in ("rank", "hardware", "formats", "engine", "speed", "cost", "memory"):
        table.add_column(t(f"plan.{col}", lang), justify="right" if col in ("rank", "speed", "cost") else "left")
    for i, r in enumerate(result["recommendations"], 1):
        c, perf, cost = r["choices"], r["performance"], r["cost"]
        lay = r["parallel"]
        speed = ("-" if perf is None else f"{perf['tokens_per_second']:,.0f} tok/s" if "step_seconds" in perf
                 else f"TTFT {perf['ttft_seconds'] * 1e3:,.0f} ms, TPOT {perf['tpot_seconds'] * 1e3:,.1f} ms")
        money = "-" if not cost or cost["usd_per_hour"] is None else f"${cost['usd_per_hour']:,.2f}/h"
        if cost and cost.get("usd_total") is not None:
            money += f", ${cost['usd_total']:,.0f}"
        elif cost and cost.get("usd_per_million_train_tokens") is not None:    # what training ranks by
            money += f", ${cost['usd_per_million_train_tokens']:,.2f}/M train tok"
        table.add_row(str(i), f"{c['gpus']} x {c['gpu']} (tp{lay['tp']} pp{lay['pp']} dp{lay['dp']})",
                      c["weights"] + (f" / kv {c['kv_dtype']}" if c.get("kv_dtype") else ""),
                      c.get("engine") or c.get("framework") or "-", speed, money,
                      human_bytes(r["memory"]["per_gpu"]["total"]))
    console.print(table)
    if result["recommendations"]:
        _print_server(result["recommendations"][0], lang, console)
    rejected = ", ".join(f"{k} {v}" for k, v in result["rejected"].items() if v)
    console.print(render("plan.counts", lang, n=result["candidates_considered"], pruned=result["pruned"],
                         rejected=rejected or "-"), highlight=False)
    if not result["recommendations"]:
        console.print(t("plan.none", lang))
        if result["rejected"].get("context_too_long"):
            console.print(t("plan.none_context", lang))
    if result.get("explain"):
        console.print(result["explain"], highlight=False)


def _print_server(rec: dict, lang: str, console: Console) -> None:
    """The top plan's one-screen datasheet: GPU, CPU, RAM, storage, network, power, software."""
    srv, hw = rec.get("server"), rec["hardware"]
    if not srv:
        return
    unknown = t("server.unknown", lang)

    def known(v: Any, fmt: str) -> str:
        return unknown if v == "unknown" or v is None else format(v, fmt)

    lines = [render("server.gpu", lang, gpus_per_node=hw["gpus_per_node"], gpu=hw["gpu"], nodes=hw["nodes"]),
             render("server.cpu", lang, cpu_cores=srv["cpu_cores"], cpu_class=srv["cpu_class"]),
             render("server.ram", lang, ram_gb=srv["ram_bytes"] / 1e9),
             render("server.nvme", lang, nvme_tb=srv["nvme_bytes"] / 1e12,
                    nvme_write=known(srv["nvme_write_bytes_per_second"], ",.0f")),
             render("server.shared", lang, shared_storage=srv["shared_storage"])]
    if hw["nodes"] > 1 and isinstance(srv["inter_node_bytes_per_second_per_gpu"], (int, float)):
        lines.append(render("server.network", lang, network=srv["network"],
                            gbps=srv["inter_node_bytes_per_second_per_gpu"] * 8 / 1e9))
    else:
        lines.append(t("server.network_single", lang))
    if isinstance(srv["power_watts_per_node"], (int, float)):
        kw = srv["power_watts_per_node"] / 1000
        lines.append(render("server.power", lang, kw=kw, rack_kw=kw * hw["nodes"], nodes=hw["nodes"]))
    lines += [render("server.software", lang, name=x["name"], version=x["version"], why=x["why"])
              for x in rec.get("software", [])]
    _print_list(console, t("server.title", lang), lines)


def print_overview(result: dict, lang: str, console: Console | None = None) -> None:
    """One row per scenario: its workload, the recommended configuration, time and cost."""
    console = console or Console()
    table = Table(title=render("report.overview", lang, model=result["model"]), title_justify="left")
    for col in ("scenario", "workload", "hardware", "speed", "cost"):
        table.add_column(t(f"overview.{col}", lang), justify="right" if col in ("speed", "cost") else "left")
    for key, plan in result["scenarios"].items():
        name = t(f"scenario.{key}", lang)
        if "error" in plan or not plan["recommendations"]:
            why = plan.get("error") or t("plan.none_short", lang)
            table.add_row(name, "-", why, "-", "-")
            continue
        r = plan["recommendations"][0]
        c, perf, cost, lay = r["choices"], r["performance"], r["cost"], r["parallel"]
        if "step_seconds" in perf:
            work = f"{r['inputs'].get('train_tokens', 0) / 1e9:,.0f}B tok, ≤ {plan['goals'].get('deadline_days', 0):g} d"
            speed = f"{cost['days_with_allowance']:,.1f} {t('perf.days_unit', lang)}"
            money = f"${cost['usd_total']:,.0f}" if cost.get("usd_total") is not None else "-"
            stack = c.get("framework") or "-"
        else:
            work = f"{r['inputs'].get('batch', 1)} x {r['inputs'].get('prompt', '')}+{r['inputs'].get('output', '')}"
            speed = f"TTFT {perf['ttft_seconds'] * 1e3:,.0f} ms, TPOT {perf['tpot_seconds'] * 1e3:,.1f} ms"
            money = "-" if cost["usd_per_hour"] is None else f"${cost['usd_per_hour']:,.2f}/h"
            if cost.get("usd_per_million_output_tokens") is not None:
                money += f", ${cost['usd_per_million_output_tokens']:,.2f}/M tok"
            stack = c.get("engine") or "-"
        table.add_row(name, work, f"{c['gpus']} x {c['gpu']} ({c['weights']}, {stack}, tp{lay['tp']} pp{lay['pp']}"
                      f" dp{lay['dp']})", speed, money)
    console.print(table)
    console.print(t("overview.narrow", lang), highlight=False)


def print_what_fits(result: dict, lang: str, console: Console | None = None) -> None:
    """``plan --have SETUP`` without MODEL: one row per preset that fits."""
    console = console or Console()
    table = Table(title=render("report.what_fits", lang, have=result["have"], engine=result["engine"]),
                  title_justify="left")
    for col in ("model", "params", "weights", "context", "speed"):
        table.add_column(t(f"fits.{col}", lang), justify="right" if col in ("params", "context", "speed") else "left")
    for r in result["models"]:
        speed = "-" if r["output_tokens_per_second"] is None else f"{r['output_tokens_per_second']:,.1f} tok/s"
        table.add_row(r["model"], f"{r['params'] / 1e9:,.1f}B", r["weights"], f"{r['max_context']:,}", speed)
    console.print(table)
    if result["does_not_fit"]:
        console.print(render("fits.none", lang, models=", ".join(result["does_not_fit"])), highlight=False)


def print_instances(rows: list[dict], lang: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=t("report.clouds", lang), title_justify="left")
    for col in ("provider", "instance", "gpu", "gpus", "on_demand", "spot", "as_of"):
        table.add_column(t(f"cloud.{col}", lang), justify="right" if col in ("gpus", "on_demand", "spot") else "left")
    for r in rows:
        def price(key: str) -> str:
            v = r["prices_per_hour"].get(key)
            return "-" if v is None else f"{v:,.2f} {r['currency']}"
        table.add_row(r["provider"], r["name"], r["gpu"], str(r["gpus"]), price("on-demand"), price("spot"),
                      r["as_of"] + (" ⚠" if r["stale"] else ""))
    console.print(table)


def print_cost(cost: Any, lang: str, console: Console) -> None:
    """The cheapest few instances and the owning figure."""
    if cost is None:
        return
    table = Table(title=render("report.cost", lang, pricing=cost.pricing), title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    if cost.usd_per_hour is not None:
        table.add_row(t("cost.per_hour", lang), f"${cost.usd_per_hour:,.2f} / h")
    if cost.usd_per_million_output_tokens is not None:
        table.add_row(t("cost.per_mtok", lang), f"${cost.usd_per_million_output_tokens:,.2f}")
    if cost.usd_per_million_train_tokens is not None:
        table.add_row(t("cost.per_mtrain", lang), f"${cost.usd_per_million_train_tokens:,.2f}")
    if cost.usd_total is not None:
        table.add_row(t("cost.run", lang), f"${cost.usd_total:,.0f} ({cost.days_with_allowance:,.1f} "
                      f"{t('perf.days_unit', lang)})")
    for c in cost.instances[:3]:
        table.add_row(f"  {c.count} x {c.provider} {c.name}", f"${c.usd_per_hour:,.2f} / h ({c.price_as_of}"
                      + (", " + t("cost.stale_short", lang) if c.stale else "") + ")")
    own = cost.on_prem
    if own.usd_per_hour is not None:
        line = f"${own.usd_per_hour:,.2f} / h"
        if own.break_even_utilization is not None:
            line += " (" + render("cost.break_even", lang, share=own.break_even_utilization) + ")"
        table.add_row(t("cost.on_prem", lang), line)
    console.print(table)


def _print_list(console: Console, title: str, lines: list[str]) -> None:
    if lines:
        console.print(f"[bold]{title}[/bold]")
        for line in lines:      # data text, not markup: "[vllm.era.v0_20]" and the like are printed as written
            console.print(f"  - {escape(line)}", highlight=False)


def print_presets(rows: list[PresetRow], lang: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=t("report.presets", lang), title_justify="left")
    for col in (t("report.name", lang), t("report.family", lang), t("report.params", lang),
                t("report.active_params", lang), t("report.hub_id", lang)):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, r.family, human_count(r.params), human_count(r.active_params), r.hub_id or "-")
    console.print(table)


def _tflops(flops: dict, dtype: str) -> str:
    v = flops.get(dtype)
    if v == "unknown":
        return "?"
    return f"{v / 1e12:,.1f}" if isinstance(v, (int, float)) else "-"


def print_gpus(rows: list[dict], lang: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=t("report.gpus", lang), title_justify="left")
    first = t("report.gpu", lang)
    for col in (first, t("report.memory", lang), t("report.visible", lang), t("report.hbm", lang),
                t("report.bf16_tflops", lang), t("report.fp8_tflops", lang), t("report.interconnect", lang),
                t("report.per_node", lang), t("report.tdp", lang)):
        table.add_column(col, justify="left" if col == first else "right", no_wrap=col == first)
    for r in rows:
        visible = r["memory_bytes_visible"]
        bw = r["interconnect"].get("per_direction_bytes_per_second")
        link = r["interconnect"]["kind"] + (f" {bw / 1e9:.0f} GB/s" if isinstance(bw, (int, float)) else "")
        unknown = t("report.unknown", lang)
        hbm = r["hbm_bytes_per_second"]
        table.add_row(
            r["name"], f"{r['memory_bytes'] / GiB:.0f} GiB",
            f"{visible / GiB:.1f} GiB" if isinstance(visible, int) else unknown,
            f"{hbm / 1e12:.2f}" if isinstance(hbm, (int, float)) else unknown,
            _tflops(r["dense_flops"], "bf16"), _tflops(r["dense_flops"], "fp8"), link,
            str(r["gpus_per_node"]).replace("unknown", unknown), str(r["tdp_watts"]).replace("unknown", unknown))
    console.print(table)


def print_formats(rows: list[dict], lang: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=t("report.formats", lang), title_justify="left")
    for col in (t("report.format", lang), t("report.kind", lang), t("report.bits_per_weight", lang),
                t("report.high_precision", lang)):
        table.add_column(col)
    for r in rows:
        kept = translate(r["high_precision_tensors"], lang)
        if kept == r["high_precision_tensors"]:     # "roles: 16-bit; router (1-D): 32-bit": part by part
            kept = "; ".join(translate(part, lang) for part in kept.split("; "))
        table.add_row(r["name"], t(f"report.kind_{r['kind']}", lang), f"{r['bits_per_weight']:.3f}", kept)
    console.print(table)


def print_validation(rows: list, summary: list[dict], show_cases: bool, lang: str,
                     console: Console | None = None, by_class: list[dict] | None = None) -> None:
    console = console or Console()
    if show_cases:
        table = Table(title=t("report.validation", lang), title_justify="left")
        for col in ("case", "metric", "split", "measured", "predicted", "error"):
            table.add_column(t(f"val.{col}", lang), justify="left" if col in ("case", "metric", "split") else "right")
        for r in rows:   # case and metric names are identifiers (as in --json)
            table.add_row(r.case, r.metric, _split(r.split, lang), f"{r.measured:.4g}", f"{r.predicted:.4g}",
                          f"{r.error:+.1%}")
        console.print(table)
    table = Table(title=t("report.validation", lang), title_justify="left")
    for col in ("source", "metric", "split", "n", "median", "worst"):
        table.add_column(t(f"val.{col}", lang), justify="left" if col in ("source", "metric", "split") else "right")
    for s in summary:
        table.add_row(s["source"], s["metric"], _split(s["split"], lang), str(s["n"]), f"{s['median_abs_error']:.1%}",
                      f"{s['worst_abs_error']:.1%}")
    console.print(table)
    if by_class:
        table = Table(title=t("report.validation_classes", lang), title_justify="left")
        for col in ("class", "metric", "split", "n", "median", "p90", "target"):
            table.add_column(t(f"val.{col}", lang), justify="left" if col in ("class", "metric", "split") else "right")
        from rigsize.validation import TARGETS

        for s in by_class:
            target = "-" if s["target"] is None else (f"{s['target']:.0%} " + ("✓" if s["meets_target"] else "✗"))
            if s["target"] is None and s["split"] == "reserved" and s["metric"] in TARGETS:
                target = t("val.too_few", lang)      # a target exists, the class has too few reserved rows
            table.add_row(s["class"], s["metric"], _split(s["split"], lang), str(s["n"]),
                          f"{s['median_abs_error']:.1%}", f"{s['p90_abs_error']:.1%}", target)
        console.print(table)


def print_calibration(output: str, profile: dict, lang: str, console: Console | None = None) -> None:
    eff = profile["efficiency"]

    def pct(x: object) -> str:
        return f"{x:.0%}" if isinstance(x, (int, float)) else t("report.no_peak", lang)

    (console or Console()).print(render("report.calibrated", lang, output=output, gpu=profile["catalog_gpu"],
                                        compute=pct(eff["compute"]), memory=pct(eff["memory"])), highlight=False)
