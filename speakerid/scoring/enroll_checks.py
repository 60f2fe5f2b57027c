"""Identity checks before an enrollment: is the new voice someone enrolled already, do its files hold one voice?

Two ids for one person split that person's genuine acceptances between them (each claim is scored against one
model), and two people in one speaker's files make a model that accepts both. :func:`duplicate_voices` scores the
enrollment files against every other enrolled speaker with the directory's own scoring path and decision
threshold; :func:`disagreeing_files` scores each file against a model of the speaker's other files
(leave-one-out), made in a temporary copy of the directory whose files are links to the real ones, so that
nothing of the real directory is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from speakerid.exceptions import ParameterError

__all__ = ["duplicate_voices", "disagreeing_files", "check_identity"]

#: The id of the leave-one-out models, in the temporary copy only.
_PROBE = "enrollment-check"


def _scores(verifier, speakers: list[str], path) -> np.ndarray:
    """Scores (n_speakers,) of one file on the verifier's decision scale: fused LLRs, or normalised scores."""
    if hasattr(verifier, "score_file"):
        return np.asarray(verifier.score_file(speakers, path)[0], float)
    return np.asarray(verifier.score_frames(speakers, verifier.features(path)), float)


def duplicate_voices(verifier, speaker: str, files) -> list[dict]:
    """The enrolled speakers other than ``speaker`` whose claim the enrollment files pass.

    A speaker is reported when at least half of the files reach the verifier's decision threshold against it:
    ``{"speaker", "n_accepted", "n_files", "score"}`` (the median score over the files), highest first.
    """
    others = [s for s in verifier.speakers() if s != speaker]
    if not others:
        return []
    scores = np.stack([_scores(verifier, others, f) for f in files])          # (n_files, n_others)
    threshold = float(verifier.threshold)
    accepted = (scores >= threshold).sum(axis=0)
    found = [{"speaker": s, "n_accepted": int(accepted[j]), "n_files": len(files),
              "score": float(np.median(scores[:, j]))}
             for j, s in enumerate(others) if 2 * accepted[j] >= len(files)]
    return sorted(found, key=lambda d: -d["score"])


def _linked_copy(model_dir: Path, into: Path) -> None:
    """``into`` mirrors ``model_dir``: folders made, files linked (writes replace links, never their targets)."""
    for root, dirs, names in os.walk(model_dir):
        target = into / Path(root).relative_to(model_dir)
        target.mkdir(parents=True, exist_ok=True)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and not name.endswith(".lock"):
                (target / name).symlink_to(Path(root, name).resolve())


def disagreeing_files(verifier, files, *, reopen) -> list[dict]:
    """The enrollment files the speaker's other files do not vouch for (leave-one-out), for 2 files or more.

    Each file is scored against a model enrolled from the other files, in a temporary linked copy of the
    directory (``reopen(folder)`` opens the same kind of verifier there), on the directory's scale and threshold:
    ``{"file", "score", "threshold"}`` of each file below it.
    """
    files = [str(f) for f in files]
    if len(files) < 2:
        return []
    threshold = float(verifier.threshold)
    out = []
    with tempfile.TemporaryDirectory(prefix="speakerid-enroll-check-") as folder:
        _linked_copy(Path(verifier.model_dir), Path(folder) / "m")
        probe = reopen(Path(folder) / "m")
        for i, path in enumerate(files):
            probe.enroll(_PROBE, files[:i] + files[i + 1:], mode="replace")
            score = float(_scores(probe, [_PROBE], path)[0])
            if score < threshold:
                out.append({"file": path, "score": score, "threshold": threshold})
    return out


def check_identity(verifier, speaker: str, files, *, allow_duplicate: bool, reopen, warn) -> None:
    """Before enrolling ``speaker`` from ``files``: refuse (ParameterError) a voice that matches another
    enrolled speaker unless ``allow_duplicate``; ``warn(text)`` about files that disagree with the others."""
    files = [str(f) for f in files]
    if not allow_duplicate:
        found = duplicate_voices(verifier, speaker, files)
        if found:
            first = found[0]
            more = f" (and {', '.join(d['speaker'] for d in found[1:4])})" if len(found) > 1 else ""
            raise ParameterError(
                f"the voice of {speaker!r} matches the enrolled speaker {first['speaker']!r}{more}: "
                f"{first['n_accepted']} of {first['n_files']} file(s) accepted, median score {first['score']:.2f} "
                f"(threshold {float(verifier.threshold):.2f}); one person under two ids splits their acceptances "
                "between them: enroll under the same id (--add), or give --allow-duplicate to go on")
    for bad in disagreeing_files(verifier, files, reopen=reopen):
        warn(f"{bad['file']} does not match the other enrollment files of {speaker!r} (score {bad['score']:.2f} "
             f"against a model of the others, threshold {bad['threshold']:.2f}): two people, or a bad recording, "
             "in one speaker's files?")

