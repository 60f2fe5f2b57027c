"""Benchmark: MFCC front-end speed of speakerid against python_speech_features (and librosa when installed).

    python bench/bench_features.py [--minutes 10] [--repeat 3]

What is timed, on the same audio (synthetic speech at 16 kHz from :mod:`speakerid.data.synth`, ``--minutes`` long,
made of 30-s utterances by different voices) -- the pure front end, MFCC(20) + delta + delta-delta, no VAD and
no CMVN:

* ``speakerid``      -- ``extract(x, FeatureConfig(n_ceps=20, n_mels=26, delta_order=2, vad="none",
  cmvn="none"))``: Hamming window, float32 (the default mode);
* ``speakerid_psf``  -- the same with ``psf_compat=True`` (python_speech_features' numbers, float64);
* ``psf``            -- ``python_speech_features.mfcc(x, 16000, numcep=20, nfilt=26)`` and ``delta(., 2)`` twice;
* ``librosa``        -- ``librosa.feature.mfcc(y=x, sr=16000, n_mfcc=20, n_fft=512, win_length=400,
  hop_length=160, n_mels=26)`` and ``librosa.feature.delta`` of order 1 and 2 (after a warm-up call).

Each is run ``--repeat`` times and the best wall-clock time is kept. The last line printed is one JSON object with
the figures; ``ratio`` is speakerid's (default mode) speed-up over python_speech_features.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import python_speech_features as psf

try:
    import speakerid  # noqa: F401
except ModuleNotFoundError:  # a checkout that is not installed: use the package beside bench/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speakerid.data.synth import make_speaker, synthesize_utterance
from speakerid.features import FeatureConfig, extract  # noqa: E402

SAMPLE_RATE = 16000
SEGMENT_S = 30.0
TARGET_RATIO = 4.0


def make_audio(minutes: float, seed: int = 0) -> np.ndarray:
    """``minutes`` of synthetic speech at 16 kHz, float32: 30-s utterances by 8 voices through random channels."""
    rng = np.random.default_rng(seed)
    n_samples = int(round(minutes * 60 * SAMPLE_RATE))
    pieces, total, index = [], 0, 0
    while total < n_samples:
        seconds = min(SEGMENT_S, max(0.75, (n_samples - total) / SAMPLE_RATE))
        piece = synthesize_utterance(make_speaker(index % 8), rng, seconds, SAMPLE_RATE)
        pieces.append(piece)
        total += len(piece)
        index += 1
    return np.ascontiguousarray(np.concatenate(pieces)[:n_samples], dtype=np.float32)


def best_time(func, repeat: int):
    """(best seconds over ``repeat`` runs, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_psf(x):
    static = psf.mfcc(x, SAMPLE_RATE, numcep=20, nfilt=26)
    d1 = psf.delta(static, 2)
    return np.hstack([static, d1, psf.delta(d1, 2)])


def librosa_runner():
    try:
        import librosa
    except ImportError:
        return None, None

    def run(x):
        static = librosa.feature.mfcc(y=x, sr=SAMPLE_RATE, n_mfcc=20, n_fft=512, win_length=400, hop_length=160,
                                      n_mels=26)
        return np.vstack([static, librosa.feature.delta(static, order=1), librosa.feature.delta(static, order=2)]).T

    return run, librosa.__version__


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="audio length (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic audio")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.repeat < 1:
        parser.error("--minutes must be > 0 and --repeat >= 1")

    start = time.perf_counter()
    x = make_audio(args.minutes, args.seed)
    audio_s = len(x) / SAMPLE_RATE
    print(f"audio: {audio_s:.0f} s of synthetic speech at {SAMPLE_RATE} Hz, float32 "
          f"(made in {time.perf_counter() - start:.1f} s); {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print("front end: MFCC(20), 26 mel filters, 25/10 ms frames, n_fft 512, + delta + delta-delta; "
          "no VAD, no CMVN")

    config = FeatureConfig(n_ceps=20, n_mels=26, delta_order=2, vad="none", cmvn="none")
    config_psf = config.replace(psf_compat=True)
    warm = x[: 2 * SAMPLE_RATE]
    extract(warm, config), extract(warm, config_psf), run_psf(warm)  # build caches, import lazily-loaded bits

    times, outputs = {}, {}
    times["speakerid"], outputs["speakerid"] = best_time(lambda: extract(x, config), args.repeat)
    times["speakerid_psf"], outputs["speakerid_psf"] = best_time(lambda: extract(x, config_psf), args.repeat)
    times["psf"], outputs["psf"] = best_time(lambda: run_psf(x), args.repeat)
    run_librosa, librosa_version = librosa_runner()
    if run_librosa is not None:
        run_librosa(warm)
        times["librosa"], outputs["librosa"] = best_time(lambda: run_librosa(x), args.repeat)

    # sanity: psf mode must reproduce python_speech_features
    ours, ref = outputs["speakerid_psf"], outputs["psf"]
    scale = np.maximum(np.abs(ref), np.abs(ref).max(axis=0) * 1e-3)
    psf_max_rel = float(np.max(np.abs(ours - ref) / scale))

    print(f"\n{'implementation':<34} {'frames x dims':>14} {'best s':>8} {'x real time':>12} {'vs psf':>8}")
    labels = {"speakerid": "speakerid (default mode)", "speakerid_psf": "speakerid (psf_compat)",
              "psf": "python_speech_features", "librosa": f"librosa {librosa_version}"}
    for key, seconds in times.items():
        shape = "x".join(str(n) for n in outputs[key].shape)
        print(f"{labels[key]:<34} {shape:>14} {seconds:8.3f} {audio_s / seconds:12.0f} "
              f"{times['psf'] / seconds:7.2f}x")
    ratio = times["psf"] / times["speakerid"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"\npsf_compat output vs python_speech_features: max relative difference {psf_max_rel:.2e}")
    print(f"target: speakerid >= {TARGET_RATIO:g}x python_speech_features -> {ratio:.2f}x, {verdict}")

    result = {
        "bench": "features",
        "audio_s": round(audio_s, 1),
        "repeat": args.repeat,
        "speakerid_s": round(times["speakerid"], 4),
        "speakerid_psf_s": round(times["speakerid_psf"], 4),
        "psf_s": round(times["psf"], 4),
        "librosa_s": round(times["librosa"], 4) if "librosa" in times else None,
        "ratio": round(ratio, 2),
        "ratio_psf_mode": round(times["psf"] / times["speakerid_psf"], 2),
        "ratio_librosa": round(times["librosa"] / times["speakerid"], 2) if "librosa" in times else None,
        "psf_compat_max_rel_diff": float(f"{psf_max_rel:.3g}"),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
