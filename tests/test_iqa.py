"""`psychofeat iqa` / `iqa-claim` on tiny synthetic sets: per-image values checked against `PerceptualDistance`
and `ChannelDistances`, the claim's statistics against scipy, output structure, other datasets, and bad input.
The batched evaluator itself is tested in test_distance_bank.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oracles import ChannelDistances
from PIL import Image
from scipy import ndimage
from scipy import stats as sst

from psychofeat.backbones import load_backbone
from psychofeat.classic import psnr, ssim
from psychofeat.cli import main
from psychofeat.datasets import MissingFilesError, TwoAFCDataset, load_dataset, load_pair
from psychofeat.datasets.base import Triplet
from psychofeat.errors import InputError, WeightsError
from psychofeat.experiments import iqa as I
from psychofeat.experiments import iqa_claim as C
from psychofeat.metric import PerceptualDistance
from psychofeat.selection import Selection

LAYERS = ["relu1_1", "relu1_2", "relu2_2"]
N_CH = {"relu1_1": 64, "relu1_2": 64, "relu2_2": 128}
H, W = 40, 48


# ----------------------------------------------------------------------------------------------- fixtures
def _photo(rng: np.random.Generator) -> np.ndarray:
    """A smooth random 'photo' (H×W×3 in [0, 1]): low-pass noise has edges and texture at several scales."""
    img = sum(ndimage.gaussian_filter(rng.standard_normal((H, W, 3)), (s, s, 0)) * s for s in (1, 3, 6))
    img = (img - img.min()) / (img.max() - img.min())
    return img


def _save(path: Path, arr: np.ndarray, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a8 = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(a8 if mode == "RGB" else a8.mean(axis=2).astype(np.uint8), mode).save(path)
    return path


def make_set(folder: Path, n_ref: int = 3, levels: int = 3, score_type: str = "dmos") -> Path:
    """n_ref references × (blur, noise) × levels distorted images and a CSV whose score grows with the damage."""
    rng = np.random.default_rng(0)
    rows = []
    for r in range(n_ref):
        ref = _photo(rng)
        _save(folder / "refs" / f"r{r}.png", ref)
        for lv in range(1, levels + 1):
            blur = ndimage.gaussian_filter(ref, (0.6 * lv, 0.6 * lv, 0))
            noise = np.clip(ref + rng.normal(0, 0.04 * lv, ref.shape), 0, 1)
            for kind, img in (("blur", blur), ("noise", noise)):
                _save(folder / "dist" / f"r{r}_{kind}{lv}.png", img)
                damage = 10 * lv + (3 if kind == "noise" else 0) + r + rng.normal(0, 2)
                score = damage if score_type == "dmos" else 100 - damage
                rows.append((f"dist/r{r}_{kind}{lv}.png", f"refs/r{r}.png", round(score, 2), score_type, kind))
    csv = folder / "set.csv"
    pd.DataFrame(rows, columns=["distorted", "reference", "score", "score_type", "distortion"]).to_csv(csv, index=False)
    return csv


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("vgg16", "random")


def make_selection(backbone, path: Path | None = None, model: str = "vgg16") -> Selection:
    """A selection with seeded pseudo-PE (the harness must not care where PE came from) and 5 silent channels."""
    rng = np.random.default_rng(1)
    pe = {k: rng.random(n) for k, n in N_CH.items()}
    dead = {k: np.zeros(n, bool) for k, n in N_CH.items()}
    for k in N_CH:
        dead[k][:5] = True
        pe[k][:5] = 0.0
    sel = Selection(model=model, channels={k: np.arange(n) for k, n in N_CH.items()}, n_channels=dict(N_CH),
                    weights={"source": backbone.weights_info.source,
                             "params_sha256": backbone.weights_info.params_sha256},
                    pe=pe, unresponsive=dead).select("top", 0.25)
    if path is not None:
        sel.save(path)
    return sel


@pytest.fixture(scope="module")
def fixture_set(tmp_path_factory, backbone):
    folder = tmp_path_factory.mktemp("iqa_set")
    csv = make_set(folder)
    sel_path = folder / "selection.json"
    make_selection(backbone, sel_path)
    return csv, sel_path


@pytest.fixture(scope="module")
def claim_run(fixture_set, backbone):
    csv, sel_path = fixture_set
    cfg = I.IqaConfig(dataset=str(csv), weights="random", selection=str(sel_path), n_seeds=3, n_boot=50, claim=True,
                      curve_fractions=(0.1, 0.25, 1.0), n_permutations=200)
    return I.run_iqa(cfg, backbone=backbone, progress=False)


# ---------------------------------------------------------------------------- the run against the module itself
@pytest.mark.numerics
def test_per_image_values_equal_perceptual_distance(claim_run, fixture_set, backbone) -> None:
    _, sel_path = fixture_set
    res = claim_run
    frame = res.per_image
    assert len(frame) == 18
    ds = res.dataset
    modules = {
        "top": PerceptualDistance(backbone, selection=sel_path, which="top", fraction=0.25, reduction="none"),
        "bottom": PerceptualDistance(backbone, selection=sel_path, which="bottom", fraction=0.25, reduction="none"),
        "all": PerceptualDistance(backbone, selection=sel_path, which="all", reduction="none"),
        "random_seed2": PerceptualDistance(backbone, selection=sel_path, which="random", fraction=0.25, seed=2,
                                           reduction="none"),
    }
    cd = ChannelDistances(backbone, LAYERS)
    for i, s in enumerate(ds):
        x, y = load_pair(s.distorted, s.reference)
        for name, m in modules.items():
            assert frame[name][i] == pytest.approx(float(m(x, y)), rel=1e-4), (name, i)
        assert frame["psnr_db"][i] == pytest.approx(float(psnr(x.double(), y.double())), rel=1e-9)
        assert frame["ssim"][i] == pytest.approx(float(ssim(x.double(), y.double())), rel=1e-9)
        chans = cd(x, cd.reference(y))
        for k in LAYERS:  # rtol: a channel almost silent on the reference (distance ~1e3) is ill-conditioned in
            # float32, and the harness accumulates the spatial means in float64 where ChannelDistances does not
            np.testing.assert_allclose(res.channel_distances[k][i], chans[k][0].numpy(), rtol=1e-3, atol=1e-12)
    assert res.info["verification"]["max_relative_difference"] < 1e-4


def test_agreement_and_claim_statistics_match_scipy(claim_run) -> None:
    res = claim_run
    human = res.dataset.scores  # DMOS: distances as they are, PSNR/SSIM negated
    m = res.results["metrics"]
    assert m["top"]["srcc"] == pytest.approx(sst.spearmanr(res.per_image["top"], human).statistic)
    assert m["psnr"]["srcc"] == pytest.approx(sst.spearmanr(-res.per_image["psnr_db"], human).statistic)
    seeds = [sst.spearmanr(res.per_image[f"random_seed{s}"], human).statistic for s in range(3)]
    assert m["random"]["summary"]["srcc"]["mean"] == pytest.approx(np.mean(seeds))
    assert m["random"]["summary"]["srcc"]["sd"] == pytest.approx(np.std(seeds, ddof=1))
    d = res.results["differences"]["top-bottom"]
    assert d["srcc_diff"] == pytest.approx(m["top"]["srcc"] - m["bottom"]["srcc"])
    # per-channel SRCC and the per-layer PE correlation, recomputed independently
    ch = res.claim.channels
    k = "relu1_2"
    srcc = [sst.spearmanr(res.channel_distances[k][:, c], human).statistic for c in range(N_CH[k])]
    np.testing.assert_allclose(ch.loc[ch.layer == k, "srcc"], srcc, rtol=1e-9, atol=1e-12)
    row = res.claim.layers.set_index("layer").loc[k]
    ok = np.isfinite(srcc)
    assert row["rho"] == pytest.approx(sst.spearmanr(res.selection.pe[k][ok], np.asarray(srcc)[ok]).statistic)
    assert 0 < row["p_value"] <= 1 and row["p_holm"] >= row["p_value"]
    assert res.claim.pooled["all_channels"]["n_layers"] == len(LAYERS)
    # the curve: k = 0.25 repeats the headline selections, k = 1 is "all" for every method
    curve = res.claim.curve
    top25 = curve[(curve.method == "top") & (curve.fraction == 0.25)].srcc.iloc[0]
    assert top25 == pytest.approx(m["top"]["srcc"])
    assert np.allclose(curve[curve.fraction == 1.0].srcc, m["all"]["srcc"])
    assert set(res.claim.curve_summary.fraction) == {0.1, 0.25, 1.0}


def test_mean_rho_permutation_test() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(30), rng.random(40)
    pairs = [(a, a + 0.1 * rng.random(30)), (b, -b + 0.5 * rng.random(40))]
    res = C.mean_rho_permutation_test(pairs, 2000, 0)
    want = np.mean([sst.spearmanr(x, y).statistic for x, y in pairs])
    assert res["mean_rho"] == pytest.approx(want) and res["n_layers"] == 2
    assert 0 < res["p_value"] <= 1
    strong = C.mean_rho_permutation_test([(a, a), (b, b)], 500, 0)
    assert strong["mean_rho"] == pytest.approx(1.0) and strong["p_value"] == pytest.approx(1 / 501)


def test_holm() -> None:
    np.testing.assert_allclose(C.holm(np.array([0.01, 0.04, np.nan, 0.03])), [0.03, 0.06, np.nan, 0.06])


# ------------------------------------------------------------------------------------------------------ CLI
def test_cli_iqa_writes_documented_outputs(fixture_set, tmp_path) -> None:
    csv, sel_path = fixture_set
    out = tmp_path / "out"
    rc = main(["iqa", "--dataset", str(csv), "--weights", "random", "--selection", str(sel_path), "--layers",
               "relu1_2,relu2_2", "--seeds", "2", "--n-boot", "20", "--out", str(out)])
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"results.json", "per_image.csv", "manifest.json", "report.html"}
    res = json.loads((out / "results.json").read_text())
    assert res["format"] == "psychofeat.iqa/1" and res["layers"] == ["relu1_2", "relu2_2"]
    assert set(res["metrics"]) == {"psnr", "ssim", "all", "top", "bottom", "random"}
    for name in ("psnr", "ssim", "all", "top", "bottom"):
        for key in ("srcc", "krcc", "plcc", "rmse"):
            r = res["metrics"][name]
            assert r[f"{key}_lo"] <= r[key] <= r[f"{key}_hi"] or key in ("plcc", "rmse")
    assert set(res["metrics"]["random"]["seeds"]) == {"random_seed0", "random_seed1"}
    assert set(res["metrics"]["random"]["summary"]["srcc"]) == {"mean", "sd", "min", "max"}
    assert "top-random" in res["differences"]
    frame = pd.read_csv(out / "per_image.csv")
    assert len(frame) == 18 and frame["distorted"][0] == "dist/r0_blur1.png"
    for col in ("human_score", "psnr_db", "ssim", "all", "top", "bottom", "random_seed0", "random_seed1"):
        assert col in frame and frame[col].notna().all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection_source"]["sha256"] and manifest["weights"]["source"] == "random:0"
    assert manifest["dataset"]["n_pairs"] == 18 and manifest["config"]["n_seeds"] == 2
    # random-k with restricted layers is drawn as PerceptualDistance(layers=...) draws it
    m = PerceptualDistance("vgg16", "random", selection=sel_path, layers=["relu1_2", "relu2_2"], which="random",
                           fraction=0.25, seed=1, reduction="none")
    x, y = load_pair(csv.parent / frame["distorted"][4], csv.parent / frame["reference"][4])
    assert frame["random_seed1"][4] == pytest.approx(float(m(x, y)), rel=1e-4)
    # refuses to mix results
    again = ["iqa", "--dataset", str(csv), "--weights", "random", "--selection", str(sel_path), "--out", str(out)]
    assert main(again) == 2


def test_cli_iqa_claim_outputs(fixture_set, tmp_path) -> None:
    csv, sel_path = fixture_set
    out = tmp_path / "claim"
    rc = main(["iqa-claim", "--dataset", str(csv), "--weights", "random", "--selection", str(sel_path), "--layers",
               "relu1_2", "--seeds", "2", "--n-boot", "0", "--fractions", "0.25,1", "--permutations", "100",
               "--out", str(out)])
    assert rc == 0
    claim = pd.read_csv(out / "claim.csv")
    assert list(claim.layer) == ["relu1_2"] and {"rho", "p_value", "p_holm", "rho_responsive"} <= set(claim.columns)
    curve = pd.read_csv(out / "claim_curve.csv")
    assert len(curve) == 2 * (2 + 2)  # 2 fractions × (top, bottom, 2 seeds)
    npz = np.load(out / "channel_distances.npz")
    assert npz["relu1_2"].shape == (18, 64) and npz["human_score"].shape == (18,)
    assert json.loads((out / "claim.json").read_text())["n_permutations"] == 100
    assert "The claim, channel by channel" in (out / "report.html").read_text()


# ------------------------------------------------------------------------------------------- other datasets
def test_standard_layout_dataset_and_mos(tmp_path, backbone) -> None:
    """A LIVE-layout folder read by the `live` loader (scores injected), with MOS-direction scores via a CSV."""
    root = tmp_path / "databaserelease2"
    rng = np.random.default_rng(3)
    rows = []
    for r in range(2):
        ref = _photo(rng)
        _save(root / "refimgs" / f"ref{r}.bmp", ref)
        for lv in range(1, 4):
            _save(root / "gblur" / f"img{3 * r + lv}.bmp", ndimage.gaussian_filter(ref, (lv, lv, 0)))
            rows.append((f"LIVE/gblur/img{3 * r + lv}.bmp", "gblur", f"LIVE/refimgs/ref{r}.bmp", 20.0 * lv + r))
    table = pd.DataFrame(rows, columns=["dis_img_path", "dis_type", "ref_img_path", "score"])
    ds = load_dataset("live", root, scores=table)
    sel_path = tmp_path / "sel.json"
    make_selection(backbone, sel_path)
    cfg = I.IqaConfig(dataset="live", root=str(root), selection=str(sel_path), layers=("relu1_2",), n_seeds=2, n_boot=0)
    res = I.run_iqa(cfg, backbone=backbone, dataset=ds, progress=False)
    assert res.results["dataset"]["score_type"] == "dmos" and len(res.per_image) == 6
    # blur grows with the level within a reference: every metric orders it correctly
    assert res.results["metrics"]["all"]["srcc"] > 0.5

    mos_csv = make_set(tmp_path / "mos", n_ref=2, levels=2, score_type="mos")
    cfg = I.IqaConfig(dataset=str(mos_csv), selection=str(sel_path), layers=("relu1_2",), n_seeds=2, n_boot=0)
    res = I.run_iqa(cfg, backbone=backbone, progress=False)
    assert res.results["dataset"]["score_type"] == "mos"
    assert res.results["metrics"]["psnr"]["srcc"] > 0  # sign convention: positive = agreement for MOS too


def test_csv_paths_relative_to_root(fixture_set, tmp_path) -> None:
    csv, sel_path = fixture_set
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "copy.csv").write_text(csv.read_text())
    out = tmp_path / "o"
    assert main(["iqa", "--dataset", str(lists / "copy.csv"), "--root", str(csv.parent), "--weights", "random",
                 "--selection", str(sel_path), "--layers", "relu1_1", "--seeds", "1", "--n-boot", "0",
                 "--no-report", "--out", str(out)]) == 0


# ---------------------------------------------------------------------------------------------- bad input
def _copy_set(src_csv: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src_csv.parent, dst)
    return dst / src_csv.name


def test_mismatched_sizes_listed_before_any_computation(fixture_set, tmp_path, backbone) -> None:
    csv = _copy_set(fixture_set[0], tmp_path / "s")
    for name in ("r0_blur2.png", "r2_noise1.png"):
        _save(csv.parent / "dist" / name, np.zeros((H + 1, W, 3)))
    cfg = I.IqaConfig(dataset=str(csv), selection=str(csv.parent / "selection.json"), n_seeds=1)
    with pytest.raises(InputError, match="2 distorted images differ in size") as err:
        I.run_iqa(cfg, backbone=backbone, progress=False)
    assert "r0_blur2.png is 48x41 px but its reference" in str(err.value) and "r2_noise1.png" in str(err.value)


def test_missing_files_are_all_listed(fixture_set, tmp_path, backbone) -> None:
    csv = _copy_set(fixture_set[0], tmp_path / "s")
    (csv.parent / "dist" / "r1_blur1.png").unlink()
    (csv.parent / "refs" / "r2.png").unlink()
    cfg = I.IqaConfig(dataset=str(csv), selection=str(csv.parent / "selection.json"), n_seeds=1)
    with pytest.raises(MissingFilesError) as err:
        I.run_iqa(cfg, backbone=backbone, progress=False)
    assert {p.name for p in err.value.missing} == {"r1_blur1.png", "r2.png"}


def test_greyscale_images_are_converted_and_recorded(fixture_set, tmp_path, backbone) -> None:
    csv = _copy_set(fixture_set[0], tmp_path / "s")
    grey = csv.parent / "dist" / "r1_noise2.png"
    _save(grey, np.asarray(Image.open(grey).convert("RGB"), dtype=np.float64) / 255, mode="L")
    cfg = I.IqaConfig(dataset=str(csv), selection=str(csv.parent / "selection.json"), layers=("relu1_1",),
                      n_seeds=1, n_boot=0)
    res = I.run_iqa(cfg, backbone=backbone, progress=False)
    assert res.info["conversions"]["converted_to_rgb"] == [str(grey)]
    assert np.isfinite(res.per_image["top"]).all()


def test_selection_for_another_network_or_other_weights(fixture_set, tmp_path, backbone) -> None:
    csv, _ = fixture_set
    other = tmp_path / "squeeze.json"
    make_selection(backbone, other, model="squeezenet1_1")
    cfg = I.IqaConfig(dataset=str(csv), selection=str(other), n_seeds=1)
    with pytest.raises(InputError, match="computed for model 'squeezenet1_1'"):
        I.run_iqa(cfg, backbone=backbone, progress=False)
    rc = main(["iqa", "--dataset", str(csv), "--weights", "random:1", "--selection", str(fixture_set[1]),
               "--out", str(tmp_path / "o")])
    assert rc == 2  # WeightsError: computed with other weights; printed without a traceback
    with pytest.raises(WeightsError, match="other weights"):
        I.run_iqa(I.IqaConfig(dataset=str(csv), weights="random:1", selection=str(fixture_set[1])), progress=False)


def test_two_afc_set_is_refused_naming_the_full_reference_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(img)
    two_afc = TwoAFCDataset("bapps-2afc", [Triplet(img, img, img, 0.5)], tmp_path)
    monkeypatch.setattr(I, "load_dataset", lambda name, root: two_afc)
    with pytest.raises(InputError, match=r"2AFC set; iqa needs a full-reference set.*live-subset"):
        I.load_full_reference(I.IqaConfig(dataset="bapps-2afc", root=str(tmp_path)))


def test_bad_options_are_refused() -> None:
    with pytest.raises(InputError, match="fraction"):
        I.IqaConfig(fraction=0)
    with pytest.raises(InputError, match="mode"):
        I.IqaConfig(mode="l1")
    with pytest.raises(InputError, match="seeds"):
        I.IqaConfig(n_seeds=0)


@pytest.mark.slow
def test_without_selection_the_network_is_analysed_first(fixture_set, tmp_path) -> None:
    csv, _ = fixture_set
    out = tmp_path / "o"
    assert main(["iqa", "--dataset", str(csv), "--weights", "random", "--layers", "relu1_1", "--seeds", "2",
                 "--n-boot", "0", "--no-report", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection_source"]["generated_by_this_run"]
    assert (out / "analyze" / "selection.json").is_file() and (out / "analyze" / "scores.csv").is_file()


def test_moved_names_keep_working() -> None:
    """Measuring pairs lives in experiments.iqa_pairs, writing in experiments.iqa_report; the old names remain."""
    from psychofeat.experiments import iqa_pairs, iqa_report

    for name in ("preflight", "measure_pairs", "PairValues", "baselines", "verify_pair", "PSNR_CAP_DB", "VERIFY_RTOL"):
        assert getattr(I, name) is getattr(iqa_pairs, name)
    with pytest.warns(DeprecationWarning, match=r"iqa\.write_outputs is deprecated.*iqa_report"):
        assert I.write_outputs is iqa_report.write_outputs
