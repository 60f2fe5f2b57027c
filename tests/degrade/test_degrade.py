"""speakerid.degrade (and its parts mixing, rooms, telephone, noise_bank): SNR on the speech frames, aligned
reverberation, telephone band and codecs, exact gain and clipping, the condition language, recorded choices and
byte-identical seeded output.

Every recording is synthetic, written under tmp_path; one test reads the real ../shared noise list when present.
"""

from __future__ import annotations

import csv
import json
import math
import random
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from _bank import speech_like, synthetic_rir, write, write_bank_csv
from scipy import signal as scipy_signal

from speakerid.data.audio import load_audio, resample
from speakerid.degrade import (
    OUTPUT_COLUMNS,
    STEP_FORMS,
    NoiseBank,
    Step,
    degrade,
    degrade_manifest,
    mixing,
    needed_kinds,
    parse_condition,
    rooms,
)
from speakerid.exceptions import AudioError, ManifestError, ParameterError
from speakerid.features import FeatureConfig
from speakerid.features.framing import frame_log_energy, frame_signal
from speakerid.features.vad import vad_mask

RATE = 16000


# ------------------------------------------------------------------------------------------------ test signals

SIGNALS = {"voiced": dict(seed=1), "mixed": dict(seed=2, voiced=0.3, floor_db=-45.0),
           "whispered": dict(seed=3, voiced=0.0, seconds=2.5)}


@pytest.fixture(scope="module")
def bank_csv(tmp_path_factory):
    """The noise list of :func:`_bank.write_bank_csv` (every kind, several rates, relative paths)."""
    return write_bank_csv(tmp_path_factory.mktemp("bank"))


@pytest.fixture(scope="module")
def bank(bank_csv):
    return NoiseBank.from_csv(bank_csv)


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray, rate: int = RATE) -> float:
    """The definition, restated with the feature extractor's own framing and VAD: speech power over the speech
    frames of ``clean`` / power of ``noisy - clean`` over the same frames."""
    config = FeatureConfig()
    length, shift = config.frame_length_samples, config.frame_shift_samples
    clean = clean.astype(np.float64)
    keep = vad_mask(frame_log_energy(frame_signal(clean, length, shift)), config.vad_threshold_db,
                    config.vad_min_frames)
    speech = frame_signal(clean, length, shift)[keep]
    noise = frame_signal(noisy.astype(np.float64) - clean, length, shift)[keep]
    return float(10 * np.log10(np.sum(speech ** 2) / np.sum(noise ** 2)))


# ------------------------------------------------------------------------------------------------ SNR

@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_speech_frames_are_the_energy_vad_of_the_features(rate):
    config = FeatureConfig(sample_rate=rate, n_fft=2048)
    assert (mixing.VAD_THRESHOLD_DB, mixing.VAD_MIN_FRAMES) == (config.vad_threshold_db, config.vad_min_frames)
    for seed, options in enumerate([dict(), dict(voiced=0.0), dict(floor_db=-20.0), dict(seconds=0.3)]):
        x = speech_like(seed, rate=rate, **{"seconds": 2.0, **options})
        frames = mixing.speech_frames(x, rate)
        assert (frames.frame_length, frames.frame_shift) == (config.frame_length_samples,
                                                             config.frame_shift_samples)
        log_energy = frame_log_energy(frame_signal(x.astype(np.float64), frames.frame_length, frames.frame_shift))
        expected = vad_mask(log_energy, config.vad_threshold_db, config.vad_min_frames)
        np.testing.assert_array_equal(frames.mask, expected)


@pytest.mark.parametrize("kind", ["noise", "music", "babble", "white", "pink", "brown"])
@pytest.mark.parametrize("signal_name", sorted(SIGNALS))
def test_snr_is_measured_on_the_speech_frames(bank, kind, signal_name):
    clean = speech_like(**SIGNALS[signal_name])
    for i, snr in enumerate([-5.0, 0.0, 5.0, 12.5, 20.0]):
        out = degrade(clean, RATE, f"{kind}@{snr:g}", bank=bank, random_state=[i, 7])
        assert out.signal.dtype == np.float32 and out.signal.shape == clean.shape and out.sample_rate == RATE
        measured = measured_snr_db(clean, out.signal)
        assert abs(measured - snr) < 0.5, (kind, signal_name, snr, measured)
        assert abs(out.record["steps"][0]["snr_db_measured"] - measured) < 0.05
    # the pauses matter: over the whole signal the same mixture has a clearly lower SNR
    noise = out.signal.astype(np.float64) - clean
    whole = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert whole < snr - 1.0


def test_coloured_noise_steps_need_no_bank_and_have_their_slope():
    clean = speech_like(3)
    power = {}
    for colour in ("white", "pink", "brown"):
        noise = degrade(clean, RATE, f"{colour}@0", random_state=1).signal.astype(np.float64) - clean
        freqs, psd = scipy_signal.welch(noise, RATE, nperseg=1024)
        power[colour] = psd[(freqs > 100) & (freqs < 300)].sum() / psd[(freqs > 3000) & (freqs < 6000)].sum()
    # low/high band power ratio: flat for white, then rising with the slope 1/f, 1/f**2
    assert power["white"] < 0.2 < 1.0 < power["pink"] < 3.0 < 10.0 < power["brown"]   # 0.07, 1.6, 40 in theory


def test_noise_segment_is_the_recorded_one(bank):
    clean = speech_like(5, seconds=2.0)
    seen = set()
    for seed in range(12):
        out = degrade(clean, RATE, "noise@3", bank=bank, random_state=seed)
        step = out.record["steps"][0]
        assert step["file"] in {str(p) for p in bank.kinds["noise"]} and step["licence"] == "CC0"
        seen.add((step["file"].rsplit("/", 1)[-1], step["looped"]))
        source, _ = load_audio(step["file"], RATE, min_level_dbfs=None)
        offset = step["offset"]
        assert step["offset_s"] == round(offset / RATE, 4)
        expected = np.take(source.astype(np.float64), np.arange(offset, offset + clean.size), mode="wrap")
        added = out.signal.astype(np.float64) - clean
        assert np.corrcoef(added, expected)[0, 1] > 0.999
        assert np.isclose(20 * np.log10(np.std(added) / np.std(expected)), step["noise_gain_db"], atol=0.01)
    assert ("short.wav", True) in seen and ("pink.wav", False) in seen and ("brown44.flac", False) in seen


def test_babble_has_3_to_7_talkers_and_extra_sources(bank, tmp_path):
    clean = speech_like(6, seconds=2.0)
    counts = set()
    for seed in range(25):
        talkers = degrade(clean, RATE, "babble@5", bank=bank, random_state=seed).record["steps"][0]["talkers"]
        counts.add(len(talkers))
        assert {t["file"] for t in talkers} <= {str(p) for p in bank.kinds["speech"]}
    assert counts == {3, 4, 5, 6, 7}
    extra = write(tmp_path / "other_corpus.wav", speech_like(99, 3.0), RATE)
    only_extra = NoiseBank().with_babble_sources([extra, extra])
    assert only_extra.kinds["speech"] == [extra]
    with pytest.warns(UserWarning, match="babble from 1 speech recording"):
        talkers = degrade(clean, RATE, "babble@5", bank=only_extra, random_state=0).record["steps"][0]["talkers"]
    assert {t["file"] for t in talkers} == {str(extra)}
    assert len(bank.with_babble_sources([extra]).kinds["speech"]) == len(bank.kinds["speech"]) + 1
    with pytest.raises(ParameterError, match="not found"):
        bank.with_babble_sources([tmp_path / "missing.wav"])


def test_babble_from_fewer_than_three_voices_says_so(bank):
    clean = speech_like(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # three talkers: no warning
        degrade(clean, RATE, "babble@5", bank=bank, random_state=0)
    one = NoiseBank({"speech": bank.kinds["speech"][:1]})
    with pytest.warns(UserWarning, match=r"babble from 1 speech recording\(s\).*same voice"):
        out = degrade(clean, RATE, "babble@5", bank=one, random_state=0)
    assert len({talker["file"] for talker in out.record["steps"][0]["talkers"]}) == 1


def test_silent_input_cannot_get_an_snr(bank):
    with pytest.raises(AudioError, match="silent"):
        degrade(np.zeros(8000, np.float32), RATE, "noise@5", bank=bank, random_state=0)


# ------------------------------------------------------------------------------------------------ reverberation

def lag_ms(dry: np.ndarray, wet: np.ndarray, rate: int = RATE) -> float:
    """Lag (ms) of the cross-correlation peak of the pre-emphasised (``x[n] - 0.97 x[n-1]``) dry and wet signals.

    The same filter on both keeps ``wet = rir * dry``; without it the low-frequency weight and the pitch
    periodicity of voiced speech make the correlation peak on a cluster of strong early reflections as readily
    as on the direct path (a plain cross-correlation of the voiced test signals peaks up to 24 ms late with
    perfectly aligned RIRs, that of noise-excited ones at 0)."""
    dry, wet = (np.asarray(x, dtype=np.float64) for x in (dry, wet))
    dry, wet = dry[1:] - 0.97 * dry[:-1], wet[1:] - 0.97 * wet[:-1]
    correlation = scipy_signal.correlate(wet, dry, mode="full", method="fft")
    return (int(np.argmax(correlation)) - (dry.size - 1)) * 1000.0 / rate


def speech_power(x: np.ndarray, frames) -> float:
    return frames.power(x.astype(np.float64))


@pytest.mark.parametrize("rir_rate", [44100, 48000])
@pytest.mark.parametrize("predelay_ms", [5.0, 20.0, 50.0])
def test_real_rir_keeps_the_speech_aligned_and_levelled(tmp_path, rir_rate, predelay_ms):
    rir = synthetic_rir(rir_rate, predelay_ms / 1000, seed=int(predelay_ms))
    path = write(tmp_path / "rir.wav", rir, rir_rate, "FLOAT")
    one_rir = NoiseBank({"rir": [path]}, {path: "test"})
    for name, options in SIGNALS.items():
        dry = speech_like(**options)
        out = degrade(dry, RATE, "reverb", bank=one_rir, random_state=0)
        step = out.record["steps"][0]
        assert out.signal.shape == dry.shape
        assert abs(lag_ms(dry, out.signal)) <= 1.0, name
        # the measure sees a delay: the same RIR, not aligned, delays the speech by its pre-delay
        delayed = scipy_signal.fftconvolve(dry, resample(rir, rir_rate, RATE))[:dry.size]
        assert abs(lag_ms(dry, delayed) - predelay_ms) <= 1.0, name
        assert step["rir_sample_rate"] == rir_rate and abs(step["predelay_ms"] - predelay_ms) < 0.1
        frames = mixing.speech_frames(dry, RATE)
        assert abs(10 * np.log10(speech_power(out.signal, frames) / speech_power(dry, frames))) < 0.01
        # the wet signal differs from the dry one (the reverberation is there)
        assert np.corrcoef(dry, out.signal)[0, 1] < 0.95


def test_simulated_rooms_are_aligned_recorded_and_seeded():
    dry = speech_like(**SIGNALS["whispered"])
    frames = mixing.speech_frames(dry, RATE)
    for seed in range(4):
        out = degrade(dry, RATE, "reverb-sim", random_state=seed)
        room = out.record["steps"][0]
        assert out.signal.shape == dry.shape and abs(lag_ms(dry, out.signal)) <= 1.0, room
        assert abs(10 * np.log10(speech_power(out.signal, frames) / speech_power(dry, frames))) < 0.01
        assert all(low <= size <= high for size, (low, high) in zip(room["room_m"], rooms.ROOM_SIZE_M))
        assert rooms.RT60_RANGE_S[0] <= room["rt60_target_s"] <= rooms.RT60_RANGE_S[1]
        assert room["distance_m"] >= rooms.MIN_DISTANCE_M and room["rt60_s"] > 0.1
        for point in (room["source_m"], room["mic_m"]):
            assert all(rooms.WALL_MARGIN_M - 1e-3 <= p <= size - rooms.WALL_MARGIN_M + 1e-3
                       for p, size in zip(point, room["room_m"]))
        if seed == 0:
            again = degrade(dry, RATE, "reverb-sim", random_state=seed)
            assert again.record == out.record and np.array_equal(again.signal, out.signal)


def test_aligned_rir_puts_an_impulse_at_lag_0():
    impulse = np.zeros(RATE, np.float32)
    impulse[4000] = 0.5
    h = synthetic_rir(48000, 0.03)
    wet, _ = rooms.reverberate(impulse, RATE, rooms.align_rir(h, 48000, RATE)[0])
    assert int(np.argmax(np.abs(wet))) == 4000


# ------------------------------------------------------------------------------------------------ telephone

def tone(freq_hz: float, seconds: float = 1.0, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def level_db(x: np.ndarray, reference: np.ndarray) -> float:
    """RMS level of the middle half of ``x`` relative to ``reference``'s (dB)."""
    def rms(v):
        return np.sqrt(np.mean(v[v.size // 4: 3 * v.size // 4].astype(np.float64) ** 2))
    return float(20 * np.log10(rms(x) / rms(reference)))


@pytest.mark.parametrize("codec", ["ulaw", "alaw", "gsm"])
@pytest.mark.parametrize("step", ["telephone", "telephone-16k"])
def test_telephone_keeps_length_and_band(codec, step):
    wide = step == "telephone-16k"
    for rate in (16000, 48000):
        x = speech_like(4, seconds=1.5, rate=rate, voiced=0.5, level=0.5)
        out = degrade(x, rate, f"{step}:{codec}", random_state=0)
        assert out.sample_rate == (16000 if wide else 8000)
        assert out.signal.size == x.size * out.sample_rate // rate
        assert out.record["steps"][0]["codec"] == codec and out.record["sample_rate"] == out.sample_rate
    for freq in (500.0, 1000.0, 3000.0):            # the band is kept ...
        x = tone(freq)
        assert abs(level_db(degrade(x, RATE, f"{step}:{codec}").signal, x)) < 2.0, freq
    for freq in (150.0, 3800.0):                    # ... and what is outside is gone
        assert level_db(degrade(tone(freq), RATE, f"{step}:{codec}").signal, tone(1000.0)) < -30.0, freq
    if wide:
        noise = (0.1 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)
        for x in (noise, speech_like(8, seconds=2.0, voiced=0.3, level=0.8)):
            y = degrade(x, RATE, f"{step}:{codec}").signal.astype(np.float64)
            power = np.abs(np.fft.rfft(y)) ** 2
            freqs = np.fft.rfftfreq(y.size, 1 / RATE)
            assert power[freqs > 3600].sum() < 0.01 * power.sum()
            assert power[(freqs >= 300) & (freqs <= 3400)].sum() > 0.95 * power.sum()


def test_telephone_scales_a_loud_signal_before_the_codec():
    out = degrade(tone(1000.0, amplitude=1.0) * 3.0, RATE, "telephone")
    assert out.record["steps"][0]["input_gain_db"] < -9.0
    assert np.max(np.abs(out.signal)) <= 1.0


# ------------------------------------------------------------------------------------------------ gain, clip

def test_gain_and_clip_values_are_exact():
    x = speech_like(7, seconds=1.0)
    out = degrade(x, RATE, "gain@6")
    np.testing.assert_array_equal(out.signal, (x.astype(np.float64) * 10 ** (6 / 20)).astype(np.float32))
    peak = float(np.max(np.abs(x)))
    out = degrade(x, RATE, "clip@0.25")
    threshold = 0.25 * peak
    np.testing.assert_array_equal(out.signal, np.clip(x.astype(np.float64), -threshold, threshold).astype(np.float32))
    step = out.record["steps"][0]
    assert step["threshold"] == threshold and step["clipped_fraction"] == pytest.approx(np.mean(np.abs(x) > threshold))
    np.testing.assert_array_equal(degrade(x, RATE, "clip@1").signal, x)
    np.testing.assert_array_equal(degrade(x, RATE, "clean").signal, x)
    chained = degrade(x, RATE, "gain@-20+gain@20").signal
    np.testing.assert_allclose(chained, x, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------------------------ the language

@pytest.mark.parametrize("spec, expected", [
    ("clean", [("clean", None)]),
    ("noise@5", [("noise", 5.0)]),
    ("music@-5+babble@12.5", [("music", -5.0), ("babble", 12.5)]),
    (" reverb + reverb-sim ", [("reverb", None), ("reverb-sim", None)]),
    ("telephone", [("telephone", "ulaw")]),
    ("telephone:alaw+telephone-16k:gsm", [("telephone", "alaw"), ("telephone-16k", "gsm")]),
    ("telephone-16k", [("telephone-16k", "ulaw")]),
    ("GAIN@-6+clip@0.5", [("gain", -6.0), ("clip", 0.5)]),
    ("clip@1", [("clip", 1.0)]),
])
def test_parse_condition_accepts_the_documented_forms(spec, expected):
    steps = parse_condition(spec)
    assert [tuple(step) for step in steps] == expected and all(isinstance(step, Step) for step in steps)
    assert parse_condition("+".join(str(step) for step in steps)) == steps


@pytest.mark.parametrize("spec, what", [
    ("", "empty step"), ("noise@5+", "empty step"), ("noise", "needs a value"), ("noise@", "needs a value"),
    ("noise@loud", "not a number"), ("noise@nan", "finite"), ("gain@inf", "finite"), ("gain@1000", "finite"),
    ("clip@0", r"\(0, 1\]"), ("clip@1.5", r"\(0, 1\]"), ("telephone:mp3", "unknown codec"),
    ("reverb@3", "takes no"), ("echo", "unknown step"), ("noise@5+whisper", "unknown step"),
    ("telephone-8k", "unknown step"),
])
def test_parse_condition_refuses_bad_forms_in_one_line(spec, what):
    with pytest.raises(ParameterError, match=what) as caught:
        parse_condition(spec)
    message = str(caught.value)
    assert "\n" not in message and STEP_FORMS in message and repr(spec) in message


def test_degrade_refuses_bad_input(bank):
    x = speech_like(0, seconds=0.5)
    with pytest.raises(ParameterError, match="needs noise recordings"):
        degrade(x, RATE, "noise@5")
    with pytest.raises(ParameterError, match="has none"):
        degrade(x, RATE, "music@5", bank=NoiseBank({"noise": bank.kinds["noise"]}))
    with pytest.raises(ParameterError, match="1-D"):
        degrade(np.zeros((2, 100)), RATE, "clean")
    with pytest.raises(ParameterError, match="NaN"):
        degrade(np.array([0.0, np.nan] * 200), RATE, "clean")
    with pytest.raises(ParameterError, match="sample_rate"):
        degrade(x, 0, "clean")
    with pytest.raises(ParameterError, match="condition"):
        degrade(x, RATE, ["noise@5"])
    assert needed_kinds(parse_condition("reverb+babble@0+noise@1")) == ("noise", "speech", "rir")


def test_noise_bank_from_csv_errors_name_the_file_and_line(bank_csv, tmp_path):
    bank = NoiseBank.from_csv(bank_csv)
    assert {kind: len(paths) for kind, paths in bank.kinds.items()} == {"noise": 3, "music": 1, "speech": 3, "rir": 2}
    assert all(path.is_absolute() and path.is_file() for paths in bank.kinds.values() for path in paths)
    assert bank.licences[str(bank.kinds["music"][0])] == "CC BY 4.0"
    lines = bank_csv.read_text().splitlines()
    cases = {"missing.csv": (lines[:3] + ["noise,../noise/nowhere.wav,CC0"], r"line 4: \.\./noise/nowhere\.wav"),
             "kind.csv": (lines[:2] + ["hum,../noise/pink.wav,CC0"], "line 3: unknown kind 'hum'"),
             "header.csv": (["type,file"] + lines[1:], "expected the header"),
             "empty.csv": (lines[:1], "no rows")}
    for name, (content, message) in cases.items():
        path = bank_csv.parent / name
        path.write_text("\n".join(content) + "\n")
        with pytest.raises(ManifestError, match=message) as caught:
            NoiseBank.from_csv(path)
        assert str(path) in str(caught.value)
    with pytest.raises(ManifestError, match="no such noise list"):
        NoiseBank.from_csv(tmp_path / "absent.csv")


# ------------------------------------------------------------------------------------------------ manifests

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five speech-like files (one at 8 kHz) under audio/, and manifest.csv beside them (relative paths)."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i in range(5):
        rate = 8000 if i == 4 else RATE
        path = write(root / "audio" / f"spk{i % 2}" / f"utt {i}.wav", speech_like(20 + i, 1.2, rate), rate)
        rows.append((f"spk{i % 2}", path.relative_to(root).as_posix()))
    with open(root / "list.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("speaker", "path"), *rows])
    return root / "list.csv"


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


CONDITION = "babble@5+reverb+noise@10+telephone-16k:gsm"


def test_same_seed_gives_identical_bytes_whatever_the_order_and_jobs(corpus, bank, tmp_path):
    first = degrade_manifest(corpus, tmp_path / "a", CONDITION, bank=bank, seed=11)
    degrade_manifest(corpus, tmp_path / "b", CONDITION, bank=bank, seed=11)
    degrade_manifest(corpus, tmp_path / "c", CONDITION, bank=bank, seed=11, n_jobs=2)
    a = _files(tmp_path / "a")
    assert first == tmp_path / "a" / "manifest.csv" and len(a) == 6
    assert a == _files(tmp_path / "b") == _files(tmp_path / "c")
    # the rows shuffled, in another list of the same folder: the same file for each row
    lines = corpus.read_text().splitlines()
    body = lines[1:]
    random.Random(0).shuffle(body)
    shuffled = corpus.parent / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    degrade_manifest(shuffled, tmp_path / "d", CONDITION, bank=bank, seed=11, n_jobs=2)
    d = _files(tmp_path / "d")
    assert {k: v for k, v in d.items() if k != "manifest.csv"} == {k: v for k, v in a.items() if k != "manifest.csv"}
    rows_a = pd.read_csv(tmp_path / "a" / "manifest.csv", dtype=str).set_index("path").sort_index()
    rows_d = pd.read_csv(tmp_path / "d" / "manifest.csv", dtype=str).set_index("path").sort_index()
    pd.testing.assert_frame_equal(rows_a, rows_d)
    # another seed, other bytes
    degrade_manifest(corpus, tmp_path / "e", CONDITION, bank=bank, seed=12)
    e = _files(tmp_path / "e")
    assert sorted(e) == sorted(a) and all(e[name] != a[name] for name in a)


def test_output_manifest_rows_and_records(corpus, bank, tmp_path):
    out = degrade_manifest(corpus, tmp_path / "out", "noise@0+gain@30", bank=bank, seed=3)
    with open(out, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == OUTPUT_COLUMNS and len(rows) == 5
    source_rows = pd.read_csv(corpus, dtype=str)
    assert [r["speaker"] for r in rows] == list(source_rows["speaker"])
    assert [r["source"] for r in rows] == [str(corpus.parent / p) for p in source_rows["path"]]
    for row in rows:
        record = json.loads(row["record"])
        assert row["condition"] == record["condition"] == "noise@0+gain@30"
        assert [s["step"] for s in record["steps"]] == ["noise@0", "gain@30"] and record["seed"][0] == 3
        audio, rate = sf.read(out.parent / row["path"], dtype="float64")
        info = sf.info(str(out.parent / row["path"]))
        assert info.subtype == "PCM_16" and rate == record["sample_rate"] and audio.size == record["n_samples"]
        # +30 dB does not fit in 16 bits: scaled to a 0.99 peak, the scaling recorded (clip@ is what clips)
        assert record["output_gain_db"] < 0 and abs(np.max(np.abs(audio)) - 0.99) < 1e-3
        assert "/" not in row["path"] and row["path"].endswith(".wav")
    # a DataFrame of absolute paths gives the same audio when its rows are the same files and keys
    frame = pd.DataFrame({"speaker": ["spk0"], "path": [rows[0]["source"]]})
    single = degrade_manifest(frame, tmp_path / "frame", "gain@-6", seed=0)
    assert pd.read_csv(single)["path"].str.endswith(".wav").all()


def test_degrade_manifest_refuses_bad_input(corpus, bank, tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        degrade_manifest(tmp_path / "none.csv", tmp_path / "o", "clean")
    with pytest.raises(ParameterError, match="needs noise recordings"):
        degrade_manifest(corpus, tmp_path / "o", "noise@5")
    with pytest.raises(ParameterError, match="seed"):
        degrade_manifest(corpus, tmp_path / "o", "clean", seed=-1)
    with pytest.raises(ParameterError, match="overwrite the input manifest"):
        degrade_manifest(_copy_as_manifest(corpus, tmp_path), tmp_path, "clean")
    with pytest.raises(ManifestError, match="not found"):
        degrade_manifest(pd.DataFrame({"speaker": ["a"], "path": [str(tmp_path / "gone.wav")]}), tmp_path / "o",
                         "clean")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="not a folder"):
        degrade_manifest(corpus, tmp_path / "file", "clean")


def _copy_as_manifest(corpus, folder):
    """The corpus list as ``folder/manifest.csv`` with absolute paths."""
    frame = pd.read_csv(corpus, dtype=str)
    frame["path"] = [str(corpus.parent / p) for p in frame["path"]]
    frame.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


# ------------------------------------------------------------------------------------------------ real data

@pytest.mark.shared
def test_real_noise_list_degrades_real_speech(shared_dir):
    bank = NoiseBank.from_csv(shared_dir / "protocols" / "noise.csv")
    assert all(bank.kinds[kind] for kind in ("noise", "music", "speech", "rir"))
    speech_list = pd.read_csv(shared_dir / "protocols" / "librispeech-background.csv", dtype=str)
    # babble talkers of other speakers than the one degraded, as bench/dev_suite.py adds them
    bank = bank.with_babble_sources([shared_dir / "protocols" / p for p in speech_list["path"][1:8]])
    clean, rate = load_audio(shared_dir / "protocols" / speech_list["path"][0])
    clean = clean[: 6 * rate]
    for seed, spec in enumerate(["noise@0", "music@5", "babble@10"]):
        out = degrade(clean, rate, spec, bank=bank, random_state=seed)
        assert abs(measured_snr_db(clean, out.signal, rate) - float(spec.split("@")[1])) < 0.5
    for seed in range(len(bank.kinds["rir"]) * 2):
        out = degrade(clean, rate, "reverb", bank=bank, random_state=seed)
        step = out.record["steps"][0]
        assert out.signal.size == clean.size and step["rir_sample_rate"] in (44100, 96000) and step["licence"]
        assert math.isfinite(step["gain_db"])


@pytest.mark.parametrize("bad_kind", ["silent", "too short", "not audio"])
def test_skip_errors_leaves_out_only_the_bad_files_and_lists_them(corpus, tmp_path, bad_kind):
    frame = pd.read_csv(corpus, dtype=str)
    frame["path"] = [str(corpus.parent / p) for p in frame["path"]]
    bad = tmp_path / "bad.wav"
    if bad_kind == "silent":
        write(bad, np.zeros(RATE), RATE)
    elif bad_kind == "too short":
        write(bad, speech_like(1)[:40], RATE)
    else:
        bad.write_bytes(b"RIFF not really a wave file")
    mixed = pd.concat([frame.iloc[:2], pd.DataFrame({"speaker": ["x"], "path": [str(bad)]}), frame.iloc[2:4]])
    with pytest.raises(AudioError, match="bad.wav"):
        degrade_manifest(mixed, tmp_path / "strict", "gain@-3")
    target = degrade_manifest(mixed, tmp_path / "lenient", "gain@-3", skip_errors=True, n_jobs=2)
    kept = pd.read_csv(target, dtype=str)
    assert list(kept["source"]) == list(frame["path"].iloc[:4])        # the others, in order
    skipped = pd.read_csv(tmp_path / "lenient" / "skipped.csv", dtype=str)
    assert list(skipped["path"]) == [str(bad)] and skipped["error"].str.contains("bad.wav").all()
    clean_run = degrade_manifest(frame.iloc[:4], tmp_path / "lenient", "gain@-3", skip_errors=True)
    assert not (clean_run.parent / "skipped.csv").exists()          # a rerun without errors drops the old list
