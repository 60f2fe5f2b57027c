"""Pictures of clips for the web pages: waveform over spectrogram, rendered in memory.

The scoring the pages show comes from :class:`~speakerid.verifier.SpeakerVerifier` (``verify``, ``identify``,
``speaker_turns``); this module only draws.
"""

from __future__ import annotations

import base64

import numpy as np
from matplotlib.figure import Figure
from scipy.signal import spectrogram

from speakerid.evaluation.plots import figure_bytes

__all__ = ["clip_image_data_uri"]


def clip_image_data_uri(signal: np.ndarray, sample_rate: int, title: str = "") -> str:
    """A small PNG (waveform over spectrogram) of a clip, as a ``data:image/png;base64,...`` URI.

    Rendered in memory with matplotlib's Agg canvas (no pyplot state, nothing written to disk).
    """
    fig = Figure(figsize=(7.2, 3.0), layout="constrained")
    wave_ax, spec_ax = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2))
    seconds = len(signal) / sample_rate
    times, low, high = _envelope(signal, sample_rate)
    wave_ax.fill_between(times, low, high, color="#2b6cb0", linewidth=0.5)
    peak = 1.05 * max(1e-6, float(np.max(np.abs(signal))))
    wave_ax.set_ylim(-peak, peak)
    wave_ax.set_yticks([])
    wave_ax.set_title(title, fontsize="small", loc="left")
    n_fft = min(512 if sample_rate >= 16000 else 256, len(signal))
    hop = max(n_fft // 4, len(signal) // 1500)  # at most ~1500 columns, however long the clip
    _, _, power = spectrogram(signal.astype(np.float64), fs=sample_rate, nperseg=n_fft,
                              noverlap=max(0, n_fft - hop), detrend=False)
    # Decibels with an 80 dB range under the peak (digital silence has zero power: no log of 0).
    decibels = 10.0 * np.log10(np.maximum(power, 1e-20))
    peak_db = float(decibels.max())
    spec_ax.imshow(decibels, origin="lower", aspect="auto", cmap="magma", vmin=peak_db - 80.0, vmax=peak_db,
                   extent=(0.0, seconds, 0.0, sample_rate / 2), interpolation="nearest")
    spec_ax.set_xlim(0, seconds)
    spec_ax.set_xlabel("time (s)", fontsize="small")
    spec_ax.set_ylabel("Hz", fontsize="small")
    spec_ax.tick_params(labelsize="x-small")
    png = figure_bytes(fig, "png", dpi=80)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _envelope(signal: np.ndarray, sample_rate: int, n_points: int = 1200):
    """Min/max envelope of a waveform in ``n_points`` columns (draws long clips quickly and faithfully)."""
    per = max(1, len(signal) // n_points)
    usable = (len(signal) // per) * per
    blocks = signal[:usable].reshape(-1, per)
    times = (np.arange(blocks.shape[0]) * per + per / 2) / sample_rate
    return times, blocks.min(axis=1), blocks.max(axis=1)
