"""Batch scoring's task runners: :class:`~speakerid._utils.parallel.TaskRunner` (serial, threads, joblib or Dask).

The runner itself lives in :mod:`speakerid._utils.parallel`, below every layer, so that model training (the
map-reduce EM of :mod:`speakerid.models.sharded`) runs on the same workers; this module keeps the scoring
layer's import path.
"""

from __future__ import annotations

from speakerid._utils.parallel import Pending, TaskRunner, resolve_jobs, split_batches

__all__ = ["TaskRunner", "Pending", "resolve_jobs", "split_batches"]
