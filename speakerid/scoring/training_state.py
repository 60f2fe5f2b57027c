"""The record of a ``speakerid train`` that has not finished: which stages are done, so that a rerun resumes.

``speakerid train`` writes :data:`STATE_FILE` into the model directory before it changes anything, marks each
stage done there as it ends (the usable background, the degraded copies, each system, the development scores, the
narrowband branch) and removes the file with its work folder (:data:`WORK_DIR`: the feature store and the degraded
copies) once ``fusion.json`` is written. A training stopped on the way (Ctrl-C, an error, a lost machine) thus
leaves a directory that says it is incomplete, and how to resume, to every command that opens it
(:func:`check_complete`); the same command run again skips the finished stages (a stage cut short is redone from
its start, with the same seed, so the result equals an uninterrupted run's).

The settings a stage's result depends on (the background files with their sizes, the systems, the rate, the
seed, the split, the augmentation, the trainers' parameters, the package version) are stored with the record; a
rerun with other settings starts over and says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

from speakerid._utils.files import atomic_write, training_lock_held
from speakerid.exceptions import NotFittedError

__all__ = ["STATE_FILE", "WORK_DIR", "TrainingState", "check_complete", "background_fingerprint"]

#: The record of an unfinished training, in the model directory.
STATE_FILE = "training-state.json"
#: The unfinished training's work folder (feature store, degraded copies), in the model directory.
WORK_DIR = ".training"

#: What the stages are called in messages.
STAGE_NAMES = {"usable": "checking the background audio", "augment": "the degraded copies",
               "dev": "the development scores", "narrowband": "the narrowband systems"}


def _stage_name(stage: str) -> str:
    return STAGE_NAMES.get(stage, stage.replace("system:", ""))


def background_fingerprint(frame) -> str:
    """A hash of a ``speaker,path`` background: each file's speaker, path and size (a changed file changes it)."""
    digest = hashlib.sha256()
    for speaker, path in zip(frame["speaker"].astype(str), frame["path"].astype(str)):
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        digest.update(f"{speaker}\t{path}\t{size}\n".encode())
    return digest.hexdigest()[:16]


def _read(model_dir: Path) -> dict | None:
    try:
        record = json.loads((model_dir / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"settings": None, "done": []}        # unreadable: an unfinished training all the same
    return record if isinstance(record, dict) else {"settings": None, "done": []}


def check_complete(model_dir) -> None:
    """Raise :class:`NotFittedError` (exit 7) when a ``speakerid train`` into ``model_dir`` has not finished.

    The message says whether it is running now or was stopped, which stages are done and how to resume; without it
    a half-written directory would answer "no ubm.npz ...: run 'speakerid train-ubm' first", the wrong advice.
    """
    model_dir = Path(model_dir)
    record = _read(model_dir)
    if record is None:
        return
    done = [_stage_name(s) for s in record.get("done", [])]
    command = record.get("command") or "the same 'speakerid train' command"
    if training_lock_held(model_dir):
        raise NotFittedError(f"{model_dir}: a 'speakerid train' is writing into it now (done so far: "
                             f"{', '.join(done) or 'nothing'}); wait for it to finish")
    raise NotFittedError(f"{model_dir}: a 'speakerid train' into it did not finish (done: "
                         f"{', '.join(done) or 'nothing'}); run {command} again to resume it (finished stages "
                         "are kept), or give it --force --no-resume to start over")


class TrainingState:
    """The stages of one training of ``model_dir`` (see the module's docstring).

    Parameters
    ----------
    model_dir : path
        The model directory being trained.
    settings : dict
        What the stages' results depend on (JSON-serialisable); a stored record with other settings is discarded.
    resume : bool
        Keep the stages a stored record with the same settings marks done (default); False starts over.
    command : str, optional
        The command that resumes the training, for the messages of :func:`check_complete`.
    say : callable, optional
        ``say(text)``: what is resumed or why not.
    """

    def __init__(self, model_dir, settings: dict, *, resume: bool = True, command: str | None = None, say=None):
        self.model_dir = Path(model_dir)
        self.settings = json.loads(json.dumps(settings))      # as it reads back from the file
        say = say or (lambda text: None)
        record = _read(self.model_dir)
        self.done: list[str] = []
        #: What the finished stages hand to later ones (JSON), kept with the record.
        self.record: dict = {}
        self.resumed = False
        if record is not None:
            if not resume:
                say("starting over (--no-resume): the unfinished training's stages are discarded")
            elif record.get("settings") != self.settings:
                changed = sorted(k for k in set(self.settings) | set(record.get("settings") or {})
                                 if (record.get("settings") or {}).get(k) != self.settings.get(k))
                say(f"starting over: the unfinished training here had other settings ({', '.join(changed)})")
            else:
                self.done = [s for s in record.get("done", []) if isinstance(s, str)]
                self.record = record.get("record") if isinstance(record.get("record"), dict) else {}
                self.resumed = bool(self.done)
                if self.done:
                    say(f"resuming the unfinished training: {', '.join(map(_stage_name, self.done))} done, kept")
            if not self.resumed:
                shutil.rmtree(self.model_dir / WORK_DIR, ignore_errors=True)
        self.command = command
        self._write()

    @property
    def work(self) -> Path:
        """The training's work folder (kept until the training finishes)."""
        return self.model_dir / WORK_DIR

    def is_done(self, stage: str) -> bool:
        return stage in self.done

    def mark(self, stage: str) -> None:
        """Record ``stage`` as finished (an atomic rewrite of the record)."""
        if stage not in self.done:
            self.done.append(stage)
        self._write()

    def _write(self) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.model_dir / STATE_FILE, "w") as fh:
            json.dump({"settings": self.settings, "done": self.done, "record": self.record, "command": self.command},
                      fh, indent=1)

    def finish(self) -> None:
        """The training is complete: remove the record and the work folder."""
        shutil.rmtree(self.work, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.model_dir / STATE_FILE).unlink()
