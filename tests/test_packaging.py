"""The built package, used outside the checkout: `python -m build` (sdist, then the wheel from the sdist) and a
fresh virtual environment with the wheel installed runs the CLI, including a metric that needs the bundled data."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import psychofeat

ROOT = Path(__file__).resolve().parents[1]
TORCH_PIN = "torch==2.13.0"  # the version the Makefile installs; CPU build from the local index


def _run(args: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path, vgg16_imagenet) -> None:  # noqa: ANN001
    pytest.importorskip("build", reason="`pip install build` (in the test extra) is needed to build the wheel")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=tmp_path)
    (wheel,) = dist.glob(f"psychofeat-{psychofeat.__version__}-py3-none-any.whl")
    (sdist,) = dist.glob(f"psychofeat-{psychofeat.__version__}.tar.gz")
    print(f"\nwheel {wheel.name}: {wheel.stat().st_size:,} bytes; sdist {sdist.name}: {sdist.stat().st_size:,} bytes")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = ROOT / "src" / "psychofeat" / "data" / "selections"
    bundled_files = {f"psychofeat/data/selections/{p.name}" for p in data.iterdir()}
    assert bundled_files and bundled_files <= shipped
    assert "psychofeat/py.typed" in shipped and not any(n.startswith(("tests/", "benchmarks/")) for n in shipped)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    bin_ = venv / "bin"
    _run([bin_ / "python", "-m", "pip", "install", "--quiet", TORCH_PIN, wheel], cwd=tmp_path, timeout=1800)
    where = _run([bin_ / "python", "-c", "import psychofeat; print(psychofeat.__file__)"], cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(venv), where  # the installed copy, not the checkout

    version = _run([bin_ / "psychofeat", "--version"], cwd=tmp_path).stdout.strip()
    assert version == f"psychofeat {psychofeat.__version__}"
    layers = _run([bin_ / "psychofeat", "layers", "vgg16"], cwd=tmp_path).stdout
    assert "relu3_3" in layers and "256" in layers

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    out = _run([bin_ / "psychofeat", "distance", "a.png", "b.png", "--metric", "vgg16-pe-top25,psnr", "--threads", "1"],
               cwd=tmp_path).stdout
    row = pd.read_csv(io.StringIO(out)).iloc[0]

    import torch

    from psychofeat.images import load_image
    from psychofeat.metric import PerceptualDistance

    with torch.no_grad():
        want = float(PerceptualDistance(vgg16_imagenet, selection="pe")(load_image(tmp_path / "a.png"),
                                                                         load_image(tmp_path / "b.png")))
    assert row["vgg16-pe-top25"] == pytest.approx(want, rel=1e-5)
    mse = np.mean((a / 255.0 - b / 255.0) ** 2)
    assert row["psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-6)


def test_sdist_ships_the_changelog(tmp_path: Path) -> None:
    """The sdist carries CHANGELOG.md (MANIFEST.in), so a user of the source distribution can read what changed.

    Built without isolation (the venv's setuptools, ~2 s, no index needed); the slow test above builds it isolated.
    """
    pytest.importorskip("build", reason="`pip install build` (in the test extra) is needed to build the sdist")
    pytest.importorskip("setuptools", reason="the build backend must be installed for a build without isolation")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check", "--outdir", tmp_path,
          ROOT], cwd=tmp_path)
    (sdist,) = tmp_path.glob("psychofeat-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        changelog = f"{names[0].split('/')[0]}/CHANGELOG.md"
        assert changelog in names, f"CHANGELOG.md is not in {sdist.name}"
        member = tar.extractfile(changelog)
        assert member is not None
        assert member.read() == (ROOT / "CHANGELOG.md").read_bytes()
