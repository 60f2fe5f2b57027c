"""Data in: audio files, ``speaker,path[,target]`` manifests, trial and score lists, noise augmentation and
the synthetic speakers of the demo and tests.

Modules: ``audio`` (load, resample), ``manifests`` (read and check manifests, speaker ids), ``layouts`` (make
manifests from folders of audio), ``trials`` (trial and score lists, target labels), ``augment`` (noisy copies),
``synth`` (synthetic speakers).
"""
