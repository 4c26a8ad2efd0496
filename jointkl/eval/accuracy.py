"""Classification accuracy of a model's inferred class against the data's labels.

Two numbers, because a model's classes mean labels only when it was trained on labels:

    accuracy          share of x with classify(x) == label: for models trained on labels (svae, cvae, ada)
    accuracy_matched  the same after the one-to-one matching of predicted classes to labels that maximizes
                      it (the Hungarian algorithm on the contingency table, scipy's linear_sum_assignment):
                      the unsupervised clustering accuracy used for InfoGAN's categorical code (Chen et al.
                      2016, Sec. 5.1), whose code j has no reason to be digit j. accuracy_matched >= accuracy.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def contingency(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """counts[i, j] = how many x have predicted class i and label j. (max pred + 1, max label + 1) int64"""
    pred, labels = pred.long().cpu(), labels.long().cpu()
    n_pred, n_lab = int(pred.max()) + 1, int(labels.max()) + 1
    return torch.bincount(pred * n_lab + labels, minlength=n_pred * n_lab).reshape(n_pred, n_lab)


def matched_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy under the best one-to-one map of predicted classes to labels (a class left unmatched, when
    there are more classes than labels, counts as wrong)."""
    counts = contingency(pred, labels)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    return float(counts[rows, cols].sum()) / pred.numel()


def accuracy_scores(pred: torch.Tensor, labels: torch.Tensor) -> dict:
    """{"accuracy", "accuracy_matched"} of predicted classes (N,) against labels (N,)."""
    if pred.shape != labels.shape or pred.dim() != 1 or pred.numel() == 0:
        raise ValueError(f"pred and labels must be two equal, non-empty 1-d tensors; got {tuple(pred.shape)} and "
                         f"{tuple(labels.shape)}")
    return {"accuracy": float((pred.cpu() == labels.cpu()).double().mean()),
            "accuracy_matched": matched_accuracy(pred, labels)}
