"""`psychofeat sr upscale` on files and folders, and its refusals (non-images, other scales, other architectures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from psychofeat.cli import main
from psychofeat.errors import InputError, WeightsError
from psychofeat.sr.checkpoint import save_checkpoint
from psychofeat.sr.model import SRResNet
from psychofeat.sr.upscale import load_upscaler, plan_upscale, upscale_files


def _ckpt(path: Path, scale: int = 4) -> Path:
    torch.manual_seed(0)
    m = SRResNet(n_blocks=1, channels=8, scale=scale)
    return save_checkpoint(path, {"model": m.state_dict(), "model_config": m.config.to_dict(), "step": 0})


def _images(folder: Path) -> dict[str, tuple[int, int]]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"a.png": (12, 10), "b.jpg": (9, 14), "c.bmp": (8, 8)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    Image.fromarray(rng.integers(0, 256, (7, 5), dtype=np.uint8), mode="L").save(folder / "grey.png")
    (folder / "notes.txt").write_text("not an image")
    return {**sizes, "grey.png": (7, 5)}


def test_folder_upscale_writes_one_png_per_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = _images(tmp_path / "in")
    ckpt = _ckpt(tmp_path / "m.pt")
    assert main(["sr", "upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(ckpt)]) == 0
    err = capsys.readouterr().err
    assert "skipped notes.txt (not an image file)" in err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{Path(n).stem}.png" for n in sizes)
    model = load_upscaler(ckpt)
    for name, (h, w) in sizes.items():
        with Image.open(tmp_path / "out" / f"{Path(name).stem}.png") as im:
            assert im.mode == "RGB" and im.size == (4 * w, 4 * h)
            got = np.asarray(im)
        with Image.open(tmp_path / "in" / name) as src:  # the same numbers as the model on the decoded input
            lr = torch.from_numpy(np.array(src.convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            ref = (model(lr).clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    # a second run refuses to overwrite, and --overwrite replaces
    assert main(["sr", "upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(ckpt)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["sr", "upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(ckpt),
                 "--overwrite"]) == 0


def test_non_images_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    _images(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="broken.png is not a readable image"):
        plan_upscale(tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="not an image file"):
        plan_upscale(tmp_path / "in" / "notes.txt", tmp_path / "x.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("#")
    with pytest.raises(InputError, match="no images .* readme.md"):
        plan_upscale(empty, tmp_path / "o2")
    with pytest.raises(InputError, match="neither"):
        plan_upscale(tmp_path / "missing", tmp_path / "o3")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(InputError, match="OUT must be a folder"):
        plan_upscale(tmp_path / "in", tmp_path / "file.png")


def test_same_stem_twice_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.png", "x.jpg"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / name)
    with pytest.raises(InputError, match="same file x.png"):
        plan_upscale(folder, tmp_path / "out")


def test_checkpoint_of_another_scale_or_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x2 = _ckpt(tmp_path / "x2.pt", scale=2)
    with pytest.raises(WeightsError, match=r"×2 model but ×4 was asked for.*--scale 2"):
        load_upscaler(x2)
    assert load_upscaler(x2, scale=2).scale == 2
    _images(tmp_path / "in")
    assert main(["sr", "upscale", str(tmp_path / "in" / "a.png"), str(tmp_path / "a2.png"), "--checkpoint", str(x2),
                 "--scale", "2"]) == 0
    with Image.open(tmp_path / "a2.png") as im:
        assert im.size == (20, 24)
    # a state dict of another network (here a bare conv) is not an SRResNet
    torch.save({"weight": torch.zeros(4, 3, 3, 3), "bias": torch.zeros(4)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="do not fit SRResNet"):
        load_upscaler(tmp_path / "other.pth")
    assert main(["sr", "upscale", str(tmp_path / "in" / "a.png"), str(tmp_path / "o.png"), "--checkpoint",
                 str(tmp_path / "other.pth")]) == 2
    assert "do not fit SRResNet" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        load_upscaler(tmp_path / "junk.pt")


def test_upscale_files_returns_written_paths(tmp_path: Path) -> None:
    _images(tmp_path / "in")
    plan = plan_upscale(tmp_path / "in", tmp_path / "out" / "nested")
    written = upscale_files(load_upscaler(_ckpt(tmp_path / "m.pt")), plan, progress=False)
    assert written == [d for _, d in plan.jobs] and all(p.is_file() for p in written)
    assert plan.skipped == ["notes.txt (not an image file)"]
