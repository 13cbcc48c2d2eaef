"""Scores against ground truth (the phantom's hidden truth): correspondence, and more."""
