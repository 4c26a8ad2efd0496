"""CVAE against known truths: with linear nets its bounds equal the analytic log-likelihoods of a linear-Gaussian
class-conditional model (and IWAE closes the gap of a too-wide encoder); the conditional models and the IW/AA
switches from the CLI; bad labels are one-line errors."""
import pytest
import torch
import torch.distributions as D

import jointkl as jk
from jointkl.errors import JointKLError
from jointkl.objectives.cvae import CVAE, CVAEConfig
from tests.helpers import BC, POST_COV, SIGMA, exact_posterior, linear_model


def test_cvae_linear_gaussian_bounds_are_the_analytic_log_likelihoods():
    assert torch.allclose(POST_COV, torch.diag(POST_COV.diagonal()), atol=1e-7)      # W^T W diagonal
    torch.manual_seed(0)
    m = linear_model(CVAE, CVAEConfig)
    x = D.MultivariateNormal(BC[1], SIGMA).sample((6,))
    log_px_c, log_px = exact_posterior(x)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    # q(z|x, c) is the exact posterior: every log-weight is log p(x|c), so even a 1-draw ELBO is exact
    assert torch.allclose(m.log_likelihood(x, "elbo", k=1, y=y), log_px_c[y, torch.arange(6)], atol=1e-4)
    assert torch.allclose(m.log_likelihood(x, "iwae", k=5), log_px, atol=1e-4)   # marginal over c
    assert torch.equal(m.classify(x), log_px_c.argmax(0))                          # the Bayes classifier


def test_cvae_with_a_wider_encoder_has_a_gap_that_iwae_closes():
    torch.manual_seed(0)
    m = linear_model(CVAE, CVAEConfig)
    with torch.no_grad():                                          # std 1.5x the posterior's: a loose q
        std = 1.5 * POST_COV.diagonal().sqrt()
        m.q_z.net.net[0].bias[2:].copy_(torch.log(torch.expm1(std - m.q_z.min_std)))
    x = D.MultivariateNormal(BC[0], SIGMA).sample((4,))
    y = torch.zeros(4, dtype=torch.long)
    exact = exact_posterior(x)[0][0]
    elbo, iwae = m.log_likelihood(x, "elbo", k=20000, y=y), m.log_likelihood(x, "iwae", k=2000, y=y)
    assert (elbo < exact - 0.2).all()                                # measured gap 0.42 to 0.46 nats, seeds 0-4
    assert (iwae - exact).abs().max() < 0.05                         # measured at most 0.020, seeds 0-4


# --- user-facing paths ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("model,opts", [("cgan", ["iw=true"]), ("cvae", ["aa=true"]), ("svae", ["aa=true", "labelled=0.1"]),
                                        ("vae", ["aa=true", "aa_temperature=3"]), ("gan", ["iw=true"])])
def test_cli_trains_and_samples(cli, tmp_path, model, opts):
    run = tmp_path / model
    code, _, err = cli("train", model, "--data", "digits", "--steps", "3", "--out", run, "hidden=16", "layers=1",
                       "latent_dim=2", "batch_size=16", "device=cpu", "binarize=dynamic", *opts)
    assert code == 0, err
    code, _, err = cli("sample", run, "--n", "5", "--out", tmp_path / "x.npy")
    assert code == 0, err
    m = jk.load(run, device="cpu")
    if model in ("cgan", "cvae", "svae"):
        assert m.sample(4, y=torch.tensor([0, 1, 2, 3])).shape == (4, 1, 8, 8)
    if model in ("cvae", "svae"):
        x = jk.data.load("digits").test[:5]
        assert m.encode(x).shape == (5, 2) and m.classify(x).shape == (5,)
        assert m.log_likelihood(x, "iwae", k=3).shape == (5,)


def test_bad_labels_are_one_line_errors(tmp_path):
    for model in ("cvae", "svae", "cgan"):                          # grid25 has 25 labels, classes=10 by default
        with pytest.raises(JointKLError, match="out of range for classes=10; set classes="):
            jk.train(model, data="grid25", steps=1, out=tmp_path / model, hidden=8, layers=1)
    with pytest.raises(JointKLError, match="set labelled=1"):
        jk.train("cgan", data="digits", steps=1, out=tmp_path / "b", hidden=8, layers=1, labelled=0.5)
    with pytest.raises(JointKLError, match="needs labelled data"):
        jk.train("svae", data=torch.rand(100, 3), steps=1, out=tmp_path / "c", hidden=8, layers=1)
    with pytest.raises(JointKLError, match="aa_temperature"):
        jk.train("vae", data="digits", steps=1, out=tmp_path / "d", aa=True, aa_temperature=0.0)
