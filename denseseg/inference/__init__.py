"""Prediction from a trained model folder."""
