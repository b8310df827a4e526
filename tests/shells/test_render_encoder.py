"""The terminal table shows the vision encoder's part of TTFT (performance.encoder) when a
request has images, in both languages, and nothing of it otherwise."""

from __future__ import annotations

import pytest

from rigsize.shells.cli import main


@pytest.mark.parametrize("lang, label", [("en", "of which vision encoder"), ("zh", "其中视觉编码器")])
def test_the_encoder_row_appears_with_images_only(capsys: pytest.CaptureFixture[str], lang: str, label: str) -> None:
    base = ("estimate", "qwen2.5-vl-7b", "--gpu", "H100", "--engine", "vllm", "--lang", lang)
    assert main([*base, "--images-per-request", "2", "--image-size", "1280x720"]) == 0
    out = capsys.readouterr().out
    assert label in out and "4,784" in out          # 2 x (92 x 52) patches
    assert main([*base]) == 0
    assert label not in capsys.readouterr().out
