"""Benchmark speakerid's DiagGMM (EM and LLR scoring) against scikit-learn's GaussianMixture(covariance_type="diag").

Usage::

    python bench/bench_gmm.py [--frames 200000] [--dims 60] [--components 256] [--iters 3] [--repeats 3] [--quick]

Both libraries start EM from the same weights, means and variances and run a fixed number of iterations with
``tol=0``. Per-iteration time excludes initialisation: for speakerid it is ``(fit(max_iter=N) - fit(max_iter=0)) / N``
(the difference removes the one pass over the data computing the variance floor); for scikit-learn it is the time
of the ``_e_step`` + ``_m_step`` pair that ``GaussianMixture.fit`` runs once per iteration (its ``fit`` also spends
a full M-step on initialisation from random responsibilities and a final E-step, which are left out). scikit-learn
is timed on float32 and on float64 input and credited with the faster. Scoring compares the per-frame
log-likelihood ratio of one MAP-adapted speaker against the UBM: speakerid ``llr_scores`` (exact and top-5)
against two ``score_samples`` calls. Every figure is the best of ``--repeats`` runs. The last line printed is one
JSON object with all the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from speakerid.models.gmm import DiagGMM, map_adapt  # noqa: E402
from speakerid.models.llr import llr_scores  # noqa: E402


def make_data(n, d, seed=0, n_clusters=64):
    """Seeded float32 frames from a random diagonal mixture (cluster means ~N(0, 3^2), scales in [0.5, 1.5])."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_clusters, d))
    scales = rng.uniform(0.5, 1.5, size=(n_clusters, d))
    labels = rng.integers(0, n_clusters, size=n)
    return (centers[labels] + rng.normal(size=(n, d)) * scales[labels]).astype(np.float32), rng


def best_of(repeats, func):
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        func()
        times.append(time.perf_counter() - tic)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=60)
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50,000 frames, 2 iterations, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.iters, args.repeats = min(args.frames, 50_000), 2, 2
    warnings.simplefilter("ignore", ConvergenceWarning)
    n, d, k, iters = args.frames, args.dims, args.components, args.iters
    X, rng = make_data(n, d)
    means0 = X[rng.choice(n, k, replace=False)].astype(np.float64)
    weights0, vars0 = np.full(k, 1.0 / k), np.tile(X.var(axis=0, dtype=np.float64), (k, 1))
    init = dict(weights_init=weights0, means_init=means0, variances_init=vars0)

    # ---- EM: speakerid
    ours = dict(n_components=k, tol=0.0, var_floor=0.0, reg_covar=1e-6, **init)
    t_fixed = best_of(args.repeats, lambda: DiagGMM(max_iter=0, **ours).fit(X))
    t_full = best_of(args.repeats, lambda: DiagGMM(max_iter=iters, **ours).fit(X))
    em_ours = max(t_full - t_fixed, 1e-9) / iters
    ubm = DiagGMM(max_iter=iters, **ours).fit(X)

    # ---- EM: scikit-learn, per-iteration E-step + M-step on float32 and float64 input
    em_sk = {}
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        sk = GaussianMixture(k, covariance_type="diag", reg_covar=1e-6, max_iter=1, tol=0.0, init_params="random",
                             weights_init=weights0, means_init=means0, precisions_init=1.0 / vars0).fit(Xd)

        def one_iteration(sk=sk, Xd=Xd):
            _, log_resp = sk._e_step(Xd)
            sk._m_step(Xd, log_resp)

        em_sk[np.dtype(dtype).name] = best_of(args.repeats, one_iteration)
    sk_dtype = min(em_sk, key=em_sk.get)
    # same model reached by both after `iters` iterations (sanity check of the comparison)
    sk_ref = GaussianMixture(k, covariance_type="diag", reg_covar=1e-6, max_iter=iters, tol=0.0, init_params="random",
                             weights_init=weights0, means_init=means0, precisions_init=1.0 / vars0).fit(X)
    ll_ours, ll_sk = ubm.score(X), float(sk_ref.score(X))

    # ---- scoring: one MAP-adapted speaker against the UBM
    spk = map_adapt(ubm, X[: max(1000, n // 100)], relevance_factor=16.0)
    t_exact = best_of(args.repeats, lambda: llr_scores(ubm, [spk], X, top_c=None))
    t_top5 = best_of(args.repeats, lambda: llr_scores(ubm, [spk], X, top_c=5))
    sk_t = {}
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        sk_ubm = GaussianMixture(k, covariance_type="diag")
        sk_spk = GaussianMixture(k, covariance_type="diag")
        for model, src in ((sk_ubm, ubm), (sk_spk, spk)):
            model.weights_, model.means_, model.covariances_ = src.weights_, src.means_, src.covariances_
            model.precisions_cholesky_ = 1.0 / np.sqrt(src.covariances_)
            model.precisions_ = 1.0 / src.covariances_
        sk_t[np.dtype(dtype).name] = best_of(args.repeats, lambda a=sk_spk, b=sk_ubm, Xd=Xd:
                                             np.mean(a.score_samples(Xd) - b.score_samples(Xd)))
    sk_llr = min(sk_t.values())
    llr_exact = float(llr_scores(ubm, [spk], X)[0])
    llr_top5 = float(llr_scores(ubm, [spk], X, top_c=5)[0])
    llr_sk = float(np.mean(sk_spk.score_samples(X.astype(np.float64)) - sk_ubm.score_samples(X.astype(np.float64))))

    fig = {
        "frames": n, "dims": d, "components": k, "iters": iters, "threads": os.cpu_count(),
        "em_s_per_iter": round(em_ours, 4), "sklearn_em_s_per_iter": round(em_sk[sk_dtype], 4),
        "sklearn_em_dtype": sk_dtype, "ratio": round(em_sk[sk_dtype] / em_ours, 2),
        "avg_loglik": round(ll_ours, 5), "sklearn_avg_loglik": round(ll_sk, 5),
        "llr_exact_frames_per_s": round(n / t_exact), "llr_top5_frames_per_s": round(n / t_top5),
        "sklearn_llr_frames_per_s": round(n / sk_llr),
        "exact_ratio": round(sk_llr / t_exact, 2), "scoring_ratio": round(sk_llr / t_top5, 2),
        "llr_exact": round(llr_exact, 5), "llr_top5": round(llr_top5, 5), "sklearn_llr": round(llr_sk, 5),
    }
    print(f"DiagGMM vs sklearn GaussianMixture(diag): {n} frames x {d} dims, K={k}, {os.cpu_count()} cores, "
          f"best of {args.repeats}")
    print(f"{'':36}{'speakerid':>14}{'sklearn':>14}{'speed-up':>10}")
    print(f"{'EM seconds per iteration':36}{em_ours:>14.3f}{em_sk[sk_dtype]:>14.3f}{fig['ratio']:>9.1f}x"
          f"   (sklearn {sk_dtype}; float32 {em_sk['float32']:.3f} s, float64 {em_sk['float64']:.3f} s)")
    print(f"{'avg log-likelihood after EM':36}{ll_ours:>14.5f}{ll_sk:>14.5f}")
    print(f"{'LLR exact, frames/s':36}{n / t_exact:>14,.0f}{n / sk_llr:>14,.0f}{fig['exact_ratio']:>9.1f}x")
    print(f"{'LLR top-5, frames/s':36}{n / t_top5:>14,.0f}{n / sk_llr:>14,.0f}{fig['scoring_ratio']:>9.1f}x"
          "   (sklearn: 2 score_samples calls)")
    print(f"{'LLR value (exact / top-5 / sklearn)':36}{llr_exact:>14.5f}{llr_top5:>14.5f}{llr_sk:>14.5f}")
    print(json.dumps(fig))
    return fig


if __name__ == "__main__":
    main()
