"""Draw docs/img/llr.png, the README's "how to read an LLR" picture.

Left: the fused LLRs of the development trials of a model directory built by ``speakerid train`` (its
``dev/dev-scores.csv``: held-out background speakers, never evaluation data), targets and
non-targets. Right: what an LLR means as a probability, P(same speaker) = sigmoid(LLR + logit(prior)), for three priors.

Usage: ``python docs/llr_picture.py MODEL_DIR [--out docs/img/llr.png]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from speakerid.scoring.fused import posterior, read_fusion  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "img" / "llr.png"))
    args = parser.parse_args(argv)
    spec = read_fusion(args.model_dir)
    table = pd.read_csv(Path(args.model_dir) / spec["dev_scores"], dtype={"speaker": str})
    matrix = table[[f"{n}:enrolled" for n in spec["inputs"]]].to_numpy(float)
    ok = np.isfinite(matrix).all(axis=1)
    llr = spec["fusions"]["enrolled"].transform(matrix[ok])
    target = table["target"].to_numpy()[ok] == 1
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.linspace(-12, 12, 61)
    left.hist(np.clip(llr[~target], -12, 12), bins=bins, density=True, alpha=0.6, label="different speakers")
    left.hist(np.clip(llr[target], -12, 12), bins=bins, density=True, alpha=0.6, label="same speaker")
    left.axvline(0.0, color="k", lw=1)
    left.set_xlabel("fused LLR (natural log)")
    left.set_ylabel("density")
    left.set_title("development trials (held-out background speakers)", fontsize=9)
    left.legend(fontsize=8)
    x = np.linspace(-10, 10, 401)
    for prior in (0.5, 0.1, 0.01):
        right.plot(x, posterior(x, prior), label=f"prior {prior:g}: accept above LLR {np.log((1 - prior) / prior):.1f}")
    right.axhline(0.5, color="grey", lw=0.5)
    right.set_xlabel("LLR")
    right.set_ylabel("P(same speaker)")
    right.set_title("LLR 0: no evidence either way; +2.3: 10x more likely the same", fontsize=9)
    right.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
