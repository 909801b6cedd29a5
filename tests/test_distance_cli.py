"""`psychofeat distance A B`: pairing, checks and CSV output (PSNR checked against numpy, SSIM against skimage)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from psychofeat.cli import main
from psychofeat.experiments.score_pairs import match_pairs


def _img(path: Path, seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> np.ndarray:
    """A random image file (width, height) = size; returns its RGB uint8 array as read back."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)
    return float(10 * np.log10(1.0 / mse))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["distance", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_two_files_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skimage.metrics import structural_similarity

    a, b = _img(tmp_path / "a.png", 0), _img(tmp_path / "b.png", 1)
    code, out, err = _run(capsys, tmp_path / "a.png", tmp_path / "b.png", "--metric", "psnr,ssim")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out), keep_default_na=False)
    assert list(table.columns) == ["name", "a", "b", "width", "height", "psnr", "ssim", "converted_to_rgb"]
    row = table.iloc[0]
    assert (row["width"], row["height"]) == (48, 40)
    assert row["psnr"] == pytest.approx(_psnr(a, b), rel=1e-6)
    truth = structural_similarity(a / 255.0, b / 255.0, channel_axis=2, data_range=1.0, gaussian_weights=True,
                                  sigma=1.5, use_sample_covariance=False)
    assert row["ssim"] == pytest.approx(truth, abs=1e-5)
    assert row["converted_to_rgb"] == ""


def test_folders_pair_by_name_and_report_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    A, B = tmp_path / "A", tmp_path / "B"
    truth = {}
    for i, name in enumerate(["x.png", "y.png", "z.bmp"]):
        truth[name] = _psnr(_img(A / name, i), _img(B / name, 10 + i))
    _img(A / "only_a.png", 20)
    _img(B / "only_b.png", 21)
    (A / "notes.txt").write_text("not an image")
    out_csv = tmp_path / "res.csv"
    code, out, err = _run(capsys, A, B, "--metric", "psnr", "--out", out_csv)
    assert code == 0, err
    assert out == ""
    assert "1 file(s) in" in err and "only_a.png" in err and "only_b.png" in err
    assert "not images (skipped)" in err and "notes.txt" in err
    table = pd.read_csv(out_csv)
    assert list(table["name"]) == sorted(truth)
    for name, value in zip(table["name"], table["psnr"], strict=True):
        assert value == pytest.approx(truth[name], rel=1e-6)
    # the same --out again needs --overwrite
    code, _, err = _run(capsys, A, B, "--metric", "psnr", "--out", out_csv)
    assert code == 2 and "--overwrite" in err
    assert _run(capsys, A, B, "--metric", "psnr", "--out", out_csv, "--overwrite")[0] == 0


def test_greyscale_is_converted_and_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _img(tmp_path / "a.png", 0, mode="L")
    b = _img(tmp_path / "b.png", 1)
    code, out, err = _run(capsys, tmp_path / "a.png", tmp_path / "b.png", "--metric", "psnr")
    assert code == 0, err
    row = pd.read_csv(io.StringIO(out), keep_default_na=False).iloc[0]
    assert row["converted_to_rgb"] == "a (L)"
    assert row["psnr"] == pytest.approx(_psnr(a, b), rel=1e-6)  # a replicated to 3 channels
    assert "converted to RGB" in err


def test_size_mismatch_lists_every_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("p.png", "q.png"):
        _img(tmp_path / "A" / name, 0, (48, 40))
        _img(tmp_path / "B" / name, 1, (40, 48))
    code, out, err = _run(capsys, tmp_path / "A", tmp_path / "B", "--metric", "psnr")
    assert code == 2 and out == ""
    assert "2 pairs differ in size" in err and "p.png is 48x40 px" in err and "q.png" in err
    assert "Traceback" not in err


def test_file_that_is_not_an_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _img(tmp_path / "a.png", 0)
    (tmp_path / "b.png").write_bytes(b"this is no PNG")
    code, _, err = _run(capsys, tmp_path / "a.png", tmp_path / "b.png", "--metric", "psnr")
    assert code == 1 and "cannot read image" in err and "b.png" in err  # data, not usage: exit status 1 (issue 25)


@pytest.mark.parametrize("case", ["missing", "file_and_folder", "no_common_names"])
def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    _img(tmp_path / "A" / "x.png", 0)
    _img(tmp_path / "B" / "y.png", 1)
    args = {"missing": [tmp_path / "nope.png", tmp_path / "A" / "x.png"],
            "file_and_folder": [tmp_path / "A" / "x.png", tmp_path / "B"],
            "no_common_names": [tmp_path / "A", tmp_path / "B"]}[case]
    message = {"missing": "does not exist", "file_and_folder": "not one of each",
               "no_common_names": "matched by exact file name"}[case]
    code, _, err = _run(capsys, *args, "--metric", "psnr")
    assert code == 2 and message in err


def test_unknown_metric_suggests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _img(tmp_path / "a.png", 0)
    code, _, err = _run(capsys, tmp_path / "a.png", tmp_path / "a.png", "--metric", "vgg16-pe-top52")
    assert code == 2 and "unknown metric" in err and "vgg16-pe-top25" in err


def test_resize_and_minimum_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _img(tmp_path / "a.png", 0, (20, 16))
    _img(tmp_path / "b.png", 1, (20, 16))
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    code, _, err = _run(capsys, a, b, "--metric", "psnr,ssim,vgg16-pe-top25")
    assert code == 2 and "smaller than 32 px" in err and "--resize 32" in err
    code, _, err = _run(capsys, a, b, "--metric", "ssim", "--resize", "8")
    assert code == 2 and "--resize must be at least 11" in err
    code, out, err = _run(capsys, a, b, "--metric", "psnr", "--resize", "32")
    assert code == 0, err
    row = pd.read_csv(io.StringIO(out)).iloc[0]
    assert (row["width"], row["height"]) == (40, 32)  # short side 16 -> 32, aspect ratio kept


def test_list_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--list-metrics")
    assert code == 0
    assert "vgg16-pe-top25" in out and "psnr" in out and "lower_better" in out


def test_needs_two_paths(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys)
    assert code == 2 and "give two image files or two folders" in err


def test_deep_metric_matches_the_module(tmp_path: Path, capsys: pytest.CaptureFixture[str], vgg16_imagenet) -> None:  # noqa: ANN001
    import torch

    from psychofeat.images import load_image
    from psychofeat.metric import PerceptualDistance

    _img(tmp_path / "a.png", 0, (48, 40))
    _img(tmp_path / "b.png", 1, (48, 40))
    code, out, err = _run(capsys, tmp_path / "a.png", tmp_path / "b.png", "--threads", "1")
    assert code == 0, err
    row = pd.read_csv(io.StringIO(out)).iloc[0]
    metric = PerceptualDistance(vgg16_imagenet, selection="pe")
    with torch.no_grad():
        want = float(metric(load_image(tmp_path / "a.png"), load_image(tmp_path / "b.png")))
    assert row["vgg16-pe-top25"] == pytest.approx(want, rel=1e-5)


def test_match_pairs_is_sorted_and_ignores_hidden_files(tmp_path: Path) -> None:
    for name in ("b.png", "a.png", ".hidden.png"):
        _img(tmp_path / "A" / name, 0)
        _img(tmp_path / "B" / name, 1)
    plan = match_pairs(tmp_path / "A", tmp_path / "B")
    assert [p[0].name for p in plan.pairs] == ["a.png", "b.png"]
    assert plan.only_a == plan.only_b == plan.skipped == []
