"""Sample-quality metrics (jointkl.eval.quality): IS and FID against hand computations and closed forms, the
domain classifier on mnist5k (accuracy, cache, checksum), IS/FID of real and noised digits, and the Inception hook."""
import math
import sys
import types

import pytest
import torch
import torch.distributions as D

import jointkl as jk
from jointkl.data import binarize_fixed, load
from jointkl.errors import JointKLError
from jointkl.eval import quality
from jointkl.eval.quality import (ClassifierConfig, classifier_scores, domain_classifier, feature_stats,
                                  fid_from_features, frechet_distance, inception_score, train_classifier)
from jointkl.eval.suite import evaluate

FAST = ClassifierConfig(epochs=6)      # mnist5k: 96.4 / 96.9 / 96.7 % test accuracy for seeds 0 / 1 / 2 (30 epochs,
                                       # the default: 98.2 %)


# ---- pure functions ----------------------------------------------------------------------------------------

def test_inception_score_hand_cases():
    assert inception_score(torch.eye(4).repeat(5, 1)) == pytest.approx(4.0)        # confident, all classes: K
    assert inception_score(torch.full((10, 4), 0.25)) == pytest.approx(1.0)        # no confidence: 1
    assert inception_score(torch.eye(4)[[0, 0, 0]]) == pytest.approx(1.0)          # one class only: 1
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]])                                      # p(y) = (1/2, 1/2)
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert inception_score(p) == pytest.approx(math.exp(kl))
    assert inception_score(p[[1, 0]]) == inception_score(p)                         # order-free


def test_frechet_distance_of_identical_statistics_is_zero():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(500, 16, generator=g)
    mu, cov = feature_stats(f)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_equals_closed_form_of_two_gaussians():
    # commuting (diagonal) covariances: |m1 - m2|^2 + sum (s1 - s2)^2
    m1, m2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.5])
    exact = float((m1 - m2).pow(2).sum() + (s1 - s2).pow(2).sum())                  # 5 + 5 = 10
    assert frechet_distance(m1, torch.diag(s1**2), m2, torch.diag(s2**2)) == pytest.approx(exact, abs=1e-9)
    # general covariances: scipy's matrix square root as the independent reference
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    c1, c2 = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    cross = scipy_linalg.sqrtm(c1.numpy() @ c2.numpy()).real.trace()
    ref = float((mu1 - mu2).pow(2).sum() + c1.trace() + c2.trace()) - 2 * cross
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-9)
    # and from samples of the two Gaussians the sample FID converges to it: 20,000 draws each, relative error
    # -1.2 % to +1.7 % over seeds 0-5 (0.08 % for seed 0)
    torch.manual_seed(0)
    f1 = D.MultivariateNormal(mu1, c1).sample((20000,))
    f2 = D.MultivariateNormal(mu2, c2).sample((20000,))
    assert fid_from_features(f1, f2) == pytest.approx(ref, rel=0.03)


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(JointKLError, match=r"\(N, K\)"):
        inception_score(torch.ones(3))
    with pytest.raises(JointKLError, match="one D"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))
    with pytest.raises(JointKLError, match=r"needs images \(C, H, W\)"):
        domain_classifier("grid25")                                        # labelled, but 2-d points


# ---- the domain classifier on mnist5k ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("data")
        mp.setenv("JOINTKL_DATA", str(folder))
        yield folder


@pytest.fixture(scope="module")
def mnist_clf(data_dir):
    return domain_classifier("mnist5k", FAST)                              # trained once (~20 s on one thread)


def test_classifier_accuracy_and_cache(mnist_clf, data_dir):
    assert mnist_clf.test_accuracy >= 0.95
    ds = load("mnist5k")
    logits, feats = mnist_clf.outputs(ds.test)
    assert (logits.argmax(1) == ds.test_labels).float().mean() == pytest.approx(mnist_clf.test_accuracy)
    assert feats.shape == (1000, FAST.features)
    files = sorted(p.name for p in (data_dir / "classifiers").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")
    again = domain_classifier("mnist5k", FAST)                             # from the cache: same weights
    assert all(torch.equal(a, b) for a, b in zip(mnist_clf.state_dict().values(), again.state_dict().values()))


def test_corrupt_cache_is_detected(mnist_clf, data_dir, tmp_path, monkeypatch):
    import shutil
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    monkeypatch.setenv("JOINTKL_DATA", str(copy))
    weights = next((copy / "classifiers").glob("*.safetensors"))
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(JointKLError, match="SHA-256.*delete both files"):
        domain_classifier("mnist5k", FAST)


def test_real_digits_score_near_the_number_of_classes(mnist_clf):
    scores = classifier_scores(load("mnist5k").test, "mnist5k", FAST)
    # seeds 0-2: IS of the 1,000 test digits 9.00-9.11 with 6 epochs (9.68 with the default 30)
    assert 8.5 < scores["is"] <= 10 and scores["is"] == scores["is_test"]
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)                    # the test split against itself


def test_fid_near_zero_for_real_data_and_growing_with_noise(mnist_clf):
    x = load("mnist5k").test
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    fid = [classifier_scores((x + s * noise).clamp(0, 1), "mnist5k", FAST)["fid"] for s in (0.05, 0.1, 0.2, 0.4)]
    real = classifier_scores(load("mnist5k").train[:1000], "mnist5k", FAST)["fid"]
    # measured (seed 0): real train digits 4.7; noise 0.05 / 0.1 / 0.2 / 0.4: 2.3 / 10.4 / 52 / 219
    assert all(a < b for a, b in zip(fid, fid[1:]))
    assert real < 0.2 * fid[2]


def test_scores_do_not_depend_on_batch_size(mnist_clf):
    x = load("mnist5k").test[:300]
    a = classifier_scores(x, "mnist5k", FAST, batch_size=300)
    b = classifier_scores(x, "mnist5k", FAST, batch_size=7)
    assert a["is"] == pytest.approx(b["is"], rel=1e-6) and a["fid"] == pytest.approx(b["fid"], rel=1e-6)


def test_binary_samples_meet_a_binarized_reference(mnist_clf):
    fixed = binarize_fixed(load("mnist5k").test)
    assert classifier_scores(fixed, "mnist5k", FAST)["fid"] == pytest.approx(0.0, abs=1e-6)
    assert classifier_scores(binarize_fixed(load("mnist5k").test, seed=1), "mnist5k", FAST)["fid"] < 5


def test_training_is_deterministic_given_the_seed():
    ds = load("digits")
    cfg = ClassifierConfig(epochs=1)
    a, b = (train_classifier(ds.train, ds.train_labels, cfg) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    c = train_classifier(ds.train, ds.train_labels, ClassifierConfig(epochs=1, seed=1))
    assert not torch.equal(a.head[1].weight, c.head[1].weight)


def test_eval_is_fid_on_a_run(data_dir, tmp_path, monkeypatch, cli):
    """`jointkl eval RUN --metrics is,fid` on digits (classifier shortened to 2 epochs)."""
    monkeypatch.setattr(quality, "DEFAULT", ClassifierConfig(epochs=2))
    run = tmp_path / "vae"
    jk.train("vae", data="digits", steps=30, out=run, latent_dim=2, hidden=16, layers=1, log_every=10, ckpt_every=30)
    code, out, err = cli("eval", run, "--metrics", "is,fid", "--n", "200")
    assert code == 0, err
    values = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[1:]}   # after the header line
    assert set(values) == {"is", "fid", "is_test"} and 1 <= values["is"] <= 10 and values["fid"] > 0
    assert "jointkl: error: metric" not in err
    model = jk.load(run)
    with pytest.raises(JointKLError, match="no labels"):
        evaluate(model, jk.data.Dataset("x", load("digits").train, load("digits").test, "image"), ["is"])


# ---- Inception-v3 through torch-fidelity ---------------------------------------------------------------------

def test_inception_needs_its_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("JOINTKL_DATA", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(JointKLError) as e:
        quality.inception_scores(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8))
    msg = str(e.value)
    assert quality.INCEPTION_FILE in msg and str(tmp_path / "inception") in msg and "\n" not in msg
    (tmp_path / "inception").mkdir()
    (tmp_path / "inception" / quality.INCEPTION_FILE).write_bytes(b"not the weights")
    with pytest.raises(JointKLError, match="fails its SHA-256 check"):
        quality.inception_weights()


def test_inception_hook_feeds_torch_fidelity(tmp_path, monkeypatch):
    """With the weights present, images go to torch-fidelity's extractor as 3-channel uint8 (a stand-in module
    here: features = per-channel means, logits favour the brightest third of the image)."""
    monkeypatch.setenv("JOINTKL_DATA", str(tmp_path))
    (tmp_path / "inception").mkdir()
    (tmp_path / "inception" / quality.INCEPTION_FILE).write_bytes(b"weights")
    monkeypatch.setattr(quality, "_sha256", lambda path: "6726825d" + "0" * 56)
    seen = {}

    class Extractor(torch.nn.Module):
        def __init__(self, name, features, feature_extractor_weights_path=None):
            super().__init__()
            seen.update(name=name, features=features, weights=feature_extractor_weights_path)

        def forward(self, x):
            seen.update(dtype=x.dtype, channels=x.shape[1])
            thirds = x.float().flatten(2).mean(1).chunk(3, 1)              # (B, HW/3) x 3
            logits = 20 * torch.stack([t.mean(1) for t in thirds], 1) / 255
            return x.float().flatten(2).mean(2), logits

    monkeypatch.setitem(sys.modules, "torch_fidelity", types.SimpleNamespace(FeatureExtractorInceptionV3=Extractor))
    x = torch.rand(12, 1, 6, 6)
    out = quality.inception_scores(x, x)
    assert seen["dtype"] == torch.uint8 and seen["channels"] == 3 and seen["weights"].endswith(quality.INCEPTION_FILE)
    assert out["fid_inception"] == pytest.approx(0.0, abs=1e-9) and 1 <= out["is_inception"] <= 3
