"""Batch scoring of trial lists: streaming in chunks (``batch``), workers (``worker``), parallel runners on joblib
or Dask (``parallel``), impostor cohorts (``cohort``) and score normalisation (``norm``: Z/T/ZT/S-norm).
"""
