"""Synthetic recordings for the degradation and augmentation tests: speech-like syllables, coloured noise, music,
room impulse responses, and a noise list of every kind (``write_bank_csv``)."""

from __future__ import annotations

import csv

import numpy as np
import soundfile as sf

RATE = 16000


def speech_like(seed: int, seconds: float = 3.0, rate: int = RATE, voiced: float = 0.6, floor_db=None,
                level: float = 0.1) -> np.ndarray:
    """Syllables of 80-300 ms (harmonics of a gliding f0, or noise bursts) separated by 100-400 ms pauses (silent,
    or at ``floor_db`` below the syllables), peak ``level``: a third to a half of the signal is pause."""
    rng = np.random.default_rng(seed)
    n, start, out = int(seconds * rate), 0, np.zeros(int(seconds * rate))
    while start < n:
        length = min(int(rng.uniform(0.08, 0.3) * rate), n - start)
        if rng.random() < voiced:
            f0 = rng.uniform(90.0, 250.0) * np.linspace(1.0, rng.uniform(0.8, 1.25), length)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            segment = sum(np.sin(k * phase) / k for k in range(1, 13))
        else:
            segment = rng.standard_normal(length)
        out[start:start + length] = np.hanning(length) * segment * rng.uniform(0.3, 1.0)
        start += length + int(rng.uniform(0.1, 0.4) * rate)
    if floor_db is not None:
        out += 10 ** (floor_db / 20) * np.sqrt(np.mean(out ** 2)) * rng.standard_normal(n)
    return (level * out / np.max(np.abs(out))).astype(np.float32)


def coloured(seed: int, seconds: float, rate: int, exponent: float) -> np.ndarray:
    """Gaussian noise with a 1/f**exponent power spectrum, peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n)) * np.maximum(np.fft.rfftfreq(n, 1 / rate), 20.0) ** (-exponent / 2)
    noise = np.fft.irfft(spectrum, n)
    return 0.5 * noise / np.max(np.abs(noise))


def music_like(seed: int, seconds: float, rate: int) -> np.ndarray:
    """Chords of a few tones changing every 0.25-0.5 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out, start = np.zeros(t.size), 0.0
    while start < seconds:
        stop = start + rng.uniform(0.25, 0.5)
        part = (t >= start) & (t < stop)
        for f in rng.uniform(110.0, 1800.0, 3):
            out[part] += np.sin(2 * np.pi * f * t[part])
        start = stop
    return 0.5 * out / np.max(np.abs(out))


def synthetic_rir(rate: int, predelay_s: float, rt60_s: float = 0.4, seed: int = 0) -> np.ndarray:
    """A real-like RIR: silence, the direct path (the peak), sparse early reflections, an exponential tail."""
    rng = np.random.default_rng(seed)
    n = int((predelay_s + 1.2 * rt60_s) * rate)
    h, direct = np.zeros(n), int(predelay_s * rate)
    h[direct] = 1.0
    for delay_ms, amplitude in zip(rng.uniform(2.0, 25.0, 6), rng.uniform(0.2, 0.6, 6)):
        h[direct + int(delay_ms * rate / 1000)] += amplitude * rng.choice([-1.0, 1.0])
    tail = np.arange(n - direct - int(0.002 * rate))
    h[n - tail.size:] += 0.08 * rng.standard_normal(tail.size) * 10 ** (-3 * tail / rate / rt60_s)
    return 0.9 * h / np.max(np.abs(h))


def write(path, signal, rate, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), signal, rate, subtype=subtype)
    return path


def write_bank_csv(root):
    """A noise list with every kind under ``root``: noise at 16 and 44.1 kHz and a 0.3 s one (looped), music, three
    talkers, RIRs at 44.1 and 48 kHz. Paths are relative to the list's folder, one of them through ``..``."""
    rows = [("noise", write(root / "noise" / "pink.wav", coloured(1, 4.0, 16000, 1.0), 16000), "CC0"),
            ("noise", write(root / "noise" / "brown44.flac", coloured(2, 3.0, 44100, 2.0), 44100), "CC0"),
            ("noise", write(root / "noise" / "short.wav", coloured(3, 0.3, 16000, 0.0), 16000), "CC0"),
            ("music", write(root / "music" / "chords.wav", music_like(4, 5.0, 22050), 22050), "CC BY 4.0"),
            ("rir", write(root / "rir" / "hall44.wav", synthetic_rir(44100, 0.02), 44100, "FLOAT"), "CC0"),
            ("rir", write(root / "rir" / "room48.wav", synthetic_rir(48000, 0.035, 0.3, 1), 48000, "FLOAT"), "CC0")]
    rows += [("speech", write(root / "talkers" / f"t{i}.wav", speech_like(10 + i, 4.0), 16000), "synthetic")
             for i in range(3)]
    lists = root / "lists"
    lists.mkdir()
    with open(lists / "noise.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "path", "licence"])
        writer.writerows([kind, f"../{path.relative_to(root).as_posix()}", licence] for kind, path, licence in rows)
    return lists / "noise.csv"
