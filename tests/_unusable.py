"""Background files the front end cannot use, one of each kind (tests of the trainers)."""

import numpy as np


def unusable_files(folder, rate=16000):
    """One of each kind of background file the front end cannot use."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(3 * rate) / rate
    made = {"silence.wav": np.zeros(3 * rate), "tone.wav": 0.3 * np.sin(2 * np.pi * 440 * t),
            "blip.wav": np.r_[np.zeros(rate), 0.3 * np.random.default_rng(0).standard_normal(rate // 20),
                              np.zeros(rate)]}
    for name, signal in made.items():
        sf.write(folder / name, signal, rate)
    (folder / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    return sorted(folder.glob("*.wav"))
