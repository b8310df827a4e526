"""Cost (issue 15): instances, whole-instance billing, $/h, $/M tokens, runs and owning.

Expected figures come from outside the code: the hand-written SkyPilot-format CSV in
tests/fixtures/skypilot/aws/vms.csv (its published column layout, zones repeated), the
allowance and ownership figures of data/ownership.toml as their sources print them, and
the issue's formulas applied by hand to the report's own speed figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import rigsize
from rigsize.hardware.instances import skypilot_csv
from rigsize.shells.cli import cli

SKY = Path(__file__).parents[1] / "fixtures" / "skypilot" / "aws" / "vms.csv"


def test_skypilot_csv_keeps_the_lowest_price_per_region() -> None:
    rows = {(i.name, i.price_region): i for i in skypilot_csv(SKY)}
    p5 = rows[("p5.48xlarge", "us-east-1")]
    assert p5.provider == "aws" and p5.gpu == "H100-SXM-80GB" and p5.gpus == 8
    assert p5.prices == {"on-demand": 98.32, "spot": 38.50}       # two zones: the lower spot
    assert rows[("p5.48xlarge", "eu-west-1")].prices == {"on-demand": 110.00}
    assert ("m5.large", "us-east-1") not in rows                    # no accelerator


def _cost(**options) -> dict:
    return rigsize.estimate(options.pop("model", "llama-3.1-8b"), prices=str(SKY), provider="aws",
                            **options).model_dump(mode="json")


def test_one_p5_costs_its_hourly_price() -> None:
    cost = _cost(gpu="H100", gpus=8, region="us-east-1")["cost"]
    top = cost["instances"][0]
    assert (top["name"], top["count"], top["gpus_paid"]) == ("p5.48xlarge", 1, 8)
    assert cost["usd_per_hour"] == pytest.approx(98.32)


def test_whole_instances_are_paid_for() -> None:
    cost = _cost(gpu="H100", gpus=4, region="us-east-1")["cost"]
    assert cost["instances"][0]["gpus_paid"] == 8 and cost["usd_per_hour"] == pytest.approx(98.32)


def test_spot_pricing() -> None:
    assert _cost(gpu="H100", gpus=8, region="us-east-1", pricing="spot")["cost"]["usd_per_hour"] == pytest.approx(38.5)


def test_cost_per_million_tokens_is_hourly_over_hourly_tokens() -> None:
    r = _cost(gpu="H100", gpus=8, region="us-east-1", batch=64)
    tokens_per_hour = r["performance"]["output_tokens_per_second"] * 3600
    assert r["cost"]["usd_per_million_output_tokens"] == pytest.approx(98.32 / (tokens_per_hour / 1e6))


def test_a_run_costs_its_hours_with_the_allowance() -> None:
    """Llama 3 paper sec. 3.3.4: > 90% effective training time -> hours / 0.9."""
    r = _cost(model="llama-3.1-8b", task="pretrain", gpu="H100", gpus=8, region="us-east-1", train_tokens=1e9)
    hours = 1e9 / r["performance"]["tokens_per_second"] / 3600 / 0.90
    assert r["cost"]["usd_total"] == pytest.approx(98.32 * hours)
    assert r["cost"]["gpu_hours_with_allowance"] == pytest.approx(8 * hours)
    assert r["cost"]["days_with_allowance"] == pytest.approx(hours / 24)


def test_epochs_times_dataset_tokens_is_the_run() -> None:
    a = _cost(task="lora", gpu="H100", gpus=8, region="us-east-1", epochs=2, dataset_tokens=5e8)["cost"]
    b = _cost(task="lora", gpu="H100", gpus=8, region="us-east-1", train_tokens=1e9)["cost"]
    assert a["usd_total"] == pytest.approx(b["usd_total"])


def test_owning_per_hour_and_break_even() -> None:
    """8 x H100 SXM (700 W TDP) + 575 W host per GPU, PUE 1.58, $0.1124/kWh (data/ownership.toml
    as its sources print them), a $300,000 server over 4 years."""
    own = _cost(gpu="H100", gpus=8, region="us-east-1", server_price=300_000)["cost"]["on_prem"]
    watts = 8 * (700 + 575)
    power = watts / 1000 * 1.58 * 0.1124
    fixed = 300_000 / (4 * 8760)
    assert own["power_watts"] == pytest.approx(watts)
    assert own["usd_per_hour"] == pytest.approx(fixed + power)
    assert own["break_even_utilization"] == pytest.approx(fixed / (98.32 - power))


def test_stale_prices_are_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSIZE_TODAY", "2099-01-01")
    r = _cost(gpu="H100", gpus=8, region="us-east-1")
    assert r["cost"]["instances"][0]["stale"] is True
    assert any("older than 180 days" in w for w in r["warnings"])


def test_clouds_lists_the_user_file(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["clouds", "--prices", str(SKY), "--gpu", "H100", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["instances"]
    assert {(r["name"], r["price_region"]) for r in rows if r["provider"] == "aws"} >= {
        ("p5.48xlarge", "us-east-1"), ("p5.48xlarge", "eu-west-1")}


def test_a_row_whose_spot_price_exceeds_on_demand_is_not_priced(tmp_path: Path) -> None:
    """Contradictory figures (GCP's a3-highgpu rows in us-central1 of the SkyPilot file) are
    not used, so a wrong on-demand price can never rank first."""
    from rigsize.hardware.instances import load_prices

    f = tmp_path / "p.toml"
    f.write_text('[[instance]]\nprovider = "x"\nname = "odd"\ngpu = "H100-SXM-80GB"\ngpus = 8\n'
                 'price_on_demand_per_hour = 10.0\nprice_spot_per_hour = 12.0\n')
    (row,) = load_prices(str(f))
    assert row.prices == {} and row.usd_per_hour("on-demand") is None


def test_a_replica_split_over_stages_is_not_spread_over_single_gpu_instances() -> None:
    """tp 1 x pp 4 is one replica the speed model places in one node (NVLink between
    stages): it is priced on an instance holding all four, never on four 1-GPU VMs."""
    r = _cost(model="qwen2-72b", gpu="H100", gpus=4, tp=1, pp=4, region="us-east-1")
    top = r["cost"]["instances"][0]
    assert top["count"] == 1 and top["gpus_paid"] >= 4


def test_training_cost_per_million_trained_tokens_is_rate_over_speed() -> None:
    """$/M trained tokens = $/h / (tokens/s x 3600 / 1e6), by hand from the report's own
    $/h and speed; printed in estimate's cost table; absent for inference."""
    from rich.console import Console

    from rigsize.shells.render import print_cost

    r = rigsize.estimate("llama-3.1-8b", task="lora", gpu="H100-SXM-80GB")
    by_hand = r.cost.usd_per_hour / (r.performance.tokens_per_second * 3600 / 1e6)
    assert r.cost.usd_per_million_train_tokens == pytest.approx(by_hand, rel=1e-12)
    console = Console(record=True, width=200)
    print_cost(r.cost, "en", console)
    text = console.export_text()
    assert "Per million trained tokens" in text and f"${by_hand:,.2f}" in text
    assert rigsize.estimate("llama-3.1-8b").cost.usd_per_million_train_tokens is None
