"""The audio work of :func:`speakerid.evaluation.protocols.build_protocol`, run in worker threads or processes:
test crops placed on speech, enrollment pieces, degradation with a per-file seed, PCM-16 WAV writing."""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path

import numpy as np

from speakerid._utils.lazy import lazy_import
from speakerid.data.audio import load_audio
from speakerid.data.dev_trials import _safe as _safe_name
from speakerid.data.dev_trials import has_sound

sf = lazy_import("soundfile")

#: Seeded crop offsets tried per test file before it is skipped (a crop that falls in a pause is drawn again).
CROP_ATTEMPTS = 8
_CROP = 1   # random streams of a file: [seed, crc32(key)] degrades it, [..., _CROP] places its crop


def _run(func, job, tasks, n_jobs, audio):
    from speakerid._utils.parallel import TaskRunner

    jobs = n_jobs if audio and len(tasks) > 1 else 1
    with TaskRunner(jobs, threads=len(tasks) < 4 * jobs) as runner:
        return runner.map(func, job, tasks)


def _tests_task(job, batch) -> list:
    """Worker: per ``(role, speaker, candidates, cap)`` task, ``([(speaker, audio, source, key, recording,
    record)], {reason: [keys]})``."""
    out = []
    for role, speaker, candidates, cap in batch:
        kept, dropped = [], {}
        for path, key, recording in candidates:
            if cap is not None and len(kept) >= cap:
                break
            key = key if role == "test" else f"{role}/{key}"
            audio, record, reason = _test_audio(job, f"{role}/{_safe_name(speaker)}", path, key)
            if reason:
                dropped.setdefault(reason, []).append(key)
            else:
                kept.append((speaker, audio, path, key, recording, record))
        out.append((kept, dropped))
    return out


def _test_audio(job, folder, path, key):
    """``(audio path, record, None)`` of a test, or ``(None, None, reason)`` when it is skipped."""
    if job.test_duration_s is None and job.test_condition is None:
        return path, None, None
    signal, rate = load_audio(path, job.sample_rate)
    if job.test_duration_s is not None:
        length = int(round(job.test_duration_s * rate))
        if signal.size < length:
            return None, None, f"shorter than {job.test_duration_s:g} s"
        rng = np.random.default_rng([job.seed, zlib.crc32(key.encode("utf-8")), _CROP])
        crops = (signal[s:s + length] for s in rng.integers(0, signal.size - length + 1, size=CROP_ATTEMPTS))
        signal = next((crop for crop in crops if _has_speech(crop, rate, job.min_speech_s)), None)
        if signal is None:
            return None, None, (f"no {job.test_duration_s:g}-s crop with {job.min_speech_s:g} s of detected speech "
                                f"(--min-test-speech)")
    return _finish(job, folder, key, signal, rate, job.test_condition) + (None,)


def _has_speech(crop, rate, min_speech_s) -> bool:
    from speakerid.features.config import FeatureConfig
    from speakerid.features.speech import measure_speech

    return has_sound(crop) and (min_speech_s <= 0
                                or measure_speech(crop, FeatureConfig(sample_rate=rate)).speech_s >= min_speech_s)


def _enroll_task(job, batch) -> list:
    """Worker: per ``(model, speaker, chosen)`` task, the model's enrollment rows (audio written as needed)."""
    out = []
    for model, speaker, chosen in batch:
        rows = []
        for unit, crop_s in chosen:
            audio, record = unit.path, None
            if crop_s is not None or job.enroll_condition is not None:
                signal, rate = load_audio(unit.path, job.sample_rate)
                signal = signal[:int(round(crop_s * rate))] if crop_s is not None else signal
                audio, record = _finish(job, f"enroll/{_safe_name(model)}", unit.key, signal, rate,
                                        job.enroll_condition)
            rows.append((model, audio, speaker, unit.path) + ((_json(record),) if job.enroll_condition else ()))
        out.append(rows)
    return out


def _finish(job, folder, key, signal, rate, condition):
    """Degrade (with ``condition``, seeded by ``[seed, crc32(key)]``) and write ``signal`` as a PCM-16 WAV, scaled
    to the degrade module's output peak when louder than full scale (as ``degrade_manifest`` writes); ``(absolute
    path, record or None)``."""
    record, stream = None, zlib.crc32(key.encode("utf-8"))
    if condition is not None:
        from speakerid.degrade.conditions import OUTPUT_PEAK, degrade

        signal, rate, record = degrade(signal, rate, condition, bank=job.bank, random_state=[job.seed, stream])
        peak = float(np.max(np.abs(signal)))
        gain = OUTPUT_PEAK / peak if peak > 1.0 else 1.0
        signal = signal * np.float32(gain)
        record = {"seed": [job.seed, stream], **record, "output_gain_db": round(20.0 * math.log10(gain), 4)}
    path = job.out / job.audio / folder / f"{_safe_name(Path(key).stem)[:60]}-{stream:08x}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sf.write(str(tmp), np.clip(signal, -1.0, 32767 / 32768), int(rate), subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return str(path), record


def _json(record) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
