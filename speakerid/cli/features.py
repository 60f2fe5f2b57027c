"""``speakerid features``: extract frame-level features from audio files, print their shape, optionally save them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakerid._utils.files import atomic_write
from speakerid.cli._common import read_feature_config
from speakerid.exceptions import ParameterError
from speakerid.features import FEATURE_NAMES, FeatureConfig

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("features", help="extract frame-level features from audio files (frames x dims)",
                       description="Print each FILE's feature matrix shape (frames x dims); --out saves the "
                                   "features, --table times each feature.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--features", default=None, metavar="LIST",
                   help=f"comma-separated features from {','.join(FEATURE_NAMES)} (default: mfcc)")
    p.add_argument("--config", default=None, metavar="JSON", help="a FeatureConfig as a JSON file")
    p.add_argument("--n-ceps", type=int, default=None, help="cepstral coefficients (default 20)")
    p.add_argument("--vad", choices=("none", "energy"), default=None, help="voice activity detection")
    p.add_argument("--cmvn", choices=("none", "utterance", "sliding"), default=None, help="normalisation")
    p.add_argument("--psf-compat", action="store_true", help="reproduce python_speech_features.mfcc")
    p.add_argument("--out", default=None, metavar="X.npy|X.npz",
                   help="save the features: .npy for one FILE, .npz (one array per file) for several")
    p.add_argument("--table", action="store_true", help="also print frames, dims and time per feature")
    p.set_defaults(handler=_features)


def _config_from(args) -> FeatureConfig:
    if args.config:
        config = read_feature_config(args.config)
    else:
        config = FeatureConfig()
    changes = {}
    if args.features:
        changes["features"] = tuple(name.strip() for name in args.features.split(",") if name.strip())
    if args.n_ceps is not None:
        changes["n_ceps"] = args.n_ceps
    if args.vad is not None:
        changes["vad"] = args.vad
    if args.cmvn is not None:
        changes["cmvn"] = args.cmvn
    if args.psf_compat:
        changes["psf_compat"] = True
    return config.replace(**changes) if changes else config


def _archive_keys(files) -> list:
    keys, seen = [], set()
    for index, name in enumerate(files):
        key = Path(name).stem or f"file{index}"
        if key in seen:
            key = f"{key}_{index}"
        seen.add(key)
        keys.append(key)
    return keys


def _features(args):
    from speakerid.features.frontend import extract_file, feature_table

    config = _config_from(args)
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix not in (".npy", ".npz"):
        raise ParameterError(f"--out must end in .npy or .npz, got {out.name}")
    if out is not None and out.suffix == ".npy" and len(args.files) > 1:
        raise ParameterError(f"--out {out.name}: a .npy holds one array; use .npz for {len(args.files)} files")
    arrays = []
    for name in args.files:
        feats = extract_file(name, config)
        print(f"{name}\t{feats.shape[0]} x {feats.shape[1]}")
        arrays.append(feats)
    if out is not None:
        with atomic_write(out, "wb") as fh:
            if out.suffix == ".npy":
                np.save(fh, arrays[0])
            else:
                np.savez(fh, **dict(zip(_archive_keys(args.files), arrays)))
        print(f"saved {out}")
    if args.table:
        print(f"{'feature':<10}{'frames':>10}{'dims':>6}{'seconds':>10}")
        for row in feature_table(args.files, config):
            print(f"{row['feature']:<10}{row['frames']:>10}{row['dims']:>6}{row['seconds']:>10.3f}")
