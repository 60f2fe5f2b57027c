"""Degraded copies of speech from real recordings: noise, music, babble, reverberation, telephone codecs, gain and
clipping, named by a condition string, seeded, with every random choice recorded.

Condition language: steps joined by ``+``, applied left to right (``noise@5+reverb``, ``reverb-sim+telephone:gsm``).

=========================  ================================================================================
``clean``                  nothing
``noise@SNR``              a random segment (random offset, looped if shorter) of a random ``noise`` recording
``music@SNR``              the same with a ``music`` recording
``babble@SNR``             3 to 7 talkers, each a random segment of a random ``speech`` recording scaled to
                           equal speech power, summed
``white|pink|brown@SNR``   synthetic coloured noise (:func:`speakerid.data.augment.coloured_noise`), no
                           recording needed
``reverb``                 convolution with a random real room impulse response (``rir`` recording)
``reverb-sim``             convolution with the RIR of a random simulated shoebox room (image method)
``telephone[:CODEC]``      300-3400 Hz, 8 kHz, a codec round trip (``ulaw`` default, ``alaw``, ``gsm``); output
                           at 8 kHz, ``ceil(n * 8000 / rate)`` samples
``telephone-16k[:CODEC]``  the same, resampled to 16 kHz: narrowband audio in a wideband file (a 16 kHz input
                           keeps its length)
``gain@DB``                the signal times ``10 ** (DB / 20)``
``clip@LEVEL``             hard clipping at ``LEVEL`` times the signal's peak, ``0 < LEVEL <= 1``
=========================  ================================================================================

SNRs are in dB, measured on the speech frames of the signal entering the step (:mod:`speakerid.degrade.mixing`);
recordings and RIRs are resampled to the audio's rate; reverberation keeps the speech's timing, length and level
(:mod:`speakerid.degrade.rooms`); the codecs are those of :mod:`speakerid.degrade.telephone`. Recordings come from a
:class:`NoiseBank` (``noise.csv``: ``kind,path,licence``). Sources: Snyder, Chen & Povey (2015), MUSAN,
arXiv:1510.08484; Ko et al. (2017), ICASSP, for real and simulated RIR augmentation; Allen & Berkley (1979), JASA
65(4), for the image method; ITU-T G.711 and ETSI GSM 06.10 for the codecs.

>>> t = np.arange(16000) / 16000
>>> speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (t < 0.6)).astype(np.float32)
>>> out = degrade(speech, 16000, "gain@-6+telephone-16k:alaw", random_state=0)
>>> out.signal.shape, out.sample_rate, [step["step"] for step in out.record["steps"]]
((16000,), 16000, ['gain@-6', 'telephone-16k:alaw'])
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from speakerid._utils.files import atomic_write, atomic_write_bytes
from speakerid._utils.jsontext import json_safe
from speakerid._utils.parallel import TaskRunner, imap_ordered
from speakerid._utils.progress import progress
from speakerid._utils.validation import resolve_jobs, shorten
from speakerid.data.audio import load_audio
from speakerid.data.augment import COLOURS, coloured_noise
from speakerid.degrade.mixing import BABBLE_TALKERS, add_babble, add_recording, mix_at_snr
from speakerid.degrade.noise_bank import KINDS, NoiseBank
from speakerid.degrade.rooms import add_real_reverb, add_simulated_reverb
from speakerid.degrade.telephone import CODECS, telephone
from speakerid.exceptions import AudioError, ManifestError, ParameterError

__all__ = ["NoiseBank", "Step", "Degraded", "parse_condition", "condition_text", "needed_kinds", "degrade",
           "degrade_manifest", "KINDS", "STEP_FORMS", "OUTPUT_COLUMNS"]

#: The valid steps, as error messages and the CLI's help list them.
STEP_FORMS = ("clean, noise@SNR, music@SNR, babble@SNR, white@SNR, pink@SNR, brown@SNR, reverb, reverb-sim, telephone[:ulaw|alaw|gsm], "
              "telephone-16k[:ulaw|alaw|gsm], gain@DB, clip@LEVEL (0 < LEVEL <= 1)")
#: What :func:`degrade_manifest` calls the list of the rows it left out (``skip_errors``).
SKIPPED_FILE = "skipped.csv"
#: Columns of the manifest :func:`degrade_manifest` writes.
OUTPUT_COLUMNS = ("speaker", "path", "source", "condition", "record")
#: SNRs and gains beyond this many dB are refused (a typo, not a condition).
MAX_DB = 100.0
#: A degraded file louder than full scale is scaled to this peak before it is written as 16-bit PCM (recorded as
#: ``output_gain_db``): only ``clip@`` clips.
OUTPUT_PEAK = 0.99

_NEEDS = {"noise": "noise", "music": "music", "babble": "speech", "reverb": "rir"}
_VALUED = {"noise": "SNR", "music": "SNR", "babble": "SNR", "white": "SNR", "pink": "SNR", "brown": "SNR",
           "gain": "DB", "clip": "LEVEL"}
_PLAIN = ("clean", "reverb", "reverb-sim")
_TELEPHONE = ("telephone", "telephone-16k")


class Step(NamedTuple):
    """One step of a condition: ``name`` (e.g. ``"noise"``) and ``value`` (dB or level as float, a codec name for
    the telephone steps, None otherwise). ``str(step)`` is its canonical spelling (``noise@5``)."""

    name: str
    value: float | str | None = None

    def __str__(self) -> str:
        if self.name in _VALUED:
            value = self.value
            return f"{self.name}@{value:g}" if isinstance(value, (int, float, np.number)) else f"{self.name}@{value}"
        return f"{self.name}:{self.value}" if self.name in _TELEPHONE else self.name


class Degraded(NamedTuple):
    """What :func:`degrade` returns: ``signal`` (float32, shape (n_samples,)), ``sample_rate`` (Hz) and ``record``
    (JSON-safe dict of every choice made)."""

    signal: np.ndarray
    sample_rate: int
    record: dict


def parse_condition(spec: str) -> tuple:
    """The validated steps of a condition string (see the module docstring for the language).

    Parameters
    ----------
    spec : str
        Steps joined by ``+``; blanks around steps are ignored, names are case-insensitive.

    Returns
    -------
    tuple of Step

    Raises
    ------
    ParameterError
        One line saying what is wrong and listing the valid forms (:data:`STEP_FORMS`).

    Examples
    --------
    >>> parse_condition("noise@5 + reverb+telephone-16k")
    (Step(name='noise', value=5.0), Step(name='reverb', value=None), Step(name='telephone-16k', value='ulaw'))
    >>> condition_text(parse_condition("clip@0.5+gain@-3"))
    'clip@0.5+gain@-3'
    """
    if not isinstance(spec, str):
        raise ParameterError(f"a condition is a string of steps joined by '+', got {type(spec).__name__}")
    return tuple(_parse_step(token.strip().lower(), spec) for token in spec.split("+"))


def _bad(spec: str, what: str) -> ParameterError:
    return ParameterError(f"condition {spec!r}: {what}; valid steps, joined by '+': {STEP_FORMS}")


def _parse_step(token: str, spec: str) -> Step:
    if not token:
        raise _bad(spec, "an empty step")
    if token in _PLAIN:
        return Step(token)
    name, _, codec = token.partition(":")
    if name in _TELEPHONE:
        if codec and codec not in CODECS:
            raise _bad(spec, f"unknown codec {codec!r} in {token!r} (one of {', '.join(CODECS)})")
        return Step(name, codec or "ulaw")
    name, at, text = token.partition("@")
    if name in _PLAIN or name in _TELEPHONE:
        raise _bad(spec, f"{name!r} takes no '@' value")
    if name not in _VALUED:
        raise _bad(spec, f"unknown step {token!r}")
    if not at or not text:
        raise _bad(spec, f"{name!r} needs a value: {name}@{_VALUED[name]}")
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec, f"{text!r} in {token!r} is not a number") from None
    if name == "clip" and not 0.0 < value <= 1.0:
        raise _bad(spec, f"the clipping level of {token!r} must be in (0, 1], a fraction of the peak")
    if name != "clip" and not abs(value) <= MAX_DB:
        raise _bad(spec, f"the dB value of {token!r} must be finite, within +-{MAX_DB:g}")
    return Step(name, value)


def condition_text(condition) -> str:
    """The canonical spelling of a condition (a spec string or :func:`parse_condition`'s steps)."""
    return "+".join(str(step) for step in _as_steps(condition))


def _as_steps(condition) -> tuple:
    if isinstance(condition, str):
        return parse_condition(condition)
    steps = tuple(condition) if isinstance(condition, (tuple, list)) else None
    if not steps or not all(isinstance(step, Step) for step in steps):
        raise ParameterError(f"condition must be a spec string or parse_condition()'s steps, got {condition!r}")
    return parse_condition("+".join(str(step) for step in steps))


def needed_kinds(condition) -> tuple:
    """The kinds of recordings a condition draws from a :class:`NoiseBank`, in :data:`KINDS` order.

    >>> needed_kinds("babble@5+reverb+reverb-sim"), needed_kinds("clean")
    (('speech', 'rir'), ())
    """
    wanted = {_NEEDS[step.name] for step in _as_steps(condition) if step.name in _NEEDS}
    return tuple(kind for kind in KINDS if kind in wanted)


def _check_bank(steps: tuple, bank) -> None:
    needed = needed_kinds(steps)
    if needed and not isinstance(bank, NoiseBank):
        raise ParameterError(f"condition {condition_text(steps)!r} needs {' and '.join(needed)} recordings: give "
                             "bank=NoiseBank.from_csv('noise.csv')")
    empty = [kind for kind in needed if not bank.kinds[kind]]
    if empty:
        hint = " (babble talkers: add them with with_babble_sources)" if "speech" in empty else ""
        raise ParameterError(f"condition {condition_text(steps)!r} needs {' and '.join(empty)} recordings, and the "
                             f"noise bank has none{hint}")
    talkers = len(set(bank.kinds["speech"])) if "speech" in needed else BABBLE_TALKERS[0]
    if talkers < BABBLE_TALKERS[0]:
        warnings.warn(f"babble from {talkers} speech recording(s): its {BABBLE_TALKERS[0]}-{BABBLE_TALKERS[1]} "
                      "talkers are segments of the same voice(s), not different speakers (add talkers with "
                      "--babble-manifest / NoiseBank.with_babble_sources)", UserWarning, stacklevel=3)


def degrade(signal, sample_rate, condition, *, bank=None, random_state=None) -> Degraded:
    """A degraded copy of ``signal`` under ``condition``, every random choice recorded.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
        Finite samples, full scale 1.
    sample_rate : int
        Hz.
    condition : str or tuple of Step
        A spec string (module docstring) or :func:`parse_condition`'s result.
    bank : NoiseBank, optional
        Needed by ``noise``, ``music``, ``babble`` (its ``speech`` recordings) and ``reverb``.
    random_state : None, int, sequence of int or numpy.random.Generator
        Anything :func:`numpy.random.default_rng` takes; the same value gives the same output.

    Returns
    -------
    Degraded
        ``signal`` float32 (not limited to full scale: see :func:`degrade_manifest`), ``sample_rate`` (8000 after
        ``telephone``, 16000 after ``telephone-16k``) and ``record``: ``condition`` (canonical), ``sample_rate_in``,
        ``sample_rate``, ``n_samples`` and ``steps``, one dict per step with its ``step`` spelling and its choices
        (files, offsets, measured SNR, RIR or room, codec, talkers, gains).

    Raises
    ------
    ParameterError
        A bad condition, signal or rate, or a bank lacking a kind the condition needs.
    AudioError
        A bank recording is unreadable or silent, or the signal is silent where an SNR or level must be set.
    """
    steps = _as_steps(condition)
    signal = np.asarray(signal)
    if signal.ndim != 1 or signal.size == 0 or not np.issubdtype(signal.dtype, np.number):
        raise ParameterError(f"signal must be a non-empty 1-D array of samples, got shape {signal.shape}")
    if not np.all(np.isfinite(signal)):
        raise ParameterError("signal holds NaN or infinite samples")
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise ParameterError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    _check_bank(steps, bank)
    rng = np.random.default_rng(random_state)
    x, rate, done = signal.astype(np.float64), int(sample_rate), []
    for step in steps:
        x, rate, info = _apply(step, x, rate, bank, rng)
        done.append({"step": str(step), **info})
    record = {"condition": condition_text(steps), "sample_rate_in": int(sample_rate), "sample_rate": rate,
              "n_samples": int(x.size), "steps": done}
    return Degraded(x.astype(np.float32), rate, json_safe(record))


def _apply(step: Step, x: np.ndarray, rate: int, bank, rng):
    """One step: ``(signal, rate, record of its choices)``."""
    name, value = step
    if name in ("noise", "music"):
        x, info = add_recording(x, rate, value, bank.kinds[name], rng, bank.licences)
    elif name == "babble":
        x, info = add_babble(x, rate, value, bank.kinds["speech"], rng, bank.licences)
    elif name in COLOURS:     # synthetic coloured noise: no recording needed
        noise = coloured_noise(x.size, name, rng, rate)
        x, info = mix_at_snr(x, rate, noise, value)
    elif name == "reverb":
        x, info = add_real_reverb(x, rate, bank.kinds["rir"], rng, bank.licences)
    elif name == "reverb-sim":
        x, info = add_simulated_reverb(x, rate, rng)
    elif name in _TELEPHONE:
        x, rate, info = telephone(x, rate, value, wideband=name == "telephone-16k")
    elif name == "gain":
        x, info = x * 10.0 ** (value / 20.0), {}
    elif name == "clip":
        threshold = value * float(np.max(np.abs(x)))
        info = {"threshold": threshold, "clipped_fraction": round(float(np.mean(np.abs(x) > threshold)), 6)}
        x = np.clip(x, -threshold, threshold)
    else:
        info = {}
    return x, rate, info


def degrade_manifest(manifest, out_dir, condition, *, bank=None, seed=0, n_jobs=1, skip_errors=False) -> Path:
    """Write a degraded copy of every file of a manifest, and the manifest of the copies.

    Each row's randomness is ``numpy.random.default_rng([seed, zlib.crc32(key)])`` with ``key`` the row's path
    relative to the manifest's folder (a DataFrame's path as given): the output does not depend on the row order
    or on ``n_jobs``, and the same seed writes the same bytes.

    Parameters
    ----------
    manifest : str, os.PathLike or pandas.DataFrame
        A ``speaker,path`` CSV (paths relative to its folder; :func:`speakerid.data.manifests.read_manifest`), or a
        DataFrame with those columns and absolute paths.
    out_dir : str or os.PathLike
        Receives ``<stem>-<hash of speaker and key>.wav`` per row (16-bit PCM WAV, written atomically, scaled to a
        :data:`OUTPUT_PEAK` peak when louder than full scale) and ``manifest.csv``.
    condition : str or tuple of Step
    bank : NoiseBank, optional
    seed : int
        Non-negative.
    n_jobs : int
        Worker threads (-1: one per core).
    skip_errors : bool
        Leave out the rows whose audio cannot be read or degraded (an :class:`AudioError`: unreadable, silent, too
        short ...) and list them in ``out_dir/skipped.csv`` (``speaker,path,error``) instead of stopping at the
        first one.

    Returns
    -------
    pathlib.Path
        ``out_dir/manifest.csv``, with columns :data:`OUTPUT_COLUMNS`: ``path`` relative to ``out_dir``,
        ``source`` the input file, ``condition`` canonical, ``record`` compact JSON of :func:`degrade`'s record plus
        ``seed`` and ``output_gain_db``.

    Raises
    ------
    ParameterError, ManifestError, AudioError
    """
    steps = _as_steps(condition)
    _check_bank(steps, bank)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    n_jobs = resolve_jobs(n_jobs)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"{out_dir}: exists and is not a folder")
    rows = _manifest_rows(manifest, out_dir / "manifest.csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    shared = (steps, bank, str(out_dir), int(seed), bool(skip_errors))
    written, skipped = [], []
    with TaskRunner(n_jobs, threads=True) as runner:
        results = imap_ordered(runner if n_jobs > 1 else None, _degrade_rows, shared, rows)
        for row in progress(results, total=len(rows), desc="degrading", unit="file"):
            (skipped if "error" in row else written).append(row)
    if skipped:
        with atomic_write(out_dir / SKIPPED_FILE, "w") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("speaker", "path", "error"))
            writer.writerows((row["speaker"], row["source"], row["error"]) for row in skipped)
    elif (out_dir / SKIPPED_FILE).exists():
        (out_dir / SKIPPED_FILE).unlink()
    target = out_dir / "manifest.csv"
    with atomic_write(target, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(OUTPUT_COLUMNS)
        writer.writerows([row[column] for column in OUTPUT_COLUMNS] for row in written)
    return target


def _manifest_rows(manifest, target: Path) -> list:
    """``(speaker, absolute source, key, output name)`` per row, checked (files exist, names unique)."""
    if isinstance(manifest, (str, os.PathLike)):
        from speakerid.data.manifests import read_manifest

        path = Path(manifest)
        if target.resolve() == path.resolve():
            raise ParameterError(f"{path}: the output manifest would overwrite the input manifest")
        frame = read_manifest(path)
        base = path.resolve().parent
        keys = [Path(os.path.relpath(p, base)).as_posix() for p in frame["path"]]
        sources = list(frame["path"])
    elif hasattr(manifest, "columns") and hasattr(manifest, "__getitem__"):
        from speakerid.data.manifests import check_manifest_columns

        check_manifest_columns(manifest.columns, "the manifest DataFrame")
        frame = manifest
        keys = [str(p) for p in frame["path"]]
        sources = [os.path.abspath(p) for p in keys]
        missing = [p for p in sources if not os.path.isfile(p)]
        if missing:
            raise ManifestError(f"{len(missing)} audio file(s) not found: {shorten(missing, 5, '; ')}")
    else:
        raise ParameterError(f"manifest must be a CSV path or a DataFrame, got {type(manifest).__name__}")
    if not len(sources):
        raise ManifestError("the manifest has no rows")
    speakers = [str(s) for s in frame["speaker"]]
    rows = [(speaker, source, key, _output_name(speaker, key, source))
            for speaker, source, key in zip(speakers, sources, keys)]
    seen = {}
    for speaker, _, key, name in rows:
        if name in seen:
            raise ManifestError(f"two rows would write {name}: ({seen[name]}) and ({speaker}, {key})")
        seen[name] = f"{speaker}, {key}"
    return rows


def _output_name(speaker: str, key: str, source: str) -> str:
    stem = re.sub(r"[^0-9A-Za-z_.-]+", "_", Path(source).stem).strip("._")[:60] or "audio"
    digest = hashlib.sha1((speaker + "\n" + key).encode("utf-8")).hexdigest()[:10]
    return f"{stem}-{digest}.wav"


def _degrade_rows(shared, batch) -> list:
    """Worker: degrade and write each ``(speaker, source, key, name)`` of ``batch``; the manifest rows."""
    steps, bank, out_dir, seed, skip_errors = shared
    text, rows = condition_text(steps), []
    for speaker, source, key, name in batch:
        stream = zlib.crc32(key.encode("utf-8"))
        try:
            signal, rate = load_audio(source)
            out = degrade(signal, rate, steps, bank=bank, random_state=[seed, stream])
        except AudioError as exc:
            if not skip_errors:
                raise
            rows.append({"speaker": speaker, "source": source, "error": " ".join(str(exc).split())})
            continue
        peak = float(np.max(np.abs(out.signal)))
        gain = OUTPUT_PEAK / peak if peak > 1.0 else 1.0
        buffer = io.BytesIO()
        sf.write(buffer, out.signal * np.float32(gain), out.sample_rate, subtype="PCM_16", format="WAV")
        atomic_write_bytes(Path(out_dir) / name, buffer.getvalue())
        record = {"seed": [seed, stream], **out.record, "output_gain_db": round(20.0 * math.log10(gain), 4)}
        rows.append({"speaker": speaker, "path": name, "source": source, "condition": text,
                     "record": json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)})
    return rows
