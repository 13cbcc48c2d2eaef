"""Prediction on a new radiograph: from a GRAZPEDWRI-DX-style PNG to masks, landmarks and points in its own pixels.

``python -m pipelines predict`` (``pipelines/predict.py``) is the command; this
package is its library (no folder layout, no Prefect). It lives apart from
``denseseg/inference`` because that folder is a dependency of every training run
in dvc.yaml: a file added there would retrain all models.
"""
