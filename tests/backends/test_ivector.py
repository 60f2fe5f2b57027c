"""train_ivector (speakerid.backends.ivector): map-reduce Baum-Welch statistics and T-matrix EM."""

from __future__ import annotations

import numpy as np
import pytest

from speakerid.backends.ivector import train_ivector
from speakerid.store import IVECTOR_FILE, ModelStore

SETTINGS = dict(rank=8, max_iter=2, n_augment=1, ubm_components=8, shard_frames=1200, plda_max_iter=2)


def _arrays(model_dir):
    return ModelStore(model_dir).load(IVECTOR_FILE)[1]


@pytest.fixture(scope="module")
def serial(synth_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("ivector")
    result = train_ivector(root / "one", synth_corpus.background_csv, n_jobs=1, cache_dir=root / "cache",
                           **SETTINGS)
    return root, result


def test_same_extractor_with_one_or_two_workers(synth_corpus, serial):
    root, one = serial
    two = train_ivector(root / "two", synth_corpus.background_csv, n_jobs=2, cache_dir=root / "cache", **SETTINGS)
    assert two["n_extracted"] == 0 and one["n_extracted"] == 24      # the second run read the store only
    a, b = _arrays(root / "one"), _arrays(root / "two")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert one["train_eer"] == two["train_eer"]
    assert one["n_segments"] == two["n_segments"] > 48                # 24 files x (clean + 1 copy), cut in 1.5 s
    assert len(one["em_seconds"]) == 2


def test_dask_extractor_within_tolerance(synth_corpus, serial):
    """Dask workers start OpenBLAS single-threaded; its float64 kernels then round differently in the last bits,
    which the T-matrix EM carries: equal within 1e-4 relative (the UBM statistics are bit-identical)."""
    root, one = serial
    dask = train_ivector(root / "dask", synth_corpus.background_csv, n_jobs=2, scheduler="local",
                         cache_dir=root / "cache", **SETTINGS)
    a, b = _arrays(root / "one"), _arrays(root / "dask")
    for name in a:
        scale = max(float(np.abs(a[name]).max()), 1e-12) if a[name].dtype.kind == "f" else 1
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-4 * scale, err_msg=name)
    assert dask["train_eer"]["plda"] == pytest.approx(one["train_eer"]["plda"], abs=0.01)


def test_unusable_background_files_are_left_out_and_listed(synth_corpus, tmp_path):
    import pandas as pd

    from speakerid.exceptions import AudioWarning
    from tests._unusable import unusable_files

    good = pd.read_csv(synth_corpus.background_csv, dtype=str)
    good["path"] = [str((synth_corpus.background_csv.parent / p).resolve()) for p in good["path"]]
    bad = unusable_files(tmp_path / "bad")
    mixed = pd.concat([good, pd.DataFrame({"speaker": "bad", "path": [str(p) for p in bad]})], ignore_index=True)
    with pytest.warns(AudioWarning, match=r"4 of 28 background file\(s\) left out, listed with the reason in .*: .*(silent|speech)"):
        result = train_ivector(tmp_path / "m", mixed, cache_dir=tmp_path / "cache", **SETTINGS)
    assert (result["n_files"], result["n_refused"], result["n_speakers"]) == (24, 4, good["speaker"].nunique())
    header, _ = ModelStore(tmp_path / "m").load(IVECTOR_FILE)
    assert "bad" not in header["background_speakers"]
    assert len(pd.read_csv(tmp_path / "m" / "refused-ivector.csv")) == 4
    assert not (tmp_path / "m" / "refused-ubm.csv").exists()      # each trainer keeps its own list
