"""Training with only --gpus and a --global-batch that no fitting layout can split: one clear
error about what the search could not find, not the dp of a fallback layout the user never chose."""

from __future__ import annotations

import pytest

import rigsize
from rigsize.errors import RigsizeError
from rigsize.shells.cli import main


def test_no_layout_that_fits_and_splits_the_batch_is_said() -> None:
    with pytest.raises(RigsizeError, match="no tp x pp layout on 256 GPUs both fits in memory") as err:
        rigsize.estimate("llama-3.1-405b", task="pretrain", gpus=256, global_batch=16)
    assert "dp 256" not in str(err.value)

def test_the_cli_says_it_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["estimate", "llama-3.1-405b", "--task", "pretrain", "--gpus", "256", "--global-batch", "16"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "splits global batch 16" in err and len(err.strip().splitlines()) == 1


def test_the_least_parallel_layout_that_splits_the_batch_is_chosen() -> None:
    """Llama 3.1 8B on 16 H100s fits at tp 2 (dp 8); a global batch of 20 splits over neither dp 16
    nor dp 8, so the least model parallelism that fits and splits it is tp 4 x pp 1 (dp 4, pp last)."""
    fits = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=16, global_batch=64, framework="megatron")
    assert (fits.parallel.tp, fits.parallel.pp, fits.parallel.dp) == (2, 1, 8)
    r = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=16, global_batch=20, framework="megatron")
    assert r.memory.fits and (r.parallel.tp, r.parallel.pp, r.parallel.dp) == (4, 1, 4)
