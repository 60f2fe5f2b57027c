"""``speakerid.Verifier``: the default system, ready after ``pip install``."""

from __future__ import annotations

from speakerid.scoring.fused import FusedVerifier


class Verifier(FusedVerifier):
    """Enroll, verify and identify speakers with calibrated log-likelihood ratios, nothing to train.

    Without ``model_dir`` it works on your speaker store over the model shipped in the package
    (:func:`speakerid.pretrained.user_model_dir`: the user data folder, or ``$SPEAKERID_HOME``); each recording
    is scored by the wideband (16 kHz) or narrowband (8 kHz, telephone) systems according to the bandwidth
    measured in its signal. With ``model_dir`` (a directory built by ``speakerid train``) it is exactly
    :class:`~speakerid.scoring.fused.FusedVerifier`, whose methods and outputs it shares.

    Parameters
    ----------
    model_dir : path, optional
        A model directory of ``speakerid train``; default the speaker store.
    p_target : float, optional
        Prior probability of a target speaker behind each decision (default: the model's, 0.5).
    n_jobs : int
        Parallel feature extraction.

    Raises
    ------
    NotFittedError
        No ``model_dir`` and no shipped model in this installation.

    Examples
    --------
    >>> import speakerid
    >>> v = speakerid.Verifier()                                        # doctest: +SKIP
    >>> v.enroll("alice", ["alice1.wav", "alice2.wav"])                 # doctest: +SKIP
    >>> v.verify("alice", "unknown.wav")["llr"]                         # doctest: +SKIP
    """

    def __init__(self, model_dir=None, *, p_target=None, n_jobs: int = 1, cache_dir=None):
        from speakerid import pretrained

        self.in_store = model_dir is None
        super().__init__(pretrained.user_model_dir() if model_dir is None else model_dir, p_target=p_target,
                         n_jobs=n_jobs, cache_dir=cache_dir)

    def verify(self, speaker: str, audio, threshold=None) -> dict:
        if self.in_store:
            from speakerid.pretrained import check_speaker

            check_speaker(self.model_dir, speaker)
        return super().verify(speaker, audio, threshold)
