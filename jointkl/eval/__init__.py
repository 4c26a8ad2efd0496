"""Evaluation metrics: mode coverage on 2D mixtures, reconstruction error, accuracy of inferred classes, IS/FID, k-NN KL."""
