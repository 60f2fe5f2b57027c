"""The fusion and calibration of ``speakerid train``, learned on the development scores, and its figures.

A prior-weighted logistic-regression fusion (BOSARIS; Brümmer and de Villiers 2011) of the systems' scores, with
the speech durations as quality measures (:mod:`speakerid.scoring.quality`); the development figures per
condition (EER, minDCF, actDCF, Cllr, minCllr) in-sample and cross-validated over two halves of the development
speakers, each with its 95 % interval from a bootstrap over the development speakers (Bolle et al. 2004).
"""

from __future__ import annotations

import warnings

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.evaluation.bootstrap import figures_with_intervals
from speakerid.evaluation.fusion import LinearFusion
from speakerid.scoring.llr import FUSION_KEY
from speakerid.scoring.quality import MEASURES, QualityInputs

pd = lazy_import("pandas")

__all__ = ["fit_fusions", "dev_figures", "FIT_P_TARGET", "QUALITY_INTERACTIONS", "DEV_N_BOOT"]

#: Prior at which the fusion's logistic regression is weighted (BOSARIS: near the application's operating point).
FIT_P_TARGET = 0.5
#: Whether the calibration's quality measures also scale each score, not only shift the LLR. Chosen on the
#: development suite (README, "Calibration by speech duration"): of its 14 conditions, Cllr - minCllr <= 0.1 bit
#: and actDCF(0.01) <= minDCF + 0.05 held in 9 and 7 without quality measures, 11 and 9 with the offsets alone,
#: 9 and 3 with the products too (over-confident long trials).
QUALITY_INTERACTIONS = False
#: Bootstrap resamples of the development figures' intervals.
DEV_N_BOOT = 1000


def _matrix(table: pd.DataFrame, inputs) -> tuple[np.ndarray, np.ndarray]:
    matrix = table[list(inputs)].to_numpy(float)
    ok = np.isfinite(matrix).all(axis=1)
    if all(m in table.columns for m in MEASURES):
        ok &= np.isfinite(table[list(MEASURES)].to_numpy(float)).all(axis=1)
    return matrix, ok


def _fusion_inputs(table: pd.DataFrame, inputs, rows, quality: QualityInputs | None) -> np.ndarray:
    """The fusion's input matrix of ``rows`` of ``table``: the inputs' scores, through ``quality`` when given."""
    matrix = table[list(inputs)].to_numpy(float)[rows]
    if quality is None:
        return matrix
    return quality.transform(matrix, *(table[m].to_numpy(float)[rows] for m in MEASURES))


def _fit(table: pd.DataFrame, inputs, rows, quality: QualityInputs | None):
    """A :class:`LinearFusion` learned on ``rows`` of ``table``, through ``quality`` (fitted on those rows)."""
    if quality is not None:
        quality.fit(*(table[m].to_numpy(float)[rows] for m in MEASURES))
    model = LinearFusion(p_target=FIT_P_TARGET).fit(_fusion_inputs(table, inputs, rows, quality),
                                                    table["target"].to_numpy()[rows])
    model.system_names_ = list(inputs) if quality is None else quality.names
    return model


def _apply(table: pd.DataFrame, inputs, rows, model: LinearFusion, quality: QualityInputs | None) -> np.ndarray:
    return model.transform(_fusion_inputs(table, inputs, rows, quality))


def fit_fusions(table: pd.DataFrame, inputs, quality: bool | None = None) -> tuple[dict, QualityInputs | None]:
    """``({FUSION_KEY: LinearFusion}, quality)``: the fusion learned on every usable development trial of ``table``,
    with the speech durations as quality measures (:mod:`speakerid.scoring.quality`) when ``quality`` (default:
    when the table has them), else on the scores alone (``quality`` None)."""
    use = all(m in table.columns for m in MEASURES) if quality is None else bool(quality)
    _, ok = _matrix(table, inputs)
    measures = QualityInputs(inputs, interactions=QUALITY_INTERACTIONS) if use else None
    return {FUSION_KEY: _fit(table, inputs, ok, measures)}, measures


def _figures(scores, labels, llr: bool, speakers) -> dict:
    """The figures of one score set, each with its 95 % interval over the development speakers (``*_ci``)."""
    return figures_with_intervals(scores, labels, speakers, llr=llr, n_boot=DEV_N_BOOT)


def dev_figures(table: pd.DataFrame, inputs, fusions: dict, quality: QualityInputs | None = None) -> dict:
    """Per condition: each input (raw scale), the fusion learned on all of dev
    (``fusion (dev, in-sample)``) and cross-validated over two halves of the development speakers
    (``fusion (dev CV)``: learned on the trials within one half, applied to the other; its quality measures'
    references and ranges learned on that half too)."""
    labels = table["target"].to_numpy()
    matrix, ok = _matrix(table, inputs)
    fused = np.full(len(table), np.nan)
    fused[ok] = _apply(table, inputs, ok, fusions[FUSION_KEY], quality)
    truth = table[table["target"] == 1].drop_duplicates("path").set_index("path")["speaker"]
    true_speaker = table["path"].map(truth).to_numpy()
    speakers = sorted(table["speaker"].unique())
    cv = np.full(len(table), np.nan)
    halves = [set(speakers[0::2]), set(speakers[1::2])]
    within = [table["speaker"].isin(h).to_numpy() & pd.Series(true_speaker).isin(h).to_numpy() & ok
              for h in halves]
    for learn, apply in ((0, 1), (1, 0)):
        half = None if quality is None else QualityInputs(inputs, interactions=quality.interactions)
        with warnings.catch_warnings():      # a half may separate perfectly: these fits only give figures
            warnings.simplefilter("ignore", UserWarning)
            model = _fit(table, inputs, within[learn], half)
        cv[within[apply]] = _apply(table, inputs, within[apply], model, half)
    claims = table["speaker"].astype(str).to_numpy()   # the bootstrap resamples the claimed (enrolled) speakers
    out = {}
    for condition in table["condition"].unique():
        rows = (table["condition"] == condition).to_numpy()
        figs = {name: _figures(matrix[rows & ok, j], labels[rows & ok], False, claims[rows & ok])
                for j, name in enumerate(inputs)}
        figs["fusion (dev, in-sample)"] = _figures(fused[rows & ok], labels[rows & ok], True, claims[rows & ok])
        keep = rows & np.isfinite(cv)
        if len(np.unique(labels[keep])) == 2:
            figs["fusion (dev CV)"] = _figures(cv[keep], labels[keep], True, claims[keep])
        out[str(condition)] = figs
    return out
