"""Seconds per T-matrix EM iteration: speakerid's factorised, batched E-step against the plain per-utterance
inverse it replaced, measured in the same run on statistics of a realistic size.

The default size is that of ``train-ivector --ubm-components 32`` on the shared background set (223 files,
1.5-s segments, 2 noisy copies: 5,038 segments; K = 32 components, D = 60 dimensions, rank R = 200). Both
sides get the same random Baum-Welch statistics and the same T; the reference is the E-step as it was
(``np.linalg.inv`` and ``np.linalg.cholesky`` of every precision, BLAS with its default threads), followed by
the same M-step solve. The last line is one JSON object with ``"ratio"`` (reference wall seconds / speakerid
wall seconds per iteration) and the CPU-seconds ratio beside it (on shared cores the wall time of either side
depends on what else runs).

    python bench/bench_ivector.py [--segments 5038] [--components 32] [--dims 60] [--rank 200]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from speakerid.models.ivector import TotalVariability


def reference_e_step(tv, N, Fw, batch_size=256):
    """The E-step before the change: an explicit inverse and a Cholesky of every precision."""
    k, r = N.shape[1], tv._Tw.shape[1]
    TT = tv._TT.reshape(k, r * r)
    A, C, second, ll = np.zeros((k, r * r)), np.zeros((Fw.shape[1], r)), np.zeros((r, r)), 0.0
    for a in range(0, len(N), batch_size):
        Nb, Fb = N[a:a + batch_size], Fw[a:a + batch_size]
        L = (Nb @ TT).reshape(len(Nb), r, r)
        L[:, np.arange(r), np.arange(r)] += 1.0
        rhs = Fb @ tv._Tw
        chol = np.linalg.cholesky(L)
        Linv = np.linalg.inv(L)
        w = np.einsum("nrs,ns->nr", Linv, rhs)
        Eww = Linv + w[:, :, None] * w[:, None, :]
        A += Nb.T @ Eww.reshape(len(w), r * r)
        C += Fb.T @ w
        second += Eww.sum(axis=0)
        ll += 0.5 * float(np.sum(rhs * w)) - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    return ll, A.reshape(k, r, r), C, second


def reference_m_step(A, C, k, d, r):
    return np.linalg.solve(A, C.reshape(k, d, r).transpose(0, 2, 1)).transpose(0, 2, 1)


def timed(func):
    wall, cpu = time.perf_counter(), time.process_time()
    out = func()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=5038)
    parser.add_argument("--components", type=int, default=32)
    parser.add_argument("--dims", type=int, default=60)
    parser.add_argument("--rank", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1, help="iterations timed per side (best kept)")
    args = parser.parse_args(argv)
    n, k, d, r = args.segments, args.components, args.dims, args.rank
    rng = np.random.default_rng(0)
    N = rng.gamma(0.5, 300.0 / k, (n, k))                   # ~150 frames per segment spread over K components
    F = rng.normal(size=(n, k, d)) * np.sqrt(N)[:, :, None]
    variances = rng.uniform(0.5, 2.0, (k, d))
    tv = TotalVariability.from_params(rng.normal(0, 0.1, (k, d, r)) * np.sqrt(variances)[:, :, None], variances)
    Fw = tv._whiten(F)
    print(f"T-matrix EM iteration: {n} segments, K={k}, D={d}, R={r}")

    def ours():
        ll, A, C, second = tv._e_step(N, Fw)
        from speakerid.models.ivector import _m_step
        return ll, A, C, _m_step(A, C.reshape(k, d, r), np.zeros(k, bool))[0]

    def reference():
        ll, A, C, second = reference_e_step(tv, N, Fw)
        return ll, A, C, reference_m_step(A, C, k, d, r)

    best = {}
    results = {}
    for _ in range(max(1, args.repeats)):
        for name, func in (("reference", reference), ("speakerid", ours)):
            results[name], wall, cpu = timed(func)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
            print(f"  {name:10s} {wall:7.2f} s wall  {cpu:7.2f} s CPU per iteration")
    ref, new = results["reference"], results["speakerid"]
    rel = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(new[1:], ref[1:]))
    print(f"  max relative difference of A, C, T: {rel:.2e}; log-likelihood {new[0]:.6f} vs {ref[0]:.6f}")
    summary = {"segments": n, "components": k, "dims": d, "rank": r,
               "reference_s_per_iter": round(best["reference"][0], 3),
               "speakerid_s_per_iter": round(best["speakerid"][0], 3),
               "reference_cpu_s_per_iter": round(best["reference"][1], 3),
               "speakerid_cpu_s_per_iter": round(best["speakerid"][1], 3),
               "max_relative_difference": rel,
               "ratio": round(best["reference"][0] / best["speakerid"][0], 2),
               "cpu_ratio": round(best["reference"][1] / best["speakerid"][1], 2)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
