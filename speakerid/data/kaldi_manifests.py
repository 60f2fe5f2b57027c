"""Between speakerid's ``speaker,path[,target]`` manifests and Kaldi: write a data directory from a manifest (sorted as
``utils/validate_data_dir.sh`` expects), read a data directory or a Kaldi trial list back as a manifest.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid._utils.validation import shorten
from speakerid.data.kaldi import c_sorted, is_command, read_data_dir
from speakerid.exceptions import ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["utterance_ids", "write_data_dir", "data_dir_manifest", "kaldi_trials_manifest", "write_kaldi_trials",
           "manifests_to_kaldi"]


def utterance_ids(speakers, paths) -> list:
    """Kaldi utterance ids for manifest rows: the file's stem, prefixed by ``<speaker>-`` unless it already starts
    with the speaker id (LibriSpeech ``1688-142285-0007``); a repeated id gets ``-2``, ``-3``, ... appended.

    Examples
    --------
    >>> utterance_ids(["1688", "ann", "ann"], ["x/1688-1-7.flac", "a/1.wav", "b/1.wav"])
    ['1688-1-7', 'ann-1', 'ann-1-2']
    """
    ids, seen = [], {}
    for speaker, path in zip(speakers, paths):
        stem = "_".join(Path(str(path)).stem.split())
        base = stem if stem.startswith((f"{speaker}-", f"{speaker}_")) else f"{speaker}-{stem}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def write_data_dir(manifest, out_dir) -> pd.DataFrame:
    """Write a Kaldi data directory (``wav.scp``, ``utt2spk``, ``spk2utt``; ``segments`` for cut utterances).

    Parameters
    ----------
    manifest : pandas.DataFrame
        ``speaker`` and ``path`` columns, as :func:`speakerid.data.manifests.read_manifest` returns (absolute
        paths); or a frame from :func:`read_data_dir` (then its utterance ids, recordings and segments are kept).
    out_dir : str or os.PathLike
        Created if needed; the four files are replaced atomically.

    Returns
    -------
    pandas.DataFrame
        The rows written, in file order, indexed by utterance id.

    Raises
    ------
    ParameterError
        A speaker id holds whitespace (a Kaldi id cannot), a path holds a line break, or speaker ids sort so that
        ``utt2spk`` cannot be sorted on both columns (e.g. ``a`` and ``a-b``; Kaldi's own limitation).
    """
    frame = manifest.copy()
    speakers = frame["speaker"].astype(str).tolist()
    spaced = sorted({s for s in speakers if len(s.split()) != 1 or s != s.strip()})
    if spaced:
        raise ParameterError(f"speaker id(s) {shorten(repr(s) for s in spaced)} hold whitespace, which Kaldi ids "
                             "cannot; rename them in the manifest")
    paths = [str(p) for p in frame["path"]]
    if any("\n" in p or "\r" in p for p in paths):
        raise ParameterError("a path holds a line break, which a wav.scp line cannot")
    if frame.index.name != "utterance":
        frame.index = pd.Index(utterance_ids(speakers, paths), name="utterance")
        frame["recording"] = frame.index
    frame = frame.loc[c_sorted(frame.index)]
    by_speaker = sorted(zip(frame["speaker"], frame.index), key=lambda su: (su[0].encode(), su[1].encode()))
    if [u for _, u in by_speaker] != list(frame.index):
        raise ParameterError("utterance ids sorted on their own and sorted on the speaker id differ (speaker ids "
                             "such as 'a' and 'a-b' interleave); Kaldi needs one order: rename the speakers")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    has_segments = "start_s" in frame.columns and frame["start_s"].notna().any()
    recordings = dict(zip(frame["recording"], frame["path"]))
    _write(out_dir / "wav.scp", ((r, os.path.abspath(p) if not is_command(p) else p)
                                 for r, p in ((r, recordings[r]) for r in c_sorted(recordings))))
    _write(out_dir / "utt2spk", zip(frame.index, frame["speaker"]))
    spk2utt = {}
    for utt, speaker in zip(frame.index, frame["speaker"]):
        spk2utt.setdefault(speaker, []).append(utt)
    _write(out_dir / "spk2utt", ((s, " ".join(spk2utt[s])) for s in c_sorted(spk2utt)))
    if has_segments:
        _write(out_dir / "segments", (
            (u, r, f"{0.0 if math.isnan(s) else s:.3f}", "-1" if math.isnan(e) else f"{e:.3f}")
            for u, r, s, e in zip(frame.index, frame["recording"], frame["start_s"], frame["end_s"])))
    elif (out_dir / "segments").exists():
        (out_dir / "segments").unlink()  # a stale one would cut the new recordings
    return frame


def _write(path: Path, rows) -> None:
    with atomic_write(path, "w") as fh:
        for row in rows:
            fh.write(" ".join(str(x) for x in row) + "\n")


def data_dir_manifest(data_dir, *, allow_commands: bool = False) -> pd.DataFrame:
    """A Kaldi data directory as a ``speaker,path`` manifest (for enroll, train-ubm, score).

    Every utterance must be a whole audio file: segments and commands need the audio cut or produced in memory,
    which only ``score-pairs`` and ``embed`` do.

    Raises
    ------
    ManifestError
        As :func:`speakerid.data.kaldi.read_data_dir`; utterances that are segments or commands (naming them).
    """
    frame = read_data_dir(data_dir, allow_commands=allow_commands)
    cut = frame.index[frame["start_s"].notna() | frame["end_s"].notna()].tolist()
    commands = frame.index[[is_command(p) for p in frame["path"]]].tolist()
    if cut or commands:
        which = f"segments ({shorten(cut, 3)})" if cut else f"commands ({shorten(commands, 3)})"
        raise ManifestError(f"utterances are {which}: here every utterance must be a whole audio file (score-pairs "
                            "and embed read segments and commands)", data_dir)
    return frame[["speaker", "path"]].assign(utterance=frame.index).reset_index(drop=True)


def kaldi_trials_manifest(trials, data_dir, *, allow_commands: bool = False) -> pd.DataFrame:
    """A Kaldi enrolled-speaker trial list (``<speaker> <utt> target|nontarget``, as in Kaldi's SRE recipes) with the
    data directory of its test utterances, as a ``speaker,path,target,utterance`` frame (score files written from
    it name the test side by its utterance id, as Kaldi does).

    Raises
    ------
    ManifestError
        A line that is not ``<speaker> <utt> target|nontarget`` or names an utterance the data directory lacks.
    """
    utterances = data_dir_manifest(data_dir, allow_commands=allow_commands).set_index("utterance")
    trials = Path(trials)
    rows = []
    for number, line in enumerate(trials.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[2] not in ("target", "nontarget"):
            raise ManifestError(f"line {number}: expected '<speaker> <utt> target|nontarget', found "
                                f"'{line.strip()[:80]}'", trials)
        if fields[1] not in utterances.index:
            raise ManifestError(f"line {number}: utterance '{fields[1]}' is not in {data_dir}", trials)
        rows.append((fields[0], utterances.at[fields[1], "path"], int(fields[2] == "target"), fields[1]))
    if not rows:
        raise ManifestError("the trial list is empty", trials)
    frame = pd.DataFrame(rows, columns=["speaker", "path", "target", "utterance"])
    frame["target"] = frame["target"].astype(np.int8)
    return frame


def write_kaldi_trials(trials: pd.DataFrame, utterance_of: dict, path) -> Path:
    """Write a ``speaker,path,target`` frame as a Kaldi trial list ``<speaker> <utt> target|nontarget``, naming each
    test file by its utterance id in ``utterance_of`` (path -> id)."""
    path = Path(path)
    with atomic_write(path, "w") as fh:
        for speaker, audio, target in zip(trials["speaker"], trials["path"], trials["target"]):
            fh.write(f"{speaker} {utterance_of[audio]} {'target' if int(target) == 1 else 'nontarget'}\n")
    return path


def manifests_to_kaldi(enroll_csv, out_dir, trials_csv=None) -> dict:
    """Write ``out_dir/enroll`` (a data directory of the enrollment manifest) and, with a trial list,
    ``out_dir/test`` (its test files; a file's speaker is the one of its target trial, else the file's own
    utterance id, Kaldi's convention for unknown speakers) and ``out_dir/trials`` (``<speaker> <utt> target|nontarget``).

    Returns
    -------
    dict
        ``enroll``, ``test``, ``trials`` paths written (``None`` when not), ``n_enroll``, ``n_test``, ``n_trials``.
    """
    from speakerid.data.manifests import read_manifest

    out_dir = Path(out_dir)
    enroll = write_data_dir(read_manifest(enroll_csv), out_dir / "enroll")
    result = {"enroll": str(out_dir / "enroll"), "test": None, "trials": None, "n_enroll": len(enroll),
              "n_test": 0, "n_trials": 0}
    if trials_csv is None:
        return result
    trials = read_manifest(trials_csv, require_target=True)
    owner = dict(zip(trials.loc[trials["target"] == 1, "path"], trials.loc[trials["target"] == 1, "speaker"]))
    files = list(dict.fromkeys(trials["path"]))
    stems = utterance_ids(["x"] * len(files), files)   # x-<stem>: unknown speakers are named by their utterance
    speakers = [owner.get(f, stem) for f, stem in zip(files, stems)]
    test = write_data_dir(pd.DataFrame({"speaker": speakers, "path": files}), out_dir / "test")
    write_kaldi_trials(trials, dict(zip(test["path"], test.index)), out_dir / "trials")
    result.update(test=str(out_dir / "test"), trials=str(out_dir / "trials"), n_test=len(test), n_trials=len(trials))
    return result
