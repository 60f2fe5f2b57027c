"""The one path from audio files to frames: load, resample, warn about bandwidth, add noisy copies, extract.

Every caller that turns a file into frames (enrollment, scoring, the feature cache, UBM / i-vector / neural
training) goes through :func:`file_sessions` (or its one-array form :func:`file_features`), and every caller that
turns a list of files into frames goes through :func:`many_features`.

Seeding rule of the noisy copies (multi-condition training): file ``i`` of a call of :func:`many_features` with
``random_state=r`` gets its copies from ``numpy.random.default_rng([r, i])``, so the noise depends on the seed
and on the file's position in the list, never on ``n_jobs`` or the order in which workers finish. Enrollment
uses a seed derived from the speaker id (see :meth:`speakerid.verifier.SpeakerVerifier.enroll`).
"""

from __future__ import annotations

import warnings

import numpy as np
import soundfile as sf

from speakerid._utils.blas import one_blas_thread
from speakerid._utils.progress import progress
from speakerid._utils.validation import resolve_jobs
from speakerid.data.audio import load_audio
from speakerid.data.augment import check_n_augment, noisy_copies
from speakerid.exceptions import BandwidthWarning
from speakerid.features import extract
from speakerid.features.config import FeatureConfig
from speakerid.features.framing import remove_dc_offset
from speakerid.features.speech import check_speech

__all__ = ["file_features", "file_sessions", "many_features", "background_features", "warn_narrowband", "refused_files",
           "MIN_FILES_PER_PROCESS"]

#: Below this many files, extraction stays in this process (starting workers costs more than it saves).
_MIN_FILES_PARALLEL = 4
#: Worker processes are used from this many files each; below it, threads of this process (nothing to start or
#: import; the front end's NumPy/FFT work releases the GIL). On 2 cores, enrolling (in-process, K = 64 UBM): 120
#: FSDD digits 1.10 s serial, 1.08 s on threads, 1.32 s on processes; the 223 background files (2,808 s of speech)
#: 6.80 s serial, 4.67 s on threads, 4.82 s on processes. Processes are kept for larger jobs, where the threads'
#: Python share (under the GIL) binds first.
MIN_FILES_PER_PROCESS = 256


def _load(path, config: FeatureConfig, check_band: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """``(signal, filtered, rate)``: the float32 signal of ``path`` at the configuration's rate and its DC/rumble
    high-pass (:func:`~speakerid.features.framing.remove_dc_offset`, run once for the speech check and the clean
    features); warns when the file's own rate is lower, or (``check_band``) when a wideband model's file fills
    the telephone band only (:func:`warn_narrowband`); refuses (AudioError) a file with too little speech or none
    (:func:`speakerid.features.speech.check_speech`)."""
    signal, rate = load_audio(path, sample_rate=config.sample_rate)  # first: it refuses pipes, devices, ...
    try:
        native_rate = sf.info(str(path)).samplerate
    except Exception:  # replaced since: the warning is all that is lost
        native_rate = None
    if native_rate is not None and native_rate < config.sample_rate:
        warnings.warn(f"{path}: {native_rate} Hz audio upsampled to the model's {config.sample_rate} Hz; the band "
                      f"above {native_rate // 2} Hz is empty (consider a model at --sample-rate {native_rate})",
                      BandwidthWarning, stacklevel=3)
    filtered = remove_dc_offset(signal.astype(np.float32, copy=False), config.sample_rate)
    check_speech(filtered, config, path, dc_removed=True)  # a tone, a constant or 50 ms of a word is refused
    if check_band and (native_rate is None or native_rate >= config.sample_rate):
        warn_narrowband(filtered, rate, path, stacklevel=4)
    return signal, filtered, rate


def warn_narrowband(signal, rate: int, path, stacklevel: int = 2) -> float | None:
    """Warn (:class:`BandwidthWarning`) when a wideband model's audio fills the telephone band only; returns the
    effective bandwidth in Hz (:func:`speakerid.features.bandwidth.effective_bandwidth_hz`), or None for a model
    at 10 kHz or below, which needs no check. A :class:`~speakerid.scoring.fused.FusedVerifier` with a narrowband
    branch routes such audio to it instead (and does not warn)."""
    from speakerid.features.bandwidth import NARROWBAND_EDGE_HZ, effective_bandwidth_hz, is_narrowband

    if rate <= 2 * NARROWBAND_EDGE_HZ or len(signal) < int(0.025 * rate):
        return None
    bandwidth = effective_bandwidth_hz(signal, rate)
    if is_narrowband(bandwidth) and bandwidth > 0.0:
        warnings.warn(f"{path}: the signal fills {bandwidth / 1000:.1f} kHz of its {rate / 2000:g} kHz band "
                      "(narrowband, e.g. telephone audio, in a wideband file); a wideband model loses accuracy on "
                      "it: use a model trained at --sample-rate 8000, or a 'speakerid train' directory with "
                      "narrowband systems, which scores such audio with them", BandwidthWarning, stacklevel=stacklevel)
    return bandwidth


def file_sessions(path, config: FeatureConfig, n_augment: int = 0, random_state=0,
                  check_band: bool = True) -> tuple[list, float]:
    """Frames of one audio file and of ``n_augment`` noisy copies of it: ``([clean, noisy_1, ...], seconds)``.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file (any rate: resampled to ``config.sample_rate``).
    config : FeatureConfig
        Front-end settings.
    n_augment : int
        Noisy copies (generic white/pink/brown noise at 0-20 dB SNR, :func:`speakerid.data.augment.noisy_copies`).
    random_state : int or sequence of int
        Seed of the copies (anything :func:`numpy.random.default_rng` accepts); the file is read once.
    check_band : bool
        Warn about narrowband audio in a wideband model's file (:func:`warn_narrowband`); training turns it off
        (a background may hold a few such files, and their frames are still welcome).

    Returns
    -------
    (list of numpy.ndarray of shape (n_frames, n_dims), float)
        ``1 + n_augment`` frame arrays, the clean one first, and the file's duration in seconds.

    Raises
    ------
    AudioError
        When the file cannot be read or holds no usable speech.

    Warns
    -----
    BandwidthWarning
        When the file's rate is below the configuration's (upsampling adds nothing above the file's Nyquist
        frequency; train the model at the lower rate instead), or when its signal fills the telephone band only.
    """
    n_augment = check_n_augment(n_augment)
    # one BLAS thread for all of it (speech check, noise, features): the products here are small; BLAS's own
    # threads cost more than they gave (30 enrollment files: 0.33 -> 0.29 s) and made the check's figures
    # depend on the caller's thread setting
    with one_blas_thread():
        signal, filtered, rate = _load(path, config, check_band)
        # python_speech_features' mode does not filter: its features take the signal as read
        clean = extract(signal, config) if config.psf_compat else extract(filtered, config, dc_removed=True)
        noisy = noisy_copies(signal, n_augment, random_state, sample_rate=rate) if n_augment else []
        return [clean] + [extract(s, config) for s in noisy], len(signal) / rate


def file_features(path, config: FeatureConfig) -> tuple[np.ndarray, float]:
    """``(frames, seconds)`` of one audio file: :func:`file_sessions` without noisy copies.

    ``frames`` has shape ``(n_frames, n_dims)``; see :func:`file_sessions` for the errors and warnings.
    """
    sessions, seconds = file_sessions(path, config)
    return sessions[0], seconds


def background_features(path, config: FeatureConfig) -> np.ndarray:
    """The frames of a background (cohort, training) file: :func:`file_features` without the narrowband warning
    (a background may hold a few band-limited files; they are the model's, not the user's, concern)."""
    return file_sessions(path, config, check_band=False)[0][0]


def refused_files(paths, config: FeatureConfig, *, n_jobs=1, desc: str = "checking audio") -> dict:
    """``{path: reason}`` of the files this path would refuse (unreadable, no speech, a tone, too little speech:
    the :class:`AudioError` every command gives), each reason on one line; the others are not listed.

    Reads each file once and runs the speech check only (no features), on ``n_jobs`` threads; the narrowband
    warning is off (a background's concern is whether a file is usable). Used before training, so that one bad
    file among thousands is left out with a note instead of failing a run after minutes of work.
    """
    from concurrent.futures import ThreadPoolExecutor

    from speakerid.exceptions import AudioError

    def reason(path):
        try:
            with one_blas_thread():
                _load(path, config, check_band=False)
        except AudioError as exc:
            return " ".join(str(exc).split())
        return None

    paths = [str(p) for p in paths]
    with ThreadPoolExecutor(resolve_jobs(n_jobs)) as pool:
        reasons = list(progress(pool.map(reason, paths), total=len(paths), desc=desc, unit="file"))
    return {p: r for p, r in zip(paths, reasons) if r is not None}


def many_features(paths, config: FeatureConfig, *, n_jobs=1, n_augment: int = 0, random_state=0,
                  desc: str = "features", show_progress: bool = True,
                  check_band: bool = True, first_index: int = 0) -> list[tuple[list, float]]:
    """:func:`file_sessions` of every file, in order, on ``n_jobs`` processes: ``[([clean, noisy...], s), ...]``.

    File ``i`` is seeded with ``[random_state, first_index + i]`` (the module's seeding rule: ``first_index``
    continues a speaker's earlier files, so files added later get the copies one enrollment of all would give);
    ``n_jobs`` follows
    :func:`speakerid._utils.validation.resolve_jobs` (``None`` = 1, -1 = all cores). The workers are those of a
    :class:`~speakerid._utils.parallel.TaskRunner`, threads below :data:`MIN_FILES_PER_PROCESS` files a worker:
    their warnings (e.g. :class:`BandwidthWarning`) are raised here, as a serial run raises them. ``desc`` names the progress stage
    (:func:`speakerid._utils.progress.progress`; none without ``show_progress``).
    """
    from speakerid._utils.parallel import TaskRunner, imap_ordered

    paths = [str(p) for p in paths]
    shared = (config, check_n_augment(n_augment), random_state, check_band)
    jobs = resolve_jobs(n_jobs) if len(paths) >= _MIN_FILES_PARALLEL else 1
    with TaskRunner(jobs, threads=len(paths) < MIN_FILES_PER_PROCESS * jobs) as runner:
        results = imap_ordered(runner if jobs > 1 else None, _sessions_batch, shared,
                               list(enumerate(paths, int(first_index))))
        return list(progress(results, total=len(paths), desc=desc, unit="file", enabled=None if show_progress else False))


def _sessions_batch(shared, batch) -> list:
    """Worker side of :func:`many_features`: :func:`file_sessions` of each ``(index, path)`` of ``batch``."""
    config, n_augment, random_state, check_band = shared
    return [file_sessions(path, config, n_augment, [random_state, index], check_band) for index, path in batch]
