"""Evaluation pipeline: alignment (an oracle scores PSNR = inf), the published bicubic number, the metric hook, CLI."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from psychofeat.cli import main
from psychofeat.errors import InputError
from psychofeat.sr.checkpoint import save_checkpoint
from psychofeat.sr.data import load_benchmark
from psychofeat.sr.evaluate import detail_box, evaluate_models
from psychofeat.sr.model import SRResNet

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics


class _Oracle(nn.Module):
    """Returns the true HR of each LR it is shown: any misalignment in the pipeline would cost PSNR."""

    def __init__(self, pairs) -> None:  # noqa: ANN001
        super().__init__()
        self.table = {p.lr.tobytes(): p.hr for p in pairs}

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        key = np.round(lr[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8).tobytes()
        return torch.from_numpy(self.table[key]).permute(2, 0, 1)[None].float() / 255


def test_oracle_bicubic_and_extra_metric_hook(data_root: Path) -> None:
    pairs = load_benchmark("set5", limit=1)
    seen: list[torch.Tensor] = []

    def mae(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        seen.append(sr)
        return (sr - hr).abs().flatten(1).mean(1)

    res = evaluate_models({"oracle": _Oracle(pairs)}, ["set5"], extra_metrics={"mae": mae}, limit=1, progress=False)
    df = res.per_image.set_index("method")
    assert np.isinf(df.loc["oracle", "psnr"]) and df.loc["oracle", "ssim"] == pytest.approx(1.0)
    assert df.loc["oracle", "mae"] == 0.0
    assert df.loc["bicubic", "psnr"] == pytest.approx(31.78, abs=0.01)  # Set5 baby, bicubic x4, as published
    # the hook gets 8-bit RGB with the 4 px border shaved
    hr = pairs[0].hr
    assert seen[0].shape == (1, 3, hr.shape[0] - 8, hr.shape[1] - 8)
    assert torch.allclose(seen[0] * 255, (seen[0] * 255).round(), atol=1e-4)
    assert list(res.summary.columns) == ["set", "method", "n_images", "psnr", "ssim", "mae"]
    assert set(res.examples[0].crops) == {"LR (nearest)", "bicubic", "oracle", "HR"}
    assert np.array_equal(res.examples[0].crops["oracle"], res.examples[0].crops["HR"])


def test_eval_argument_errors(data_root: Path) -> None:
    with pytest.raises(InputError, match="baseline"):
        evaluate_models({"bicubic": SRResNet(n_blocks=1, channels=4)}, ["set5"], limit=1, progress=False)
    with pytest.raises(InputError, match="reuse"):
        evaluate_models({}, ["set5"], extra_metrics={"psnr": lambda a, b: a}, limit=1, progress=False)


def test_detail_box_finds_texture() -> None:
    img = np.full((64, 80, 3), 128, np.uint8)
    img[40:56, 8:24] = np.random.default_rng(0).integers(0, 256, (16, 16, 3))
    top, left, size = detail_box(img, 16, stride=8)
    assert (top, left, size) == (40, 8, 16)


def test_cli_eval_and_upscale(tmp_path: Path, data_root: Path) -> None:
    torch.manual_seed(0)
    m = SRResNet(n_blocks=1, channels=8)
    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": m.state_dict(), "model_config": m.config.to_dict(), "step": 0})
    out = tmp_path / "eval"
    rc = main(["sr", "eval", "--checkpoint", str(ckpt), "--sets", "set5,set14", "--limit", "1", "--perceptual", "none",
               "--out", str(out)])
    assert rc == 0
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 4 and set(results["method"]) == {"srresnet", "bicubic"}
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["set"]) == ["Set5", "Set5", "Set14", "Set14"]
    html = (out / "report.html").read_text()
    assert html.count("<img") == 2 and "bicubic" in html
    # the first strip's last panel is the HR region its caption names, pixel for pixel
    uri = re.search(r'data:image/png;base64,([^"]+)', html).group(1)
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
    r0, r1, c0, c1 = map(int, re.search(r"HR rows (\d+)–(\d+), columns (\d+)–(\d+)", html).groups())
    hr = np.asarray(Image.open(data_root / "sr_benchmark" / "Set5" / "HR" / "img_001.png").convert("RGB"))
    np.testing.assert_array_equal(strip[:, -(c1 - c0 + 1):], hr[r0 : r1 + 1, c0 : c1 + 1])
    assert (out / "manifest.json").is_file()
    assert main(["sr", "eval", "--checkpoint", str(ckpt), "--sets", "set6", "--out", str(tmp_path / "e2")]) == 2

    lr_dir = data_root / "sr_benchmark" / "Set14" / "LR_x4"
    single = tmp_path / "bridge_x4.png"
    assert main(["sr", "upscale", str(lr_dir / "img_003.png"), str(single), "--checkpoint", str(ckpt)]) == 0
    with Image.open(lr_dir / "img_003.png") as lr, Image.open(single) as sr:
        assert lr.mode == "L" and sr.mode == "RGB" and sr.size == (4 * lr.size[0], 4 * lr.size[1])
    assert main(["sr", "upscale", str(lr_dir / "img_003.png"), str(single), "--checkpoint", str(ckpt)]) == 2
