"""Readers and writers of the real formats and of the pipeline's artefacts."""
