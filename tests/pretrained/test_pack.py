"""Packing a trained fused directory into the shipped form: smaller, self-contained, and scoring the same trials."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _small import SMALL

from speakerid.backends import _cohort
from speakerid.backends._packed import quantize, unpack_arrays
from speakerid.data.synth import make_corpus
from speakerid.exceptions import ParameterError
from speakerid.pretrained.pack import build_hash, pack_model
from speakerid.scoring.fused import FusedVerifier
from speakerid.scoring.fused_train import train_default
from speakerid.store import SHIPPED_MARKER, load_model_file


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small fused system (with its narrowband branch) trained on 14 synthetic background speakers."""
    root = tmp_path_factory.mktemp("pack")
    corpus = make_corpus(root / "corpus", n_speakers=4, n_utterances=4, enroll_per_speaker=2, n_background=14,
                         n_background_utterances=2, duration_s=(2.0, 3.0), seed=1, show_progress=False)
    train_default(corpus.background_csv, root / "m", dev_share=0.45, system_params=SMALL)
    sizes = pack_model(root / "m", root / "packed", max_frames=120, data_root=root)
    pack_model(root / "m", root / "whole", max_frames=100_000, data_root=root)    # codes only, nothing cut
    return root, corpus, sizes


def _enrolled(model_dir, corpus):
    if (model_dir / SHIPPED_MARKER).is_file():       # a packed folder is read-only: enroll into a copy, as the store
        copy = model_dir.with_name(model_dir.name + "-copy")
        if not copy.exists():
            shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns(SHIPPED_MARKER))
        model_dir = copy
    verifier = FusedVerifier(model_dir)
    verifier.enroll_manifest(corpus.enroll_csv)
    return verifier


def test_the_packed_directory_is_self_contained(trained):
    root, _, sizes = trained
    packed = root / "packed"
    assert "fusion.json" in sizes and "narrowband/fusion.json" in sizes
    assert not (packed / "dev").exists() and not any(name.startswith("dev/") for name in sizes)
    text = " ".join((packed / name).read_text(encoding="utf-8") for name in sizes if name.endswith((".json", ".csv")))
    assert str(root) not in text and "dev_scores" not in json.loads((packed / "fusion.json").read_text())
    cohort = (packed / "systems" / "gmm-ubm" / "cohort.csv").read_text(encoding="utf-8").splitlines()
    assert all(not line.split(",")[1].startswith("/") for line in cohort[1:])
    # the i-vector cohort keeps i-vectors, the GMM-UBM cohort int8 frames: no float frames anywhere
    header, arrays = load_model_file(packed / "systems" / "ivector" / "cohort-ivector.npz")
    assert header["packed"]["utterances"] == "prepared" and "frames" not in arrays
    header, arrays = load_model_file(packed / "systems" / "gmm-ubm" / "cohort-gmm-ubm.npz")
    assert arrays["frames_q"].dtype == np.int8 and arrays["lengths"].max() <= 120
    assert sum(sizes.values()) < sum(p.stat().st_size for p in (root / "m").rglob("*") if p.is_file())
    # every folder of it is marked read-only: enrolling into it is refused before anything is written
    assert {p.parent.relative_to(packed).as_posix() for p in packed.rglob(SHIPPED_MARKER)} == {
        ".", "narrowband", "systems/gmm-ubm", "systems/ivector", "narrowband/systems/gmm-ubm",
        "narrowband/systems/ivector"}
    with pytest.raises(ParameterError, match="never written"):
        FusedVerifier(packed).enroll("zz", [str(p) for p in sorted((root / "corpus").rglob("*.wav"))[:2]])
    assert not list(packed.rglob("zz-*"))


def test_packed_and_trained_directories_give_the_same_llrs(trained):
    """With nothing cut, only the 8-bit codes and float32 arrays differ: the LLRs agree to a few hundredths."""
    root, corpus, _ = trained
    import pandas as pd

    trials = pd.read_csv(corpus.trials_csv, dtype={"speaker": str})
    full, packed = _enrolled(root / "m", corpus), _enrolled(root / "whole", corpus)
    llr_full, llr_packed = [], []
    for _, row in trials.head(24).iterrows():
        path = corpus.trials_csv.parent / row["path"]
        llr_full.append(full.verify(row["speaker"], path)["llr"])
        llr_packed.append(packed.verify(row["speaker"], path)["llr"])
    llr_full, llr_packed = np.array(llr_full), np.array(llr_packed)
    assert np.abs(llr_full - llr_packed).max() < 0.03
    assert np.abs(llr_full).max() > 0.5                    # real, spread LLRs were compared


def test_the_packed_cohort_is_read_back_as_frames_and_models(trained):
    root, *_ = trained
    store_dir = root / "packed" / "systems" / "gmm-ubm"
    header, arrays = load_model_file(store_dir / "cohort-gmm-ubm.npz")
    cohort = _cohort._from_arrays(header, arrays)
    assert len(cohort.utterances) == len(arrays["lengths"]) and cohort.utterances[0].dtype == np.float32
    assert cohort.models[0]["means"].shape == arrays["ubm_means"].shape
    # the MAP means come back within half a quantisation step (in UBM standard deviations) of the trained ones
    _, trained_arrays = load_model_file(root / "m" / "systems" / "gmm-ubm" / "cohort-gmm-ubm.npz")
    step = arrays["model0:means_scale"].astype(np.float32)[:, None] * arrays["ubm_std"]
    assert np.all(np.abs(cohort.models[0]["means"] - trained_arrays["model0:means"]) <= 0.5 * step + 1e-5)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 40.0])
def test_quantisation_error_is_at_most_half_a_step(rng, scale):
    rows = rng.standard_normal((50, 60)).astype(np.float32) * scale
    rows[3] = 0.0                                               # an all-zero row keeps a usable scale
    codes, steps = quantize(rows)
    back = codes * steps.astype(np.float32)[:, None]
    assert codes.dtype == np.int8 and np.all(np.abs(codes) <= 127)
    assert np.all(np.abs(back - rows) <= 0.5 * steps.astype(np.float32)[:, None] * 1.001 + 1e-12)
    assert np.all(back[3] == 0.0)


def test_unpack_leaves_an_unpacked_cohort_alone():
    arrays = {"frames": np.zeros((3, 2), np.float32), "lengths": np.array([3])}
    assert unpack_arrays(arrays) is arrays


def test_the_build_hash_ignores_timestamps_and_sees_any_change(trained, tmp_path):
    root, *_ = trained
    again = tmp_path / "again"
    pack_model(root / "m", again, max_frames=120, data_root=root)
    assert build_hash(again) == build_hash(root / "packed")       # created_at differs, content does not
    other = tmp_path / "other"
    pack_model(root / "m", other, max_frames=60, data_root=root)
    assert build_hash(other) != build_hash(root / "packed")


def test_pack_refuses_bad_requests(trained, tmp_path):
    root, *_ = trained
    with pytest.raises(ParameterError, match="already exists"):
        pack_model(root / "m", root / "packed")
    with pytest.raises(ParameterError, match="not a directory built by 'speakerid train'"):
        pack_model(tmp_path, tmp_path / "out")
    for bad in (0, -3, True):
        with pytest.raises(ParameterError, match="max_frames"):
            pack_model(root / "m", tmp_path / f"out{bad}", max_frames=bad)
