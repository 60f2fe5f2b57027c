"""speakerid.scoring.dev_sets: the development trials of ``speakerid train`` pair different recordings when the
background allows it, and fall back to the halves of one recording (said so) when it does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speakerid.data.dev_trials import split_speakers
from speakerid.data.synth import make_corpus
from speakerid.scoring import dev_sets
from speakerid.scoring.fused_train import train_default


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("devsets")
    return make_corpus(root / "corpus", n_speakers=4, n_utterances=4, enroll_per_speaker=2, n_background=14,
                       n_background_utterances=5, duration_s=(2.5, 3.5), seed=3, show_progress=False)


def _background(corpus) -> pd.DataFrame:
    frame = pd.read_csv(corpus.background_csv, dtype=str)
    frame["path"] = [str((corpus.background_csv.parent / p).resolve()) for p in frame["path"]]
    return frame


def test_multi_recording_speakers_count_recordings_not_files():
    frame = pd.DataFrame({"speaker": ["a"] * 4 + ["b"] * 4 + ["c"] * 3,
                          "path": [f"/x/{i}.wav" for i in range(11)]})
    assert dev_sets.multi_recording_speakers(frame) == ["a", "b"]
    frame["recording"] = ["r1", "r1", "r2", "r3"] + ["s1", "s2", "s3", "s4"] + ["t1", "t2", "t3"]
    assert dev_sets.multi_recording_speakers(frame) == ["b"]        # a's four files are three recordings
    assert dev_sets.protocol_kind(frame[frame["speaker"] == "b"]) == "cross"
    assert dev_sets.protocol_kind(frame) == "halves"


def test_dev_speakers_come_from_multi_recording_speakers_when_enough():
    speakers = [f"s{i:02d}" for i in range(40)]
    multi = speakers[30:]
    train, dev = split_speakers(speakers, 0.2, 0, candidates=multi)
    assert set(dev) <= set(multi) and len(dev) == 8 and not set(train) & set(dev)
    # too few candidates: the plain draw, identical to the one without candidates
    assert split_speakers(speakers, 0.2, 0, candidates=multi[:3]) == split_speakers(speakers, 0.2, 0)


def test_cross_recording_trials_never_pair_one_recording(corpus, tmp_path):
    frame = _background(corpus)
    dev = frame[frame["speaker"].isin(sorted(frame["speaker"].unique())[:6])]
    trials, kind = dev_sets.build_trials(dev, tmp_path / "dev", 16000, random_state=0)
    assert kind == "cross" and set(trials) == {"clean", "short", "noisy"}
    enrolls = [pd.read_csv(e, dtype=str) for e, _ in trials.values()]
    assert all(e.equals(enrolls[0]) for e in enrolls)                 # one enrollment for every condition
    enrolled = enrolls[0].groupby("speaker")["source"].apply(set)
    for condition, (_, trials_csv) in trials.items():
        table = pd.read_csv(trials_csv, dtype=str)
        assert all(p.startswith("/") for p in table["path"]) and table["target"].isin(["0", "1"]).all()
        targets = table[table["target"] == "1"]
        assert len(targets) >= 6
        for model, source in zip(targets["speaker"], targets["source"]):
            assert source not in enrolled[model], (condition, model, source)
        if condition != "clean":
            import soundfile as sf

            assert {round(sf.info(p).duration, 2) for p in table["path"]} == {2.0}


def test_one_recording_per_speaker_falls_back_to_halves(corpus, tmp_path):
    frame = _background(corpus).groupby("speaker").head(1)
    dev = frame[frame["speaker"].isin(sorted(frame["speaker"].unique())[:6])]
    trials, kind = dev_sets.build_trials(dev, tmp_path / "dev", 16000, random_state=0)
    assert kind == "halves" and set(trials) == {"clean", "short", "noisy"}


def test_train_reports_cross_recording_figures_with_intervals(corpus, tmp_path):
    small = {"gmm-ubm": {"n_components": 8, "max_iter": 3, "n_augment": 0},
             "ivector": {"ubm_components": 8, "rank": 10, "n_augment": 0, "max_iter": 3, "segment_s": 1.0}}
    result = train_default(corpus.background_csv, tmp_path / "m", dev_share=0.45, system_params=small)
    assert result["dev_trials"] == "cross"
    for condition, systems in result["dev"].items():
        for name, f in systems.items():
            for key in ("eer_pct", "min_dcf", "min_cllr") + (("act_dcf", "cllr") if "cllr" in f else ()):
                low, high = f[f"{key}_ci"]
                assert low <= f[key] + 1e-9 and f[key] <= high + 1e-9, (condition, name, key)
            assert f["n_speakers"] == result["n_dev_speakers"] and f["n_target"] >= 6
    assert np.isfinite(result["dev"]["clean"]["fusion (dev, in-sample)"]["cllr"])
