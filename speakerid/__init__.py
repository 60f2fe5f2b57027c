"""speakerid: classical-ML speaker verification (features, GMM-UBM, per-speaker GMMs, evaluation).

The public API in one import::

    import speakerid as sid
    frames = sid.extract_file("alice.wav", sid.FeatureConfig())
    verifier = sid.SpeakerVerifier("models/")

Submodules: :mod:`speakerid.io` (audio, manifests), :mod:`speakerid.features`, :mod:`speakerid.models`,
:mod:`speakerid.metrics`, :mod:`speakerid.synth`, :mod:`speakerid.store`, :mod:`speakerid.exceptions`.
"""

__version__ = "0.1.0"

from . import exceptions, metrics  # noqa: E402
from .exceptions import SpeakerIDError  # noqa: E402
from .features import FeatureConfig, extract, extract_file  # noqa: E402
from .io import load_audio, read_manifest  # noqa: E402
from .verifier import SpeakerVerifier  # noqa: E402

__all__ = ["__version__", "FeatureConfig", "extract", "extract_file", "load_audio", "read_manifest",
           "SpeakerVerifier", "SpeakerIDError", "exceptions", "metrics"]
