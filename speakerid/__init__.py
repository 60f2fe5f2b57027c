"""speakerid: classical-ML speaker verification (features, GMM-UBM, i-vectors, neural embeddings, evaluation).

The public API in one import; the default system first, ready after ``pip install`` (the model shipped in the
package, your speakers in a per-user store)::

    import speakerid
    verifier = speakerid.Verifier()
    verifier.enroll("alice", ["alice1.wav", "alice2.wav"])
    verifier.verify("alice", "unknown.wav")            # calibrated LLR, posterior, decision

and the expert pieces::

    frames = speakerid.extract_file("alice.wav", speakerid.FeatureConfig())
    expert = speakerid.SpeakerVerifier("models/")

Subpackages, in pipeline order:

- :mod:`speakerid.data` -- audio files, manifests, trial lists, noise augmentation, synthetic speakers
- :mod:`speakerid.features` -- the front end (MFCC, deltas, VAD, CMVN, ...) and the one file -> frames path
- :mod:`speakerid.models` -- array-in/array-out estimators (GMM, GMM-UBM, i-vector, PLDA, Siamese MLP, MLP)
- :mod:`speakerid.backends` -- one plug-in per kind of speaker model: adapter to the model directory + training
- :mod:`speakerid.store` and :mod:`speakerid.verifier` -- the model directory; enroll / verify / identify
- :mod:`speakerid.scoring` -- batch scoring of trial lists, cohorts, score normalisation
- :mod:`speakerid.evaluation` -- metrics, calibration and fusion, plots, report
- :mod:`speakerid.cli` and :mod:`speakerid.web` -- thin shells over the above

Plumbing lives in :mod:`speakerid._utils`; every deliberate error derives from
:class:`speakerid.exceptions.SpeakerIDError`.
"""

from speakerid._utils.lazy import lazy_exports
from speakerid._version import __version__

#: Public names and the module each comes from: imported on first use (PEP 562), so that ``import speakerid``
#: and the CLI start without loading numpy's neighbours until they are needed.
_EXPORTS = {
    "Verifier": "speakerid.pretrained._verifier",
    "FeatureConfig": "speakerid.features.config",
    "extract": "speakerid.features.frontend",
    "extract_file": "speakerid.features.frontend",
    "load_audio": "speakerid.data.audio",
    "read_manifest": "speakerid.data.manifests",
    "SpeakerVerifier": "speakerid.verifier",
    "SpeakerIDError": "speakerid.exceptions",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports("speakerid", _EXPORTS)
