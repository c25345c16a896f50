"""Measuring ourselves: corpora, metrics, simulated conversations."""
