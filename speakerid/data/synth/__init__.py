"""Deterministic synthetic speakers for the demo and the tests (numpy/scipy only, no downloads).

A speaker is a :class:`SpeakerProfile` (pitch range, vocal-tract length, voice quality) drawn from a seeded
stream by :func:`make_speaker`; :func:`synthesize_utterance` renders random speech in that voice through a random
channel and noise; :func:`make_corpus` writes a whole corpus with ``enroll.csv``, ``trials.csv`` and
``background.csv`` manifests (and ``corpus.json``, so that an up-to-date corpus is reused rather than
rewritten: see :func:`corpus_is_current`).

Modules: ``profile`` (who speaks), ``speech`` (source-filter rendering of a random phone sequence), ``session``
(channel, noise, level), ``corpus`` (files and manifests).
"""

from speakerid.data.synth.corpus import (
    BACKGROUND_PREFIX,
    CORPUS_INFO,
    SPEAKER_PREFIX,
    SynthCorpus,
    corpus_is_current,
    make_corpus,
)
from speakerid.data.synth.profile import SpeakerProfile, make_speaker
from speakerid.data.synth.session import (
    ChannelSettings,
    Utterance,
    random_channel,
    synthesize_session,
    synthesize_utterance,
)

__all__ = [
    "SpeakerProfile",
    "make_speaker",
    "synthesize_utterance",
    "synthesize_session",
    "Utterance",
    "ChannelSettings",
    "random_channel",
    "make_corpus",
    "corpus_is_current",
    "CORPUS_INFO",
    "SynthCorpus",
    "SPEAKER_PREFIX",
    "BACKGROUND_PREFIX",
]
