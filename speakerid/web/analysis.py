"""What the Identify page shows beyond ``SpeakerVerifier.identify``: 2-s segment scores and a picture of the clip.

Segmentation: the clip (at the model's analysis rate) is cut into consecutive, non-overlapping 2-s pieces; a last
piece shorter than 1 s is joined to the one before it (so a clip shorter than 3 s is a single piece).
Each piece is treated as an utterance of its own: features under the model directory's configuration (its own
energy VAD and CMVN), then :meth:`SpeakerVerifier.score_frames` against every enrolled speaker. A 2-s piece is 200
frames at a 10 ms shift before VAD. A piece with no signal (all samples below 1e-6) is reported as silent.
"""

from __future__ import annotations

import base64

import numpy as np
from matplotlib.figure import Figure
from scipy.signal import spectrogram

from speakerid.evaluation.plots import figure_bytes
from speakerid.exceptions import AudioError
from speakerid.features import extract

__all__ = ["SEGMENT_S", "split_segments", "segment_scores", "clip_image_data_uri"]

#: Length of one segment of the per-segment table, in seconds.
SEGMENT_S = 2.0
_MIN_LAST_S = 1.0
_SILENCE_PEAK = 1e-6


def split_segments(n_samples: int, sample_rate: int, segment_s: float = SEGMENT_S,
                   min_last_s: float = _MIN_LAST_S) -> list[tuple[int, int]]:
    """``(start, stop)`` sample bounds of consecutive segments; a short last piece joins the one before.

    Examples
    --------
    >>> split_segments(16000 * 5, 16000)            # 5 s: 2 + 3 (the last 1 s piece is kept: >= 1 s)
    [(0, 32000), (32000, 64000), (64000, 80000)]
    >>> split_segments(16000 * 4 + 8000, 16000)     # 4.5 s: the 0.5 s tail joins the second piece
    [(0, 32000), (32000, 72000)]
    >>> split_segments(8000, 16000)                  # shorter than one segment: one piece
    [(0, 8000)]
    """
    step = int(round(segment_s * sample_rate))
    bounds = [(start, min(start + step, n_samples)) for start in range(0, n_samples, step)]
    if len(bounds) > 1 and (bounds[-1][1] - bounds[-1][0]) < min_last_s * sample_rate:
        tail = bounds.pop()
        bounds[-1] = (bounds[-1][0], tail[1])
    return bounds


def segment_scores(verifier, signal: np.ndarray, sample_rate: int, speakers=None, threshold=None) -> list[dict]:
    """Per 2-s segment of ``signal``: its best enrolled speaker and score (``"unknown"`` below the threshold).

    Returns one dict per segment with ``index``, ``start_s``, ``end_s``, ``best``, ``score`` (``None`` when the
    segment could not be scored), ``speaker`` (the highest-scoring id even when below the threshold) and
    ``note`` (why a segment has no score). ``threshold`` defaults to the verifier's.
    """
    speakers = list(verifier.speakers() if speakers is None else speakers)
    threshold = verifier.threshold if threshold is None else float(threshold)
    config = verifier.feature_config
    rows = []
    for index, (start, stop) in enumerate(split_segments(len(signal), sample_rate)):
        piece = signal[start:stop]
        row = {"index": index + 1, "start_s": round(start / sample_rate, 2), "end_s": round(stop / sample_rate, 2),
               "best": "unknown", "speaker": None, "score": None, "note": ""}
        if float(np.max(np.abs(piece))) < _SILENCE_PEAK:
            row["note"] = "silent"
        else:
            try:
                frames = extract(piece, config)
            except AudioError as exc:
                row["note"] = str(exc)
            else:
                scores = verifier.score_frames(speakers, frames)
                top = int(np.argmax(scores))
                row.update(speaker=speakers[top], score=float(scores[top]),
                           best=speakers[top] if scores[top] >= threshold else "unknown")
        rows.append(row)
    return rows


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
