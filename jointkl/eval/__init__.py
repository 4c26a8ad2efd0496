"""Evaluation metrics: mode coverage on 2D mixtures and reconstruction error."""
