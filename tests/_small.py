"""Small systems for the fused-system tests: ``speakerid train`` in seconds on a synthetic background."""

#: ``system_params`` of :func:`speakerid.scoring.fused_train.train_default`: 8-component UBMs, 3 EM iterations,
#: rank-10 i-vectors, no synthetic noisy copies.
SMALL = {"gmm-ubm": {"n_components": 8, "max_iter": 3, "n_augment": 0},
         "ivector": {"ubm_components": 8, "rank": 10, "n_augment": 0, "max_iter": 3, "segment_s": 1.0}}
