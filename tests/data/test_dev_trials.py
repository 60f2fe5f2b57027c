"""Development trials cut from held-out background speakers: the split, the conditions and their trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speakerid.data.dev_trials import MIN_DEV_SPEAKERS, build_dev_trials, conditions_for, split_speakers
from speakerid.exceptions import ParameterError


def test_split_is_seeded_disjoint_and_sized():
    speakers = [f"s{i:03d}" for i in range(223)]
    train, dev = split_speakers(speakers, 0.18, random_state=0)
    assert (len(train), len(dev)) == (183, 40) and not set(train) & set(dev)
    assert split_speakers(speakers, 0.18, random_state=0) == (train, dev)
    assert split_speakers(speakers, 0.18, random_state=1)[1] != dev
    assert len(split_speakers(speakers[:10], 0.1)[1]) == MIN_DEV_SPEAKERS      # at least 6 dev speakers
    with pytest.raises(ParameterError, match="at least 8"):
        split_speakers(speakers[:7])
    with pytest.raises(ParameterError):
        split_speakers(speakers, 1.0)


def test_conditions_follow_the_sample_rate():
    assert conditions_for(16000) == ("clean", "short", "noisy")
    assert conditions_for(8000) == ("clean", "short", "noisy", "tiny")


def test_build_writes_every_condition_with_one_target_per_test(tmp_path, rng):
    rows = []
    for k in range(3):
        path = tmp_path / f"in{k}.wav"
        t = np.arange(8 * 8000) / 8000
        sf.write(path, (0.3 * np.sin(2 * np.pi * (150 + 40 * k) * t) * (1 + rng.standard_normal(t.size) * 0.1)), 8000)
        rows.append((f"spk{k}", str(path)))
    paths = build_dev_trials(pd.DataFrame(rows, columns=["speaker", "path"]), tmp_path / "dev", 8000)
    assert set(paths) == {"clean", "short", "noisy", "tiny"}
    for enroll_csv, trials_csv in paths.values():
        enroll, trials = pd.read_csv(enroll_csv), pd.read_csv(trials_csv)
        n_tests = trials["path"].nunique()
        assert len(trials) == 3 * n_tests and trials["target"].sum() == n_tests        # every test x every claim
        assert set(enroll["speaker"]) == {"spk0", "spk1", "spk2"}
    assert pd.read_csv(paths["short"][1])["path"].nunique() == 6                     # two 2-s crops fit in 4 s
    assert pd.read_csv(paths["tiny"][0]).groupby("speaker").size().tolist() == [8, 8, 8]   # 4 s / 0.5 s
    short = sf.read(pd.read_csv(paths["short"][1])["path"].iloc[0])[0]
    assert len(short) == 2 * 8000
    # a crop the systems refuse is left out
    none = build_dev_trials(pd.DataFrame(rows, columns=["speaker", "path"]), tmp_path / "dev2", 8000,
                            usable=lambda signal: len(signal) > 8000)
    assert pd.read_csv(none["tiny"][1]).empty and pd.read_csv(none["short"][1])["path"].nunique() == 6
