"""The terminal table shows the draft behind TPOT (performance.speculative) under --speculative mtp, in both
languages, with the note that its speed is modelled, not fitted; nothing of it otherwise."""

from __future__ import annotations

import pytest

from rigsize.shells.cli import main


@pytest.mark.parametrize("lang, label", [("en", "speculative (MTP)"), ("zh", "推测解码（MTP）")])
def test_the_speculative_row_appears_with_speculative_only(capsys: pytest.CaptureFixture[str], lang: str,
                                                         label: str) -> None:
    base = ("estimate", "deepseek-v3", "--gpu", "H200-SXM-141GB", "--gpus", "8", "--lang", lang)
    assert main([*base, "--speculative", "mtp"]) == 0
    out = capsys.readouterr().out
    assert label in out and "0.85" in out and "1.85" in out
    assert main([*base]) == 0
    assert label not in capsys.readouterr().out
