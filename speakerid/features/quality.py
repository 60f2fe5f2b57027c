"""Quality measures of a recording, for quality-aware score fusion.

A fusion with fixed weights must compromise between conditions: on clean speech the clean-trained systems are
best, in noise the multi-condition ones. Letting the weights depend on a measure of the test recording's quality
(the "quality measure function" idea of the NIST SRE fusions, e.g. Brümmer et al. 2007, Garcia-Romero et al.
2004) removes that compromise: the fusion learns ``llr = Σ_i (a_i + b_i·q) s_i + c`` on development trials.

The measure here is the *energy spread*: the difference in dB between the 95th and the 15th percentile of the
25-ms frame energies. Speech in silence spreads over 30 dB or more; in strong noise the quiet frames are filled
by the noise and the spread falls towards the signal-to-noise ratio.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t = np.arange(32000) / 16000
>>> speech = np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 2 * t) > 0)      # bursts and pauses
>>> clean = energy_spread_db(speech + 1e-4 * rng.standard_normal(t.size), 16000)
>>> noisy = energy_spread_db(speech + 0.1 * rng.standard_normal(t.size), 16000)
>>> bool(clean > 40 > 20 > noisy)
True
"""

from __future__ import annotations

import numpy as np

from speakerid.data.audio import load_audio
from speakerid.exceptions import ParameterError

__all__ = ["energy_spread_db", "file_energy_spread_db"]


def energy_spread_db(signal, sample_rate: int, low: float = 15.0, high: float = 95.0) -> float:
    """Spread in dB between the ``high`` and ``low`` percentiles of the 25-ms (10-ms hop) frame energies."""
    signal = np.asarray(signal, dtype=np.float64)
    length, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    if signal.ndim != 1 or length < 1 or signal.size < length:
        raise ParameterError(f"need a 1-D signal of at least one 25-ms frame, got shape {signal.shape}")
    if not 0.0 <= low < high <= 100.0:
        raise ParameterError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    frames = np.lib.stride_tricks.sliding_window_view(signal, length)[::max(hop, 1)]
    energy_db = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return float(np.percentile(energy_db, high) - np.percentile(energy_db, low))


def file_energy_spread_db(path) -> float:
    """:func:`energy_spread_db` of an audio file (at its own sample rate); AudioError for a bad file."""
    signal, rate = load_audio(path)
    return energy_spread_db(signal, rate)
