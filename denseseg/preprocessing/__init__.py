"""Preprocessing: from a raw release to working-resolution, left-hand images."""
