"""Plumbing no pipeline step owns: atomic files, array hashes, parameter checks, progress display."""
