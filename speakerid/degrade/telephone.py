"""A telephone channel: the 300-3400 Hz band, 8 kHz sampling and a narrowband codec, round trip.

The band is the PCM channel's of ITU-T G.712, filtered on both sides of the codec as a network does; the codecs are
those libsndfile encodes in a WAV file, run in memory: ITU-T G.711 mu-law and A-law (64 kbit/s companded PCM) and
ETSI GSM 06.10 full-rate (ETS 300 961, RPE-LTP at 13 kbit/s).

>>> t = np.arange(16000) / 16000
>>> out, rate, record = telephone(0.3 * np.sin(2 * np.pi * 1000 * t), 16000, "alaw")
>>> out.shape, rate, record["codec"]
((8000,), 8000, 'alaw')
"""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile as sf

from speakerid._utils.lazy import lazy_import
from speakerid.data.audio import resample
from speakerid.exceptions import ParameterError

scipy_signal = lazy_import("scipy.signal")

__all__ = ["telephone", "band_limit", "codec_round_trip", "CODECS", "TELEPHONE_BAND_HZ", "FILTER_EDGES_HZ",
           "NARROWBAND_RATE", "WIDEBAND_RATE"]

#: Codec name -> libsndfile WAV subtype.
CODECS = {"ulaw": "ULAW", "alaw": "ALAW", "gsm": "GSM610"}
#: Pass band of the channel (Hz), ITU-T G.712: the whole channel is 3 dB down at these edges.
TELEPHONE_BAND_HZ = (300.0, 3400.0)
#: Edges (Hz) of each of the two band-pass filters, a little wider than the band: with both filters, each run
#: forwards and backwards, the channel is 3 dB down at 300 and 3400 Hz, flat within 0.2 dB over 350-3300 Hz and
#: over 90 dB down at 3.6 kHz (at 8 kHz the bilinear transform steepens the upper edge).
FILTER_EDGES_HZ = (270.0, 3450.0)
#: Rate of the codecs (Hz) and of the ``telephone`` output.
NARROWBAND_RATE = 8000
#: Rate of the ``telephone-16k`` output (Hz): narrowband audio in a wideband file.
WIDEBAND_RATE = 16000
#: Order of the Butterworth band-pass (run forwards and backwards: zero phase, twice the attenuation in dB).
BAND_ORDER = 8
#: Largest sample value fed to a codec: louder input is scaled down first (the codecs saturate at full scale).
CODEC_PEAK = 0.99


def band_limit(signal, sample_rate: int, edges_hz=FILTER_EDGES_HZ) -> np.ndarray:
    """``signal`` through a zero-phase Butterworth band-pass with -3 dB points ``edges_hz`` (Hz), as float64.

    Order :data:`BAND_ORDER`, forwards and backwards (:func:`scipy.signal.sosfiltfilt`): no delay, -6 dB at the
    edges.

    Examples
    --------
    >>> t = np.arange(8000) / 8000
    >>> tones = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 3800 * t)
    >>> kept = band_limit(tones, 8000)[2000:6000]
    >>> round(float(np.sqrt(2 * np.mean(kept ** 2))), 2)     # the 1 kHz tone alone remains
    1.0
    """
    signal = np.asarray(signal, dtype=np.float64)
    low, high = (float(f) for f in edges_hz)
    if not 0.0 < low < high < sample_rate / 2.0:
        raise ParameterError(f"edges_hz must satisfy 0 < low < high < {sample_rate / 2:g} Hz, got {edges_hz}")
    sos = scipy_signal.butter(BAND_ORDER, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), signal.size - 1)
    return scipy_signal.sosfiltfilt(sos, signal, padlen=max(padlen, 0))


def codec_round_trip(signal, codec: str = "ulaw") -> np.ndarray:
    """``signal`` (8 kHz, within [-1, 1]) encoded and decoded by ``codec`` through libsndfile, in memory.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
        At :data:`NARROWBAND_RATE`.
    codec : {"ulaw", "alaw", "gsm"}

    Returns
    -------
    numpy.ndarray of float64, shape (n_samples,)
        GSM 06.10 codes 160-sample frames; the padding of the last frame is cut off.
    """
    if codec not in CODECS:
        raise ParameterError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    signal = np.asarray(signal, dtype=np.float64)
    buffer = io.BytesIO()
    sf.write(buffer, signal, NARROWBAND_RATE, subtype=CODECS[codec], format="WAV")
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float64")
    out = np.zeros(signal.size)
    out[:min(signal.size, decoded.size)] = decoded[:signal.size]
    return out


def telephone(signal, sample_rate: int, codec: str = "ulaw", *, wideband: bool = False):
    """``signal`` through a telephone channel: band-limited, at 8 kHz, through ``codec`` and band-limited again.

    Steps: resample to :data:`NARROWBAND_RATE` (polyphase, :func:`speakerid.data.audio.resample`), band-pass
    :data:`TELEPHONE_BAND_HZ` (:func:`band_limit` with :data:`FILTER_EDGES_HZ`), scale down to a :data:`CODEC_PEAK` peak if louder, the codec
    round trip (:func:`codec_round_trip`), the band-pass again; with ``wideband`` resample to
    :data:`WIDEBAND_RATE` ("narrowband audio in a wideband file": nothing above 3.4 kHz).

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
    sample_rate : int
        Hz.
    codec : {"ulaw", "alaw", "gsm"}
    wideband : bool
        Return the result at 16 kHz instead of 8 kHz.

    Returns
    -------
    out : numpy.ndarray of float64, shape (ceil(n_samples * rate / sample_rate),)
        (The input's length for ``wideband`` and a 16 kHz input.)
    rate : int
        8000, or 16000 with ``wideband``.
    record : dict
        ``codec``, ``band_hz``, ``codec_rate`` and ``input_gain_db`` (the scaling before the codec, 0 if none).
    """
    if codec not in CODECS:
        raise ParameterError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    signal = np.asarray(signal, dtype=np.float64)
    n_samples = signal.size
    narrow = band_limit(resample(signal, sample_rate, NARROWBAND_RATE).astype(np.float64), NARROWBAND_RATE)
    peak = float(np.max(np.abs(narrow))) if narrow.size else 0.0
    gain = CODEC_PEAK / peak if peak > CODEC_PEAK else 1.0
    narrow = band_limit(codec_round_trip(narrow * gain, codec), NARROWBAND_RATE)
    rate = WIDEBAND_RATE if wideband else NARROWBAND_RATE
    out = resample(narrow, NARROWBAND_RATE, rate).astype(np.float64) if wideband else narrow
    wanted = math.ceil(n_samples * rate / sample_rate)
    out = np.concatenate([out[:wanted], np.zeros(max(0, wanted - out.size))])
    return out, rate, {"codec": codec, "band_hz": [int(f) for f in TELEPHONE_BAND_HZ],
                       "codec_rate": NARROWBAND_RATE, "input_gain_db": round(20.0 * math.log10(gain), 4)}
