"""Development trials cut from held-out background speakers: what ``speakerid train`` learns its fusion on.

The background speakers are split (seeded) into training speakers (every background model) and development
speakers, none of whom any model has seen. Each development speaker's audio, read at the model's sample rate and
joined, is cut in two halves: the first half is the enrollment, the second half gives the tests of every
condition a user meets:

``clean``  the whole second half (capped at :data:`MAX_TEST_S`);
``short``  three 2-s crops of it;
``noisy``  the same crops with pink noise at 5 dB SNR (:func:`speakerid.data.augment.add_noise`);
``tiny``   only for models at 8 kHz or below (digits, telephone snippets): enrollment on ten 0.5-s crops of the
           first half, tests are six 0.5-s crops of the second half.

Every test is tried against every development speaker (one target trial per test). Crops that fall in a pause
(peak under the loader's level floor) are skipped. The recipe is ``bench/dev_protocol.py``'s, moved here so that
the product and the benchmark use the same one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.data.audio import MIN_LEVEL_DBFS, load_audio
from speakerid.data.augment import add_noise
from speakerid.exceptions import ParameterError

pd = lazy_import("pandas")
sf = lazy_import("soundfile")

__all__ = ["DEV_SHARE", "MIN_DEV_SPEAKERS", "split_speakers", "conditions_for", "build_dev_trials", "has_sound"]

#: Share of the background speakers held out for development (223 shared background speakers: 40 dev).
DEV_SHARE = 0.18
#: Fewest development speakers (the enrolled-speaker T-norm needs 6 enrolled speakers).
MIN_DEV_SPEAKERS = 6
#: Longest clean test and enrollment, seconds (long background files would only slow the dev scoring down).
MAX_TEST_S = 30.0
SHORT_S, N_SHORT, NOISY_SNR_DB = 2.0, 3, 5.0
TINY_S, N_TINY_ENROLL, N_TINY_TEST = 0.5, 10, 6


def split_speakers(speakers, dev_share: float = DEV_SHARE, random_state: int = 0,
                   candidates=None) -> tuple[list, list]:
    """``(train, dev)`` speaker lists: a seeded draw of ``round(dev_share * n)`` (at least
    :data:`MIN_DEV_SPEAKERS`) development speakers; :class:`ParameterError` when fewer than 2 would train.

    ``candidates`` (optional): the speakers development speakers should come from (``speakerid train``: those
    with several recordings, so that target trials pair different recordings); used when at least
    :data:`MIN_DEV_SPEAKERS` of them are among ``speakers``, and then at most all of them are drawn.

    >>> train, dev = split_speakers([f"s{i}" for i in range(20)], 0.3)
    >>> len(train), len(dev), set(train) & set(dev)
    (14, 6, set())
    >>> split_speakers([f"s{i}" for i in range(20)], 0.3, candidates=[f"s{i}" for i in range(12, 20)])[1]
    ['s12', 's13', 's14', 's15', 's16', 's18']
    """
    speakers = sorted(set(map(str, speakers)))
    if not 0.0 < float(dev_share) < 1.0:
        raise ParameterError(f"dev_share must be strictly between 0 and 1, got {dev_share}")
    n_dev = max(MIN_DEV_SPEAKERS, int(round(dev_share * len(speakers))))
    if len(speakers) - n_dev < 2:
        raise ParameterError(f"{len(speakers)} background speakers: need at least {MIN_DEV_SPEAKERS + 2} (at least "
                             f"{MIN_DEV_SPEAKERS} held out for development, 2 to train on)")
    pool = speakers
    if candidates is not None:
        chosen = sorted(set(map(str, candidates)) & set(speakers))
        if len(chosen) >= MIN_DEV_SPEAKERS:
            pool, n_dev = chosen, min(n_dev, len(chosen))
    dev = sorted(np.random.default_rng(random_state).choice(pool, size=n_dev, replace=False).tolist())
    return sorted(set(speakers) - set(dev)), dev


def conditions_for(sample_rate: int) -> tuple[str, ...]:
    """The development conditions of a model at ``sample_rate`` Hz."""
    return ("clean", "short", "noisy") + (("tiny",) if sample_rate <= 8000 else ())


def _crops(n_samples: int, length: int, count: int) -> list[int]:
    """Start offsets of ``count`` evenly spaced crops of ``length`` samples inside ``n_samples`` (fewer if short)."""
    if n_samples < length:
        return []
    count = min(count, n_samples // length)
    return [int(s) for s in np.linspace(0, n_samples - length, count).round()]


def has_sound(crop: np.ndarray, usable=None) -> bool:
    """Whether a crop has sound (its peak reaches the loader's level floor + 1 dB: a pause would be refused as too
    quiet) and ``usable(crop)`` agrees, when given."""
    if usable is not None and not usable(crop):
        return False
    peak = float(np.max(np.abs(crop - crop.mean()))) if crop.size else 0.0
    return peak > 0 and 20 * np.log10(peak) >= MIN_LEVEL_DBFS + 1.0


def build_dev_trials(dev_manifest, out_dir, sample_rate: int, random_state: int = 0, usable=None) -> dict:
    """Write the development audio (PCM-16 WAV) and manifests under ``out_dir``.

    Parameters
    ----------
    dev_manifest : pandas.DataFrame
        ``speaker,path`` rows of the development speakers (absolute paths).
    out_dir : path
    sample_rate : int
        The model's rate, Hz: audio is read (resampled) at it.
    random_state : int
        Seeds the added noise.
    usable : callable, optional
        ``usable(signal) -> bool``: whether a crop has enough speech for every system (``speakerid train`` asks
        the systems' front ends); crops it refuses are left out. Default: every crop with sound.

    Returns
    -------
    dict
        ``{condition: (enroll_csv, trials_csv)}`` for :func:`conditions_for` ``(sample_rate)``; the trials have
        ``speaker,path,target`` columns and absolute paths.
    """
    out = Path(out_dir).resolve()
    rng = np.random.default_rng(random_state)
    conditions = conditions_for(sample_rate)
    enroll = {c: [] for c in conditions}
    tests = {c: [] for c in conditions}
    speakers = sorted(dev_manifest["speaker"].astype(str).unique())
    max_len = int(2 * MAX_TEST_S * sample_rate)
    for k, speaker in enumerate(speakers):
        paths = dev_manifest.loc[dev_manifest["speaker"].astype(str) == speaker, "path"]
        signal = np.concatenate([load_audio(p, sample_rate)[0] for p in paths])[:max_len]
        half = signal.size // 2
        first, second = signal[:half], signal[half:]
        base = out / "wav" / f"{k:04d}_{_safe(speaker)}"
        base.mkdir(parents=True, exist_ok=True)
        _write(base / "enroll.wav", first, sample_rate)
        _write(base / "test_full.wav", second, sample_rate)
        for cond in ("clean", "short", "noisy"):
            enroll[cond].append((speaker, base / "enroll.wav"))
        tests["clean"].append((speaker, base / "test_full.wav"))
        length = int(SHORT_S * sample_rate)
        for i, start in enumerate(_crops(second.size, length, N_SHORT)):
            crop = second[start:start + length]
            if not has_sound(crop, usable):
                continue
            _write(base / f"test_short_{i}.wav", crop, sample_rate)
            tests["short"].append((speaker, base / f"test_short_{i}.wav"))
            _write(base / f"test_noisy_{i}.wav", add_noise(crop, NOISY_SNR_DB, rng, "pink", sample_rate), sample_rate)
            tests["noisy"].append((speaker, base / f"test_noisy_{i}.wav"))
        if "tiny" in conditions:
            length = int(TINY_S * sample_rate)
            for kind, part, count, rows in (("enroll", first, N_TINY_ENROLL, enroll["tiny"]),
                                            ("test", second, N_TINY_TEST, tests["tiny"])):
                for i, start in enumerate(_crops(part.size, length, count)):
                    if has_sound(part[start:start + length], usable):
                        _write(base / f"{kind}_tiny_{i}.wav", part[start:start + length], sample_rate)
                        rows.append((speaker, base / f"{kind}_tiny_{i}.wav"))
    paths = {}
    for cond in conditions:
        enroll_csv, trials_csv = out / f"dev-{cond}-enroll.csv", out / f"dev-{cond}-trials.csv"
        pd.DataFrame([(s, str(p)) for s, p in enroll[cond]], columns=["speaker", "path"]).to_csv(enroll_csv,
                                                                                                 index=False)
        rows = [(claim, str(p), int(claim == true)) for true, p in tests[cond] for claim in speakers]
        pd.DataFrame(rows, columns=["speaker", "path", "target"]).to_csv(trials_csv, index=False)
        paths[cond] = (enroll_csv, trials_csv)
    return paths


def _safe(speaker: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in speaker) or "_"


def _write(path: Path, signal: np.ndarray, rate: int) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    sf.write(str(tmp), signal, rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
