"""Evaluation metrics: mode coverage on 2-D mixtures, reconstruction error, accuracy of inferred classes,
IS/FID and the k-NN KL."""
