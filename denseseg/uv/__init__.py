"""Dense image-to-shape uv maps: generation (cartesian, polar), landmark extraction, the Parquet cache."""
