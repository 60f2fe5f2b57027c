"""Pack a fused model directory made by ``speakerid train`` into the form shipped inside the package.

A trained directory keeps what retraining and reporting need: its development scores (``dev/``, tens of MB) and
each system's score-normalisation cohort as the *frames* of every cohort utterance (``cohort-<backend>.npz``, 25-55
MB each). Scoring needs much less. :func:`pack_model` writes a copy that scores the same trials with

- no ``dev/`` folder (the development figures stay in ``fusion.json``);
- each i-vector cohort utterance kept as its i-vector (what scoring it computes from the frames, exactly);
- each GMM-UBM cohort utterance kept as its first ``max_frames`` frames (3 s: most are shorter; the few long
  LibriSpeech ones are cut), each frame as int8 codes with one float16 scale (at most half a step of error, an
  independent error per frame that the utterance's mean log-likelihood ratio averages away), and each cohort
  speaker's MAP means as int8 offsets from the UBM means in UBM standard deviations, one scale per Gaussian (the
  offsets are small: median 0.17 standard deviations). Keeping every n-th frame instead was measured and rejected:
  the cohort utterances are short (median 0.5 s), so it inflated the Z-norm spread by 26 %. The effect of what is
  kept on the development figures is measured by the recipe (``recipes/pretrained``), not assumed;
- background arrays in float32 (they are computed in float64 after loading);
- the cohort list and the training record with paths relative to the shared data folder, never absolute.

The packed cohort carries a new key, so speaker scores kept under the full cohort are never reused with it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from speakerid._utils.hashing import arrays_hash
from speakerid.backends import _cohort
from speakerid.backends._packed import quantize
from speakerid.exceptions import ParameterError
from speakerid.scoring.llr import read_fusion
from speakerid.scoring.narrowband import NARROWBAND_DIR
from speakerid.scoring.systems import SYSTEMS
from speakerid.store import (
    COHORT_FILE,
    FUSION_FILE,
    SHIPPED_MARKER,
    SYSTEMS_DIR,
    load_model_file,
    save_model_file,
)

__all__ = ["pack_model", "build_hash", "DEFAULT_MAX_FRAMES"]

#: Frames kept of each GMM-UBM cohort utterance (the Z-norm spread moves by about 1 % on development speakers).
DEFAULT_MAX_FRAMES = 300
_FEATURES_FILE = "features.json"
_MARKER_TEXT = ("The model shipped inside the speakerid package: never written. Commands given no --model-dir use a "
                "copy of it in your speaker store ('speakerid model-card' says where).\n")


def pack_model(source, out, *, max_frames: int = DEFAULT_MAX_FRAMES, data_root=None, header: dict | None = None):
    """Write the shipped form of the fused directory ``source`` into the new directory ``out``.

    Parameters
    ----------
    source : path
        A directory built by ``speakerid train`` (``fusion.json``; a ``narrowband/`` branch is packed too).
    out : path
        Where the packed directory goes; must not exist.
    max_frames : int
        Keep the first ``max_frames`` frames of each GMM-UBM cohort utterance.
    data_root : path, optional
        Absolute paths under it (cohort files, noise list) are written relative to it; any other absolute path
        keeps only its file name.
    header : dict, optional
        Extra entries for ``fusion.json`` under ``"pretrained"`` (the model's name, recipe hash, figures).

    Returns
    -------
    dict
        Bytes written per file, relative to ``out``.

    Raises
    ------
    ParameterError
        ``source`` is not a fused directory, ``out`` exists or ``max_frames`` < 1.
    """
    source, out = Path(source), Path(out)
    if isinstance(max_frames, bool) or int(max_frames) < 1:
        raise ParameterError(f"max_frames must be a positive integer, got {max_frames!r}")
    if not (source / FUSION_FILE).is_file():
        raise ParameterError(f"{source}: no {FUSION_FILE}: not a directory built by 'speakerid train'")
    if out.exists():
        raise ParameterError(f"{out}: already exists; remove it or choose another folder")
    root = None if data_root is None else Path(data_root).resolve()
    _pack_fused(source, out, int(max_frames), root, header)
    for folder in [out, *(p.parent for p in out.rglob(FUSION_FILE)), *out.rglob(f"{SYSTEMS_DIR}/*")]:
        (folder / SHIPPED_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def _pack_fused(source: Path, out: Path, max_frames: int, root, header) -> None:
    spec = read_fusion(source)                           # checks the file before anything is written
    out.mkdir(parents=True)
    data = json.loads((source / FUSION_FILE).read_text(encoding="utf-8"))
    data.pop("dev_scores", None)                         # dev/ is not shipped
    data = _relative_paths(data, root)
    if header is not None:
        data["pretrained"] = header
    (out / FUSION_FILE).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for system in spec["systems"]:
        _pack_system(source / SYSTEMS_DIR / system, out / SYSTEMS_DIR / system, SYSTEMS[system][0], max_frames, root)
    if spec.get("narrowband") and (source / NARROWBAND_DIR / FUSION_FILE).is_file():
        _pack_fused(source / NARROWBAND_DIR, out / NARROWBAND_DIR, max_frames, root, None)


def _pack_system(source: Path, out: Path, backend_name: str, max_frames: int, root) -> None:
    from speakerid.verifier import SpeakerVerifier

    out.mkdir(parents=True)
    shutil.copyfile(source / _FEATURES_FILE, out / _FEATURES_FILE)
    verifier = SpeakerVerifier(source, backend=backend_name)
    for name in verifier.backend.background_files:
        head, arrays = load_model_file(source / name)
        arrays = {k: a.astype(np.float32) if a.dtype == np.float64 else a for k, a in arrays.items()}
        save_model_file(out / name, arrays, {k: v for k, v in head.items() if k != "arrays"})
    if not (source / COHORT_FILE).is_file():
        return
    cohort_csv = pd.read_csv(source / COHORT_FILE, dtype=str, keep_default_na=False)
    cohort_csv["path"] = [_relative(p, root) for p in cohort_csv["path"]]
    cohort_csv.to_csv(out / COHORT_FILE, index=False, lineterminator="\n")
    packed = SpeakerVerifier(out, backend=backend_name)   # the float32 background: the cohort's new identity
    packed._load_background()
    cohort = _cohort.directory_cohort(verifier.store, _loaded(verifier), backend_name, verifier.feature_config)
    arrays, prepared = _packed_arrays(packed.backend, cohort, max_frames)
    identity = _cohort._identity(packed.backend, backend_name, packed.feature_config, out / COHORT_FILE)
    key = arrays_hash({**arrays, "background": np.frombuffer(identity["background_hash"].encode(), np.uint8)})
    # the trained cohort's creation time, not now: packing the same directory twice writes the same bytes
    made = load_model_file(_cohort.cohort_path(verifier.store, backend_name))[0].get("created_at")
    save_model_file(_cohort.cohort_path(packed.store, backend_name), arrays,
                    {"model_class": "CohortSet", **identity, "key": key, "speakers": list(cohort.speakers),
                     "created_at": made,
                     "packed": {"max_frames": None if prepared else max_frames,
                                "utterances": "prepared" if prepared else "frames"}})


def _loaded(verifier):
    verifier._load_background()
    return verifier.backend


def _packed_arrays(backend, cohort, max_frames: int) -> tuple:
    """The packed cohort's arrays and whether its utterances are prepared vectors."""
    first = backend.prepare(cohort.utterances[0])
    if isinstance(first, np.ndarray) and first.ndim == 1:          # e.g. the i-vector: kept as computed
        vectors = np.stack([first] + [backend.prepare(u) for u in cohort.utterances[1:]]).astype(np.float32)
        return {**_cohort._flat_models(cohort.models), "prepared": vectors}, True
    frames = [np.asarray(u, dtype=np.float32)[:max_frames] for u in cohort.utterances]
    ubm = backend.model.ubm_ if hasattr(backend.model, "ubm_") else backend.model
    mean, std = np.asarray(ubm.means_, np.float32), np.sqrt(np.asarray(ubm.covariances_, np.float32))
    arrays = {"ubm_means": mean, "ubm_std": std}
    for i, model in enumerate(cohort.models):
        q, scale = quantize((np.asarray(model["means"], np.float32) - mean) / std)
        arrays[f"model{i}:means_q"], arrays[f"model{i}:means_scale"] = q, scale
    q, scale = quantize(np.concatenate(frames))
    return {**arrays, "frames_q": q, "frames_scale": scale,
            "lengths": np.array([len(f) for f in frames], dtype=np.int64)}, False


def _relative(path: str, root) -> str:
    p = Path(path)
    if not p.is_absolute():
        return path
    if root is not None:
        try:
            return p.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return p.name


def _relative_paths(value, root):
    """``value`` (JSON data) with every absolute path made relative to ``root`` (else its file name)."""
    if isinstance(value, dict):
        return {k: _relative_paths(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_paths(v, root) for v in value]
    if isinstance(value, str) and value.startswith("/") and len(value) > 1 and "\n" not in value:
        return _relative(value, root)
    return value


def build_hash(model_dir) -> str:
    """SHA-256 of a packed directory's content: every file, a model file as its arrays and its header without
    ``created_at``, ``fusion.json`` without its ``pretrained`` block (which holds this hash and the figures
    measured afterwards). A rebuild that computes the same numbers has the same hash."""
    import hashlib

    model_dir, digest = Path(model_dir), hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts and p.name != SHIPPED_MARKER):
        if path.suffix == ".npz":
            head, arrays = load_model_file(path)
            head = {k: v for k, v in head.items() if k != "created_at"}
            data = json.dumps(head, sort_keys=True).encode("utf-8") + arrays_hash(arrays).encode("ascii")
        elif path.name == FUSION_FILE:
            content = json.loads(path.read_text(encoding="utf-8"))
            content.pop("pretrained", None)
            data = json.dumps(content, sort_keys=True).encode("utf-8")
        else:
            data = path.read_bytes()
        digest.update(path.relative_to(model_dir).as_posix().encode("utf-8") + b"\0" + data + b"\0")
    return digest.hexdigest()
