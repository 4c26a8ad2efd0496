"""Training throughput on a matmul-bound VAE: jointkl's Trainer vs a minimal hand-written PyTorch loop vs
pythae 0.1.2's TrainingPipeline (not a test).

The mnist5k VAE 784-512-512-(2x20) / 20-512-512-784 (LeakyReLU MLPs), Bernoulli decoder, Adam lr 1e-3,
batch 100, the 4,000 training digits. All three train the same networks from the same initialization for
the same number of epochs; they alternate within one run so that load from other processes hits all three.
Printed: samples/s of the training loop (jointkl: first to last step, its logging every 100 steps
included; hand: its loop), samples/s end to end (jointkl: Trainer set-up, TensorBoard, the final sample grid
and checkpoint included; pythae: its whole pipeline call, which also saves the model), each by wall clock
and by this process's CPU time (steadier when other processes share the cores), best of the rounds; and the
test ELBO (1,000 test digits, 10 samples) each reached, median of the rounds.

pythae is skipped when it is not importable. Install it for this benchmark only, in a virtual environment of
its own that sees the project's packages (so torch stays the project's build):

    python -m venv /tmp/venv-bench
    echo "import site; site.addsitedir('$PWD/.venv/lib/python3.11/site-packages')" \
        > /tmp/venv-bench/lib/python3.11/site-packages/project.pth
    /tmp/venv-bench/bin/pip install --no-deps pythae==0.1.2 && /tmp/venv-bench/bin/pip install pydantic imageio cloudpickle
    /tmp/venv-bench/bin/python benchmarks/bench_vae_mnist5k.py [--epochs 5] [--rounds 5] [--threads 1] [--bf16]
"""
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")     # pythae's progress bars (read when tqdm is imported)

import argparse  # noqa: E402
import copy  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, jointkl_fit, machine, ratios, report, timed  # noqa: E402

from jointkl.data import load  # noqa: E402
from jointkl.objectives.vae import VAE, VAEConfig  # noqa: E402
from jointkl.training.config import TrainConfig  # noqa: E402
from jointkl.training.trainer import resolve_device  # noqa: E402

BATCH, LATENT = 100, 20


def hand_loop(enc, dec, x: torch.Tensor, steps: int, seed: int) -> None:
    """What a researcher would write: pre-loaded tensor, randperm batches, BCE + analytic KL, torch's Adam."""
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(len(x), generator=g), 0
    for _ in range(steps):
        if pos + BATCH > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        xb = x[perm[pos:pos + BATCH]]
        pos += BATCH
        mu, s = enc(xb).unbind(1)
        std = F.softplus(s) + 1e-3
        z = mu + std * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + std.pow(2) - 1).sum(1) - std.log().sum(1)
        loss = (rec + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def pythae_pipeline(enc, dec, x: torch.Tensor, epochs: int, seed: int, out: str) -> None:
    """pythae's VAE on the same two networks: mean and log-variance from the encoder net, sigmoid of the
    decoder net, its BCE reconstruction loss, trained by its TrainingPipeline with Adam lr 1e-3, batch 100."""
    from pythae.models import VAE as PVAE, VAEConfig as PConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    for name in logging.root.manager.loggerDict:     # pythae's modules log every epoch at INFO
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = enc

        def forward(self, x):
            mu, log_var = self.net(x).unbind(1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = dec

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    model = PVAE(PConfig(input_dim=tuple(x.shape[1:]), latent_dim=LATENT, reconstruction_loss="bce"),
                 encoder=Encoder(), decoder=Decoder())
    cfg = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=1e-3, per_device_train_batch_size=BATCH,
                            optimizer_cls="Adam", seed=seed, no_cuda=True, keep_best_on_train=True)
    TrainingPipeline(training_config=cfg, model=model)(train_data=x)   # (no eval set: keep the last epoch's best)


@torch.no_grad()
def test_elbo(enc, dec, x: torch.Tensor, log_var: bool, k: int = 10) -> float:
    """Mean ELBO over x with k reparameterized samples; the encoder's second output is softplus-std (jointkl,
    hand) or a log-variance (pythae)."""
    torch.manual_seed(0)
    mu, s = enc(x).unbind(1)                                         # (N, d) each
    std = (0.5 * s).exp() if log_var else F.softplus(s) + 1e-3
    rec = sum(-F.binary_cross_entropy_with_logits(dec(mu + std * torch.randn_like(mu)), x, reduction="none")
              .flatten(1).sum(1) for _ in range(k)) / k                # (N,)
    kl = 0.5 * (mu.pow(2) + std.pow(2) - 1).sum(1) - std.log().sum(1)
    return float((rec - kl).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the 4,000 training digits (40 steps each)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-pythae", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="also jointkl with precision=bf16 (bfloat16 autocast)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]: where the hand loop and jointkl train (pythae "
                    "runs on the CPU alone, so it is skipped on any other device)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    ds = load("mnist5k")
    x, x_test = ds.train.to(device), ds.test.to(device)              # (4000, 1, 28, 28) in [0, 1]; (1000, ...)
    steps = a.epochs * len(x) // BATCH
    torch.manual_seed(0)
    init = VAE(VAEConfig(latent_dim=LATENT, hidden=512, layers=2, decoder="bernoulli"), ds.shape, ds.kind)
    nets = lambda m: (m.q_z.net, m.p_x.net)  # noqa: E731
    tmp = tempfile.mkdtemp()

    n_steps = lambda r: steps if r >= 0 else 5     # noqa: E731  (r = -1: the warm-up call)

    def hand(r):
        enc, dec = nets(copy.deepcopy(init).to(device))
        torch.manual_seed(max(r, 0))
        res = timed(lambda: (hand_loop(enc, dec, x, n_steps(r), max(r, 0)), sync()))
        return {**res, "elbo": test_elbo(enc, dec, x_test, log_var=False)}

    def jointkl(precision: str):
        def run(r):
            model = copy.deepcopy(init)
            cfg = TrainConfig(steps=n_steps(r), batch_size=BATCH, seed=max(r, 0), log_every=100, ckpt_every=10**9,
                              device=str(device), precision=precision)
            res = jointkl_fit(model, ds, cfg, Path(tempfile.mkdtemp(dir=tmp)))   # its per-update loss check syncs
            return {**res, "elbo": test_elbo(*nets(model), x_test, log_var=False)}    # the ELBO in float32
        return run

    def pythae(r):   # its loop is inside its pipeline: end to end only
        enc, dec = nets(copy.deepcopy(init))
        res = timed(lambda: pythae_pipeline(enc, dec, x if r >= 0 else x[:5 * BATCH], a.epochs if r >= 0 else 1,
                                            max(r, 0), tempfile.mkdtemp(dir=tmp)))
        return {"end_to_end": res["end_to_end"], "cpu_end_to_end": res["cpu_end_to_end"],
                "elbo": test_elbo(enc, dec, ds.test, log_var=True)}

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)   # the hand loop's last kernels
    contenders = {"hand": hand, "jointkl": jointkl("fp32")}
    if a.bf16:
        contenders["jointkl bf16"] = jointkl("bf16")
    if a.no_pythae:
        pass
    elif device.type != "cpu":
        print(f"pythae trains on the CPU alone: skipped on {device}")
    elif importlib.util.find_spec("pythae") is None:
        print("pythae is not importable: skipped (see this file's docstring)")
    else:
        contenders["pythae"] = pythae
    print(f"machine: {machine()}")
    print(f"mnist5k VAE on {device}, {a.epochs} epochs = {steps} steps of batch {BATCH}, {a.rounds} rounds, "
          "contenders alternate")
    rates = report(alternate(contenders, a.rounds), steps * BATCH, "training samples/s", extra=("elbo",))
    ratios(rates, "jointkl", "hand")
    if "pythae" in contenders:
        ratios(rates, "jointkl", "pythae")
    if a.bf16:
        ratios(rates, "jointkl bf16", "jointkl")
        if "pythae" in contenders:
            ratios(rates, "jointkl bf16", "pythae")
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
