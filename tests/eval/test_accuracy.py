"""Accuracy metrics against truth: a hand-counted case, brute force over every one-to-one map of classes to
labels, and a trained InfoGAN whose categorical code finds the components of a 4-Gaussian mixture."""
import itertools

import pytest
import torch

import jointkl as jk
from jointkl.data import Dataset
from jointkl.errors import JointKLError
from jointkl.eval.accuracy import accuracy_scores, contingency, matched_accuracy
from jointkl.eval.suite import evaluate
from tests.objectives.test_infogan import mixture4, train_infogan


def brute_force(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Best accuracy over every injective map of predicted classes to labels (or of labels to classes)."""
    k_pred, k_lab = int(pred.max()) + 1, int(labels.max()) + 1
    best = 0
    if k_pred <= k_lab:
        for image in itertools.permutations(range(k_lab), k_pred):        # class i -> label image[i]
            best = max(best, int((torch.tensor(image)[pred] == labels).sum()))
    else:
        for image in itertools.permutations(range(k_pred), k_lab):        # label j <- class image[j]
            best = max(best, int((torch.tensor(image)[labels] == pred).sum()))
    return best / pred.numel()


def test_hand_counted_case():
    pred, labels = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([1, 1, 0, 0, 2, 1])
    assert contingency(pred, labels).tolist() == [[0, 2, 0], [2, 0, 0], [0, 1, 1]]
    out = accuracy_scores(pred, labels)
    assert out["accuracy"] == pytest.approx(1 / 6)            # only (2, 2) agrees as is
    assert out["accuracy_matched"] == pytest.approx(5 / 6)    # 0 -> 1, 1 -> 0, 2 -> 2


@pytest.mark.parametrize("k_pred,k_lab", [(4, 4), (5, 3), (3, 5)])
def test_matching_is_the_best_one_to_one_map(k_pred, k_lab):
    g = torch.Generator().manual_seed(k_pred * 10 + k_lab)
    for _ in range(20):
        labels = torch.randint(k_lab, (40,), generator=g)
        noisy = torch.where(torch.rand(40, generator=g) < 0.4, torch.randint(k_pred, (40,), generator=g),
                            labels % k_pred)
        assert matched_accuracy(noisy, labels) == pytest.approx(brute_force(noisy, labels))


def test_a_relabelled_perfect_prediction_scores_one():
    labels = torch.arange(10).repeat(7)
    pred = torch.randperm(10, generator=torch.Generator().manual_seed(0))[labels]
    out = accuracy_scores(pred, labels)
    assert out["accuracy_matched"] == 1.0 and out["accuracy"] < 1.0
    with pytest.raises(ValueError, match="equal, non-empty"):
        accuracy_scores(pred[:5], labels)


def test_evaluate_reads_infogans_code_as_classes(tmp_path):
    """The InfoGAN of tests/objectives/test_infogan.py (accuracy 1.000 there in seeds 0-2 by its own count):
    the suite's matched accuracy finds the same; a model without `classify` or data without labels is an
    error when the metric is named, and skipped when metrics are chosen automatically."""
    model, x_test, k_test = train_infogan(tmp_path, 0)
    x_train, k_train = mixture4(4000, 0)
    ds = Dataset("mix4", x_train, x_test, "continuous", k_train, k_test)
    out = evaluate(model, ds, ["accuracy"])
    assert out["accuracy_matched"] > 0.9 and out["accuracy_matched"] >= out["accuracy"]
    assert "accuracy_matched" in evaluate(model, ds)                          # among the automatic metrics
    unlabelled = Dataset("mix4", x_train, x_test, "continuous")
    with pytest.raises(JointKLError, match="needs test labels"):
        evaluate(model, unlabelled, ["accuracy"])
    assert "accuracy" not in evaluate(model, unlabelled)
    gan = jk.train("gan", data=ds, steps=2, out=tmp_path / "gan", hidden=8, layers=1, device="cpu")
    with pytest.raises(JointKLError, match="needs a model that classifies"):
        evaluate(gan, ds, ["accuracy"])
