"""The notebook recipe (python_speech_features + scikit-learn GMM-UBM) on the development suite's protocols.

What a researcher writes without speakerid (``bench_end_to_end.recipe``: psf MFCC 20 + Δ + ΔΔ, energy VAD,
per-utterance CMVN, a diagonal ``GaussianMixture`` UBM of ``--components`` components on every frame of the
background manifest, MAP adaptation of the means with relevance factor 16, the mean per-frame log-likelihood
ratio), trained on ``--background`` (give the same manifest as ``speakerid train`` for a like-for-like row), then
every condition of ``bench/dev_suite.py`` scored from the same protocol files (built by that bench into
``--work``). Files are read at their own rate, as a notebook does (8-kHz files give 8-kHz features against a
16-kHz UBM). Figures are EER, minDCF(0.01) and minCllr, each with its 95 % interval over the enrolled speakers
(``bench/_intervals.py``); its scores are not LLRs, so no actDCF or Cllr. Writes ``<work>/runs/notebook-K<k>/``
score files (``speakerid compare`` reads them) and ends with one JSON line.

Usage::

    python bench/suite_notebook.py --background all.csv [--components 256] [--work data/dev-suite]
                                   [--conditions clean,test-2s,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _intervals import figures, fmt, groups_of  # noqa: E402
from bench_end_to_end import recipe_features, recipe_map_means  # noqa: E402
from dev_suite import CONDITIONS  # noqa: E402


def _absolute(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv, dtype={"speaker": str, "enroll_speaker": str}, keep_default_na=False)
    frame["path"] = [str((csv.parent / p).resolve()) for p in frame["path"]]
    return frame


def main(argv=None) -> int:
    from sklearn.mixture import GaussianMixture

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--background", type=Path, required=True, help="speaker,path manifest (paths relative to it)")
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--work", type=Path, default=HERE.parent / "data" / "dev-suite")
    parser.add_argument("--conditions", default=",".join(c.name for c in CONDITIONS))
    args = parser.parse_args(argv)
    cache: dict[str, np.ndarray] = {}

    def feats(path):
        if path not in cache:
            cache[path] = recipe_features(path)
        return cache[path]

    start = time.perf_counter()
    background = _absolute(args.background)
    usable = []
    for path in background["path"]:
        try:
            usable.append(feats(path))
        except Exception:             # a notebook skips what psf cannot read
            continue
    ubm = GaussianMixture(n_components=args.components, covariance_type="diag", max_iter=10, random_state=0,
                          reg_covar=1e-3).fit(np.vstack(usable))
    train_s = time.perf_counter() - start
    print(f"notebook UBM K={args.components} on {len(usable)} files in {train_s:.1f} s", flush=True)
    out_dir = args.work / "runs" / f"notebook-K{args.components}"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.conditions.split(","):
        folder = args.work / "protocols" / name
        enroll, trials = _absolute(folder / f"{name}-enroll.csv"), _absolute(folder / f"{name}-trials.csv")
        start = time.perf_counter()
        models = {}
        for speaker, rows in enroll.groupby("speaker"):
            model = GaussianMixture(n_components=args.components, covariance_type="diag")
            model.weights_, model.covariances_ = ubm.weights_, ubm.covariances_
            model.precisions_cholesky_ = ubm.precisions_cholesky_
            model.means_ = recipe_map_means(ubm, np.vstack([feats(p) for p in rows["path"]]))
            models[speaker] = model
        ubm_ll, scores = {}, np.empty(len(trials))
        for i, (speaker, path) in enumerate(zip(trials["speaker"], trials["path"])):
            frames = feats(path)
            if path not in ubm_ll:
                ubm_ll[path] = ubm.score_samples(frames).mean()
            scores[i] = models[speaker].score_samples(frames).mean() - ubm_ll[path]
        written = pd.read_csv(folder / f"{name}-trials.csv", dtype=str, keep_default_na=False)["path"]
        trials.assign(path=written.to_numpy(), score=scores).to_csv(out_dir / f"{name}-scores.csv", index=False)
        fig = figures(scores, trials["target"].astype(int).to_numpy(), groups_of(trials))
        results[name] = {**fig, "seconds": round(time.perf_counter() - start, 1)}
        print(f"notebook: {name}: EER {fmt(fig)} %, minDCF0.01 {fmt(fig, 'min_dcf')}, minCllr "
              f"{fmt(fig, 'min_cllr')}, {fig['n_speakers']} spk, {fig['n_target']} tar / {fig['n_nontarget']} non",
              flush=True)
    print(json.dumps({"bench": "notebook recipe on the development suite", "components": args.components,
                      "background": str(args.background), "train_s": round(train_s, 1), "conditions": results},
                     default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
