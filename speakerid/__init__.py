"""speakerid: classical-ML speaker verification."""
__version__ = "0.1.0"
