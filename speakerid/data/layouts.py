"""Build enroll / trials manifests from a folder of audio files, one folder (or file-name prefix) per speaker.

Two layouts:

``folders``
    ``<root>/<speaker>/**/*.wav|flac|ogg``: the speaker is the first folder under ``root``.
``librispeech``
    LibriSpeech names ``<speaker>-<chapter>-<utterance>.flac``, under ``<speaker>/<chapter>/``, ``<speaker>/``
    or flat in ``root``: the speaker is the file name's prefix (the first folder when a name has no ``-``).

Each speaker's files are shuffled by a generator seeded with ``seed`` and the speaker id (so one speaker's split
does not depend on the others), the first ``enroll`` go to enrollment and the rest are test files. Every test
file is then claimed as every evaluated speaker, or as its own speaker plus ``nontarget_per_test`` random
impostors.

Speakers that also appear in the ``background`` list (data used to train the UBM / background model) are
**excluded** from evaluation with a :class:`~speakerid.exceptions.DataLeakWarning`: scoring them would be
optimistic. Speakers with no more than ``enroll`` files (nothing left to test) are skipped with a warning.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid._utils.lazy import lazy_import
from speakerid.exceptions import DataLeakWarning, ManifestError, ParameterError

pd = lazy_import("pandas")

__all__ = ["make_manifests", "scan_speakers", "read_speaker_list", "ManifestSet", "LAYOUTS", "AUDIO_EXTENSIONS"]

LAYOUTS = ("folders", "librispeech")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
_LIBRISPEECH_NAME = re.compile(r"^([^-]+)-[^-]+-.+$")
_MAX_LISTED = 20


@dataclass(frozen=True)
class ManifestSet:
    """What :func:`make_manifests` wrote.

    Attributes
    ----------
    enroll_csv, trials_csv : pathlib.Path
        ``speaker,path`` and ``speaker,path,target`` manifests; paths are relative to the CSV's folder.
    speakers : tuple of str
        The evaluated speakers.
    skipped : tuple of str
        Speakers left out for having no more than ``enroll`` files.
    excluded : tuple of str
        Speakers left out because they are background speakers.
    n_enroll_files, n_test_files, n_trials, n_target_trials : int
    """

    enroll_csv: Path
    trials_csv: Path
    speakers: tuple
    skipped: tuple
    excluded: tuple
    n_enroll_files: int
    n_test_files: int
    n_trials: int
    n_target_trials: int


def _listed(items) -> str:
    items = list(items)
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def scan_speakers(root, layout: str = "folders") -> dict:
    """Map each speaker id to its audio files (sorted absolute paths, symbolic links kept) under ``root``.

    Hidden files and folders (names starting with ``.``) are ignored.

    Raises
    ------
    ParameterError
        ``root`` is not a folder, the layout is unknown, or no audio file was found.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise ParameterError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not root.is_dir():
        raise ParameterError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    by_speaker, loose = {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = Path(dirpath).relative_to(root)
        for filename in sorted(filenames):
            if filename.startswith(".") or Path(filename).suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            speaker = _speaker_of(rel_dir, filename, layout)
            if speaker is None:
                loose.append(filename)
                continue
            # absolute but not resolved: a symlinked data folder stays as the user named it
            by_speaker.setdefault(speaker, []).append(os.path.abspath(os.path.join(dirpath, filename)))
    if loose:
        warnings.warn(f"{root}: {len(loose)} audio file(s) name no speaker and are ignored "
                      f"({_listed(loose)}); the {layout} layout expects "
                      + ("<speaker>/<file>" if layout == "folders" else "<speaker>-<chapter>-<utterance>.flac"),
                      UserWarning, stacklevel=3)
    if not by_speaker:
        raise ParameterError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in the "
                             f"{layout} layout")
    return {speaker: sorted(files) for speaker, files in sorted(by_speaker.items())}


def _speaker_of(rel_dir: Path, filename: str, layout: str):
    if layout == "librispeech":
        match = _LIBRISPEECH_NAME.match(Path(filename).stem)
        if match:
            return match.group(1)
    return rel_dir.parts[0] if rel_dir.parts else None


def read_speaker_list(source, layout: str = "folders") -> set:
    """Speaker ids of a background set.

    Parameters
    ----------
    source : str, os.PathLike or iterable of str
        A CSV manifest with a ``speaker`` column (``.csv``), a text file with one id per line (blank lines and
        ``#`` comments ignored), a folder of audio in ``layout``, or the ids themselves.

    Examples
    --------
    >>> sorted(read_speaker_list(["103", "1034"]))
    ['103', '1034']
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return set(scan_speakers(path, layout))
        if not path.is_file():
            raise ManifestError(f"{path}: no such background speaker list")
        if path.suffix.lower() == ".csv":
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                                    encoding="utf-8-sig")
            except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise ManifestError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
            frame = frame.rename(columns=lambda c: str(c).strip())
            if "speaker" not in frame.columns:
                raise ManifestError(f"{path}: a background manifest needs a 'speaker' column; found "
                                    f"'{','.join(frame.columns)}'")
            ids = frame["speaker"]
        else:
            ids = [line.split("#", 1)[0] for line in path.read_text(encoding="utf-8-sig").splitlines()]
    else:
        ids = list(source)
    return {str(s).strip() for s in ids if str(s).strip()}


def _speaker_rng(seed: int, speaker: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(speaker.encode("utf-8"))])


def make_manifests(root, layout: str = "folders", enroll: int = 3, out_prefix="protocol", seed: int = 0,
                   background=None, nontarget_per_test: int | None = None) -> ManifestSet:
    """Split each speaker's files into enrollment and test files and write the enroll and trials manifests.

    Parameters
    ----------
    root : str or os.PathLike
        The audio folder.
    layout : {"folders", "librispeech"}
        How speakers are found (see the module docstring).
    enroll : int
        Enrollment files per speaker (>= 1); a speaker needs at least ``enroll + 1`` files.
    out_prefix : str or os.PathLike
        Writes ``<out_prefix>-enroll.csv`` and ``<out_prefix>-trials.csv`` (folders created as needed).
    seed : int
        Seeds the splits and the choice of impostors.
    background : str, os.PathLike or iterable of str, optional
        Background speakers (see :func:`read_speaker_list`); those found under ``root`` are excluded from
        evaluation with a :class:`~speakerid.exceptions.DataLeakWarning`.
    nontarget_per_test : int, optional
        Impostor claims per test file, drawn at random from the other evaluated speakers (all of them when
        ``None`` or when there are fewer).

    Returns
    -------
    ManifestSet

    Raises
    ------
    ParameterError
        Bad arguments, no audio, or fewer than two speakers left to evaluate.

    Examples
    --------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> root = Path(tempfile.mkdtemp())
    >>> for spk in ("ann", "bob"):
    ...     (root / spk).mkdir()
    ...     for k in range(3):
    ...         sf.write(str(root / spk / f"{k}.wav"), np.full(800, 0.1), 16000)
    >>> result = make_manifests(root, enroll=2, out_prefix=root / "proto")
    >>> result.speakers, result.n_enroll_files, result.n_trials, result.n_target_trials
    (('ann', 'bob'), 4, 4, 2)
    >>> print(result.trials_csv.read_text().splitlines()[1])
    ann,ann/1.wav,1
    """
    if isinstance(enroll, bool) or not isinstance(enroll, (int, np.integer)) or enroll < 1:
        raise ParameterError(f"enroll must be a positive whole number of files, got {enroll!r}")
    if nontarget_per_test is not None and (isinstance(nontarget_per_test, bool)
                                           or not isinstance(nontarget_per_test, (int, np.integer))
                                           or nontarget_per_test < 0):
        raise ParameterError(f"nontarget_per_test must be a whole number >= 0, got {nontarget_per_test!r}")
    files = scan_speakers(root, layout)

    excluded = ()
    if background is not None:
        excluded = tuple(sorted(set(files) & read_speaker_list(background, layout)))
        if excluded:
            warnings.warn(f"{len(excluded)} speaker(s) under {root} are also background speakers and are "
                          f"excluded from evaluation: {_listed(excluded)}", DataLeakWarning, stacklevel=2)
    skipped = tuple(s for s, paths in files.items() if s not in excluded and len(paths) <= enroll)
    if skipped:
        warnings.warn(f"{len(skipped)} speaker(s) have no more than {enroll} file(s), nothing left to test, and "
                      f"are skipped: {_listed(skipped)}", UserWarning, stacklevel=2)
    speakers = tuple(s for s in files if s not in excluded and s not in skipped)
    if len(speakers) < 2:
        raise ParameterError(f"{root}: {len(speakers)} speaker(s) left to evaluate ({len(files)} found, "
                             f"{len(skipped)} with too few files, {len(excluded)} background); need at least 2 "
                             "for impostor trials")

    enroll_rows, tests = [], []
    for speaker in speakers:
        order = _speaker_rng(seed, speaker).permutation(len(files[speaker]))
        chosen = [files[speaker][i] for i in order]
        enroll_rows += [(speaker, path) for path in sorted(chosen[:enroll])]
        tests += [(speaker, path) for path in sorted(chosen[enroll:])]

    trial_rows = []
    impostor_rng = np.random.default_rng([int(seed), 0x7121])
    for true_speaker, path in tests:
        others = [s for s in speakers if s != true_speaker]
        if nontarget_per_test is not None and nontarget_per_test < len(others):
            picked = impostor_rng.choice(len(others), size=int(nontarget_per_test), replace=False)
            others = [others[i] for i in sorted(picked)]
        trial_rows.append((true_speaker, path, 1))
        trial_rows += [(claim, path, 0) for claim in others]
    trial_rows.sort(key=lambda row: (row[0], -row[2], row[1]))  # by claimed speaker, target trials first

    prefix = Path(out_prefix)
    enroll_csv = prefix.with_name(f"{prefix.name}-enroll.csv")
    trials_csv = prefix.with_name(f"{prefix.name}-trials.csv")
    _write_csv(enroll_csv, ("speaker", "path"), enroll_rows)
    _write_csv(trials_csv, ("speaker", "path", "target"), trial_rows)
    return ManifestSet(enroll_csv=enroll_csv, trials_csv=trials_csv, speakers=speakers, skipped=skipped,
                       excluded=excluded, n_enroll_files=len(enroll_rows), n_test_files=len(tests),
                       n_trials=len(trial_rows), n_target_trials=len(tests))


def _written_path(audio: str, base: str) -> str:
    """``audio`` relative to ``base`` without resolving symbolic links on the audio's side (so ``../shared/x.wav``
    stays ``../shared/...``, not the link's target); the absolute path when the relative one would lead elsewhere
    (a ``..`` climbing out of a symlinked folder)."""
    relative = os.path.relpath(audio, base)
    try:
        same = os.path.samefile(os.path.join(base, relative), audio)
    except OSError:
        same = False
    return Path(relative if same else audio).as_posix()


def _write_csv(path: Path, header, rows) -> None:
    base = str(path.resolve().parent)  # read_manifest resolves the manifest's folder the same way
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow((row[0], _written_path(row[1], base), *row[2:]))
