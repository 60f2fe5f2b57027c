"""The effective bandwidth of a recording, measured from the signal whatever its header says.

A telephone call, a meeting tool or a telephony archive hands users speech band-limited to about 300-3400 Hz,
often resampled to 16 kHz: the file's rate says "wideband", the signal does not. A model trained on wideband
speech loses much of its accuracy on such audio (on the development suite's ``telephone-16k`` condition the EER of
the 16-kHz default rose from 2.9 % to 18.8 %), so every path measures the band the signal actually fills.

The measure (after Hermansky-style long-term spectra; the threshold chosen on the shared corpora, see below):

1. the 25-ms frames (10-ms hop) of the louder half of the signal (speech rather than pauses; at most 6000 of
   them, evenly spaced), Hann window, their power spectrum averaged per frequency without the top tenth of the
   frames (a click or the transient of a DC step fills the whole band in a frame or two);
2. the reference level: the mean power between 300 and 3000 Hz (the band every telephone channel keeps);
3. the spectrum in dB relative to it, smoothed over 250-Hz bands;
4. the effective bandwidth is the highest frequency (below 97 % of the Nyquist frequency) whose smoothed level is
   within :data:`EDGE_DROP_DB` of the reference *and* above the rounding noise of 16-bit audio
   (:data:`FLOOR_DB_PER_HZ`): a quiet telephone recording written as 16-bit PCM at 16 kHz holds nothing above
   3.4 kHz but that noise, only about 50 dB below its speech.

A signal is *narrowband* when its effective bandwidth is below :data:`NARROWBAND_EDGE_HZ` (a file recorded at
10 kHz or less is narrowband by its rate, whatever the measure says). Measured on the shared data (300 files a set,
or all there are): the telephone-16k files of the development suite (300-3400 Hz, mu-law at 8 kHz, back at 16
kHz) reach 3.50-3.59 kHz; FSDD's 8-kHz digits resampled to 16 kHz 3.8-4.75 kHz (the resampler's transition band);
the LibriSpeech background 6.2-7.75 kHz; speechocean762 4.3-7.75 kHz (5 of 300 files below 5 kHz), Speech Commands
3.75-7.75 kHz (10 of 300 below 5 kHz: some of its browsers recorded at 8 kHz), reverberant copies 4.1-7.75 kHz,
0-dB-noise and music copies 5.6-7.75 kHz. The synthetic voices of ``speakerid synth`` reach 4.6-7.6 kHz, hence
4.5 kHz rather than 5: the wideband files below it have next to nothing above it, so treating them as narrowband
loses nothing.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> wide = rng.standard_normal(16000)
>>> from scipy.signal import butter, sosfiltfilt
>>> narrow = sosfiltfilt(butter(10, [300, 3400], btype="bandpass", fs=16000, output="sos"), wide)
>>> round(effective_bandwidth_hz(wide, 16000)), round(effective_bandwidth_hz(narrow, 16000), -2) < NARROWBAND_EDGE_HZ
(7750, True)
"""

from __future__ import annotations

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["EDGE_DROP_DB", "FLOOR_DB_PER_HZ", "NARROWBAND_EDGE_HZ", "effective_bandwidth_hz", "is_narrowband"]

#: How far below the 300-3000 Hz level the spectrum may fall and still count as filled, dB.
EDGE_DROP_DB = 55.0
#: Spectral density (dB full scale per Hz) that counts as empty: -85 dBFS over a 2.7-kHz band, a few dB above the
#: rounding noise of 16-bit samples (about -101 dBFS over the whole band of a 16-kHz file).
FLOOR_DB_PER_HZ = -85.0 - 10.0 * np.log10(2700.0)
#: Below this effective bandwidth a signal is narrowband (telephone-band), Hz.
NARROWBAND_EDGE_HZ = 4500.0
_REFERENCE_HZ = (300.0, 3000.0)
_SMOOTH_HZ = 250.0
#: At most this many frames (evenly spaced among the louder half) enter the spectrum: 60 s of speech.
_MAX_FRAMES = 6000


def effective_bandwidth_hz(signal, sample_rate: int) -> float:
    """The highest frequency the signal fills, in Hz (the module's measure).

    Parameters
    ----------
    signal : array-like, shape (n_samples,)
        Mono audio (a DC offset is removed first).
    sample_rate : int
        Hz, at least 8000.

    Returns
    -------
    float
        Hz, between 0 and 97 % of the Nyquist frequency; 0.0 for silence.

    Raises
    ------
    ParameterError
        A signal that is not 1-D or shorter than one 25-ms frame, or a rate below 8000 Hz.
    """
    x = np.asarray(signal, dtype=np.float64)
    if int(sample_rate) < 8000:
        raise ParameterError(f"sample_rate must be >= 8000 Hz to measure a bandwidth, got {sample_rate}")
    rate = int(sample_rate)
    length, hop = int(0.025 * rate), int(0.010 * rate)
    if x.ndim != 1 or x.size < length:
        raise ParameterError(f"need a 1-D signal of at least one 25-ms frame, got shape {x.shape}")
    return _edge_hz(x - x.mean(), rate, length, hop)


def _edge_hz(x: np.ndarray, rate: int, length: int, hop: int) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
    energy = np.einsum("ij,ij->i", frames, frames)
    loud = np.flatnonzero(energy >= np.median(energy))
    loud = loud[np.linspace(0, len(loud) - 1, min(len(loud), _MAX_FRAMES)).astype(int)]   # bounded memory
    n_fft = 1 << (length - 1).bit_length()
    spectra = np.abs(np.fft.rfft(frames[loud] * np.hanning(length), n_fft)) ** 2
    # per frequency, the mean without the top tenth of the frames: a click or a DC step's transient fills the
    # whole band in one or two frames and must not decide the bandwidth; fricatives (a larger share) do count
    spectra.sort(axis=0)
    power = spectra[: max(1, int(np.ceil(0.9 * len(spectra))))].mean(axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    band = (freqs >= _REFERENCE_HZ[0]) & (freqs <= _REFERENCE_HZ[1])
    reference = power[band].mean()
    if not reference > 0.0:
        return 0.0
    width = max(1, int(round(_SMOOTH_HZ / freqs[1])))
    kernel = np.ones(width) / width
    relative = np.convolve(10.0 * np.log10(power / reference + 1e-30), kernel, mode="same")
    # the same spectrum as a density in dB full scale per Hz (Parseval with the window's energy)
    density = 2.0 * power / (np.sum(np.hanning(length) ** 2) * n_fft * freqs[1])
    absolute = np.convolve(10.0 * np.log10(density + 1e-30), kernel, mode="same")
    filled = np.flatnonzero((relative >= -EDGE_DROP_DB) & (absolute >= FLOOR_DB_PER_HZ)
                            & (freqs <= 0.97 * rate / 2))
    return float(freqs[filled[-1]]) if filled.size else 0.0


def is_narrowband(bandwidth_hz: float) -> bool:
    """Whether an effective bandwidth (Hz) is telephone-band: below :data:`NARROWBAND_EDGE_HZ`."""
    return float(bandwidth_hz) < NARROWBAND_EDGE_HZ
