"""The Siamese MLP backend: its adapter to the model directory and its training (``train-siamese``).

Training cuts every recording into fixed-length segments (one recording gives several examples), turns each into
a clip vector, learns the embedding with a contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006) and saves
``siamese.npz`` with its training curves (``history.csv``, ``training.png``).
"""

from __future__ import annotations

import math

import numpy as np

from speakerid._utils.hashing import arrays_hash
from speakerid.backends._training import neural_examples, neural_header, read_neural_background, save_neural
from speakerid.backends.base import Backend, register_backend
from speakerid.exceptions import ParameterError
from speakerid.features import FeatureConfig
from speakerid.models.clipvec import (
    check_neural_config,
)
from speakerid.models.pairs import sample_pairs, split_speakers
from speakerid.models.siamese import SiameseMLP, embedding_scores
from speakerid.store import SIAMESE_FILE


def train_siamese(model_dir, manifest, *, feature_config: FeatureConfig | None = None, n_jobs=1,
                  random_state: int = 0, verbose: bool = False, hidden_sizes=(128, 64), l2_normalize: bool = True,
                  margin: float = 1.0, learning_rate: float = 1e-3, batch_size: int = 64, max_epochs: int = 50,
                  patience: int = 10, weight_decay: float = 1e-2, hard_negatives: float = 0.5,
                  pairs_per_epoch: int | None = None, scoring: str = "distance", segment_s: float = 2.0,
                  val_fraction: float = 0.2, on_epoch=None) -> dict:
    """Train the Siamese MLP on a ``speaker,path`` manifest and save it as ``siamese.npz`` in ``model_dir``.

    The speakers are split into training and validation speakers (``val_fraction``; disjoint); the input
    standardisation is learned on the training speakers' examples only; training stops early on the validation
    EER of fixed validation pairs. See :class:`~speakerid.models.siamese.SiameseMLP` for the hyper-parameters.

    Parameters
    ----------
    feature_config : FeatureConfig, optional
        Only for a new model directory (default :data:`~speakerid.models.clipvec.NEURAL_FEATURE_CONFIG`); an
        existing directory keeps its own and must not use per-utterance CMVN.
    n_jobs : int
        Processes for feature extraction.
    random_state : int
        Seeds the speaker split, the pairs and the weights.
    verbose : bool
        Unused (epoch lines go through ``on_epoch``); accepted as every backend's training takes it.
    segment_s : float
        Cut every recording into segments of this many seconds of (VAD-kept) speech; 0 = one example per file.
    on_epoch : callable, optional
        Called with every epoch's history record.

    Returns
    -------
    dict
        ``model``, ``history``, ``plot`` (paths), ``val_eer``, ``val_pair_accuracy`` (at the EER threshold),
        ``eer_threshold``, ``best_epoch``, ``best`` (that epoch's history record), ``epochs_run``, ``n_files``,
        ``n_examples``, ``n_speakers``, ``n_train_speakers``, ``n_val_speakers``.
    """
    frame, source, speakers = read_neural_background(manifest)
    train_mask, val_mask = split_speakers(speakers, val_fraction, random_state, source=source)
    store, config, X, labels, owner = neural_examples(model_dir, feature_config, frame, source, n_jobs, segment_s)
    train, val = train_mask[owner], val_mask[owner]
    model = SiameseMLP(hidden_sizes=tuple(hidden_sizes), l2_normalize=l2_normalize, margin=margin,
                       learning_rate=learning_rate, batch_size=batch_size, max_epochs=max_epochs,
                       patience=patience, weight_decay=weight_decay, pairs_per_epoch=pairs_per_epoch,
                       hard_negatives=hard_negatives, scoring=scoring, random_state=random_state)
    model.fit(X[train], labels[train], X[val] if val.any() else None, labels[val] if val.any() else None,
              callback=on_epoch, source=source)
    best = model.history_[model.best_epoch_ - 1]
    val_pair_accuracy = math.nan
    if val.any():
        val_pair_accuracy = _val_pair_accuracy(model, X[val], labels[val], random_state)
    header = neural_header("SiameseMLP", model, config, source, speakers, len(X), segment_s,
                           val_eer=model.val_eer_, eer_threshold=model.val_eer_threshold_,
                           val_pair_accuracy=val_pair_accuracy)
    header.update(train_speakers=len(set(speakers[train_mask])), val_speakers=len(set(speakers[val_mask])))
    paths = save_neural(store, config, SIAMESE_FILE, model.to_arrays(), header, model.history_, "",
                        f"pair accuracy (same speaker if distance < {margin / 2:g})")
    return {**paths, "val_eer": model.val_eer_, "val_pair_accuracy": val_pair_accuracy,
            "eer_threshold": model.val_eer_threshold_, "best_epoch": model.best_epoch_,
            "epochs_run": len(model.history_), "best": best, "n_files": len(speakers), "n_examples": len(X),
            "n_speakers": len(set(speakers)), "n_train_speakers": header["train_speakers"],
            "n_val_speakers": header["val_speakers"]}


def _val_pair_accuracy(model: SiameseMLP, X_val, labels_val, random_state) -> float:
    """Accuracy of same/different decisions on the validation pairs at the validation EER threshold."""
    pairs = sample_pairs(labels_val, model.n_val_pairs, np.random.default_rng(random_state + 1))
    scores = model.score_pairs(X_val[pairs.first], X_val[pairs.second])
    return float(np.mean((scores >= model.val_eer_threshold_) == (pairs.different == 0)))


@register_backend
class SiameseBackend(Backend):
    """Siamese MLP embeddings: a speaker is the mean embedding of its enrollment files.

    Backend parameters (``backend_params``): ``scoring`` (``"distance"`` or ``"cosine"``, default: the
    model's), ``segment_s`` (embed an utterance as the mean over its segments of that length; default: whole
    utterance).
    """

    name = "siamese"
    speaker_class = "SiameseSpeaker"
    background_files = (SIAMESE_FILE,)
    train_command = "train-siamese"
    trainer = staticmethod(train_siamese)
    model_class = "SiameseMLP"
    default_threshold = 0.0
    segment_length = 0          # frames per embedded segment (0: whole utterances); set from ``segment_s``

    def load_background(self, name, header, arrays):
        self.check_model_class(name, header, self.model_class)
        config = FeatureConfig.from_dict(header["feature_config"])
        check_neural_config(config, f"the model directory of {name}")
        self.model = self._model_from(arrays, {**header.get("params", {}), **self.params})
        self.background_hash = arrays_hash(arrays)
        segment_s = float(self.params.get("segment_s", 0.0) or 0.0)
        self.segment_length = int(round(segment_s * 1000.0 / config.frame_shift_ms))
        threshold = header.get("eer_threshold")
        if isinstance(threshold, (int, float)) and math.isfinite(threshold) and "scoring" not in self.params:
            self.default_threshold = float(threshold)
            self.threshold_meaning = ("the EER threshold of the training's validation pairs (held-out training "
                                      "speakers, one pair per draw; choose one on your own development trials)")

    @staticmethod
    def _model_from(arrays, params):
        return SiameseMLP.from_arrays(arrays, params)

    def _embed(self, frames) -> np.ndarray:
        return self.model.embed_frames(frames, self.segment_length)

    def enroll(self, frames_list):
        self.check_ready()
        embeddings = np.stack([self._embed(frames) for frames in frames_list])
        return {"embedding": embeddings.mean(axis=0), "n_embeddings": np.array(len(embeddings), np.int64)}, \
            {"n_embeddings": len(embeddings)}

    def add_to(self, arrays, frames_list):
        """The mean embedding weighted by the sessions it holds (``n_embeddings``, kept with the model)."""
        self.check_ready()
        if "n_embeddings" not in arrays:
            raise ParameterError("this speaker model does not record how many embeddings it averages (enrolled before "
                                 "speakerid before 0.9): enroll the speaker again from all the files (--replace)")
        n_old = int(np.asarray(arrays["n_embeddings"]))
        new = np.stack([self._embed(frames) for frames in frames_list])
        mean = (np.asarray(arrays["embedding"], np.float64) * n_old + new.sum(axis=0)) / (n_old + len(new))
        total = n_old + len(new)
        return {"embedding": mean.astype(np.asarray(arrays["embedding"]).dtype),
                "n_embeddings": np.array(total, np.int64)}, {"n_embeddings": total}

    has_embedding = True

    def embed(self, frames):
        """The utterance's embedding (the network's output; the MLP's last hidden layer)."""
        self.check_ready()
        return self._embed(frames)

    def prepare(self, frames):
        self.check_ready()
        return self._embed(frames)

    def score(self, prepared, speaker_models):
        self.check_ready()
        if not speaker_models:
            return np.zeros(0)
        speakers = np.stack([m["embedding"] for m in speaker_models])
        return embedding_scores(prepared, speakers, self.model.scoring)
