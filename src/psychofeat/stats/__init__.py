"""Agreement between a metric and human judgments: SRCC, KRCC, PLCC (after a logistic fit), RMSE, 2AFC.

Conventions (SCIENCE.md, "Agreement with humans"):

* **Sign.** Correlations are reported so that *positive means agreement*. A distance grows with the damage,
  as DMOS does, so distance vs DMOS is used as is; MOS grows with quality, so the distance is negated
  (`orient`). PLCC keeps that sign although the logistic fit may be increasing or decreasing (see
  `fit_logistic`); RMSE is unsigned and in the units of the human scores.
* **Logistic fit.** VQEG (2000, 2003) 4-parameter curve `f(x) = (b1 - b2) / (1 + exp(-(x - b3)/|b4|)) + b2`,
  fitted by least squares. It maps metric values onto the human scale before PLCC and RMSE, so a metric is
  not penalised for a monotone non-linearity that Spearman/Kendall ignore anyway.
* **Confidence intervals.** Percentile bootstrap over images (rows), `n_boot` resamples with a fixed seed, so
  a rerun gives identical numbers and two metrics evaluated with the same `n` and `seed` see the *same*
  resamples (paired comparison). Every statistic, including the logistic fit, is recomputed on every
  resample, vectorised over resamples (a batched Levenberg-Marquardt for the fit; Kendall's tau above 200
  rows loops over scipy's O(n log n) routine, which is faster there than any O(n^2) vectorisation).
* **2AFC** (BAPPS): `h` is the fraction of humans who chose p0; a triplet scores `h` when d0 < d1, `1 - h` when
  d0 > d1 and 1/2 when the distances tie (LPIPS's `score_2afc_dataset`, whose `judge` is `1 - h`).

Modules: `core` (inputs, correlations), `logistic` (the fit behind PLCC/RMSE), `resampling` (bootstrap, paired
comparisons, `agreement`, permutation test), `two_afc`. Everything is importable from `psychofeat.stats`.
"""

from __future__ import annotations

from psychofeat.stats.core import (
    CI_LEVEL,
    KENDALL_VECTOR_MAX_N,
    N_BOOT,
    SCORE_TYPES,
    ArrayLike,
    ScoreType,
    check_score_type,
    krcc,
    orient,
    pearson,
    srcc,
    srcc_rows,
)
from psychofeat.stats.logistic import (
    LogisticFit,
    fit_logistic,
    logistic4,
    plcc,
    rmse,
)
from psychofeat.stats.resampling import (
    PAIRED_COLUMNS,
    PermutationResult,
    agreement,
    agreement_table,
    bootstrap_indices,
    bootstrap_statistics,
    centred_ranks,
    holm,
    mean_rho_permutation_test,
    paired_comparisons,
    percentile_ci,
    permuted_rhos,
    spearman_permutation_test,
    srcc_resamples,
    srcc_with_resamples,
)
from psychofeat.stats.two_afc import (
    two_afc,
    two_afc_score,
    two_afc_scores,
)

__all__ = [
    "holm",
    "mean_rho_permutation_test",
    "ArrayLike",
    "CI_LEVEL",
    "KENDALL_VECTOR_MAX_N",
    "LogisticFit",
    "N_BOOT",
    "PAIRED_COLUMNS",
    "PermutationResult",
    "SCORE_TYPES",
    "ScoreType",
    "agreement",
    "agreement_table",
    "bootstrap_indices",
    "bootstrap_statistics",
    "centred_ranks",
    "check_score_type",
    "fit_logistic",
    "krcc",
    "logistic4",
    "orient",
    "paired_comparisons",
    "pearson",
    "percentile_ci",
    "permuted_rhos",
    "plcc",
    "rmse",
    "spearman_permutation_test",
    "srcc",
    "srcc_resamples",
    "srcc_rows",
    "srcc_with_resamples",
    "two_afc",
    "two_afc_score",
    "two_afc_scores",
]
