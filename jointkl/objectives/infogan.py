"""InfoGAN (Chen et al. 2016) in Hu et al.'s formulation: a GAN whose generated samples must also let a
code-inference net q_eta(c|x) recover (part of) the latent code (Hu eq. 9, Table 1).

    generative joint   p_theta(x, y) p(y): x = G(z, c) for y=0 (fake), x ~ p_data for y=1 (real)   (Hu eq. 4)
                       z ~ N(0, I), c = (one categorical code with n_categorical classes, uniform;
                       n_continuous codes ~ U(-1, 1))                                     (Chen et al. Sec. 5)
    inference joint    q_eta(c|x, y) q_phi(y|x): D(x) = q_phi(y=1|x), q_eta(c|x, y=0) = Q(c|x); the real
                       side has no code, so q_eta(c|x, y=1) is fixed and eta lives only on y=0      (Hu Sec. 3.2)
    KL direction       KL(p_theta(x|y) || q^r(x|c, y)) per generator step, minus a JSD             (Hu eq. 10)
    estimators         D by logistic regression (Hu eq. 3, left); G and Q maximize
                       E log q_eta(c|x, y) q^r_phi(y|x) (Hu eq. 9, right), i.e.
    losses             disc:  -E_data log D(x) - E_fake log(1 - D(x))
                       gen:   -E_{z,c} log D(G(z, c)) + info * E_{z,c} -log Q(c | G(z, c))

The last term is Chen et al.'s variational lower bound on I(c; G(z, c)) up to the constant H(c), with
weight lambda = `info`. Q is a categorical over the discrete code and a Gaussian with a predicted mean and
std over the continuous codes. Q reads x by its own network, or, with `q_on_disc_features`, D's last
hidden layer as in Chen et al.: then D's body also learns from the info term in the "disc" update,
as in their code, while the "gen" update trains G and Q's head. `encode(x)` is the inferred code: the
probabilities of the categorical code, then the means of the continuous codes; `classify(x)` the most
probable category; `decode(c)` generates from a code with the noise at its mean 0 (or from a full
latent [z, one-hot c, continuous c]).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributions as D
import torch.nn.functional as F

from jointkl.divergences.ratio import discriminator_loss, generator_loss
from jointkl.errors import JointKLError
from jointkl.joints import Dirac
from jointkl.nets import MLP
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class InfoGANConfig:
    latent_dim: int = 8              # incompressible noise z (the model's `latent_dim` counts z plus the code)
    n_categorical: int = 10          # classes of the one categorical code (0: none)
    n_continuous: int = 2            # continuous codes, each U(-1, 1)
    info: float = 1.0                # lambda, the weight of -log Q(c|x) (Chen et al.: 1 for discrete codes)
    hidden: int = 128
    layers: int = 3
    loss: str = "nonsaturating"      # generator loss: nonsaturating (Hu eq. 9) | minimax
    q_on_disc_features: bool = False  # Q is a head on D's last hidden layer (Chen et al.) instead of a net
    min_std: float = 1e-2            # floor of Q's std over the continuous codes
    lr: float = 1e-3                 # G and Q
    lr_d: float | None = None        # D; defaults to lr
    betas: tuple[float, float] = (0.5, 0.999)


@register
class InfoGAN(Objective):
    """InfoGAN: GAN plus a code-inference net Q(c|x) on generated samples (Hu eq. 9; Chen et al. 2016)."""

    name, Config = "infogan", InfoGANConfig

    def __init__(self, cfg: InfoGANConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        generator_loss(torch.zeros(1), cfg.loss)                   # validate the loss name at construction
        if cfg.n_categorical < 0 or cfg.n_continuous < 0 or cfg.n_categorical + cfg.n_continuous == 0:
            raise JointKLError("infogan needs a code: set n_categorical >= 2 or n_continuous >= 1 "
                               f"(got n_categorical={cfg.n_categorical}, n_continuous={cfg.n_continuous})")
        if cfg.n_categorical == 1:
            raise JointKLError("n_categorical=1 is a constant code; use n_categorical >= 2 or 0")
        if cfg.q_on_disc_features and cfg.layers < 1:
            raise JointKLError("q_on_disc_features needs a hidden layer in D; set layers >= 1")
        x_dim = int(torch.Size(data_shape).numel())
        self.code_dim = cfg.n_categorical + cfg.n_continuous
        self.G = Dirac(cfg.latent_dim + self.code_dim, data_shape, cfg.hidden, cfg.layers)
        self.D = MLP(x_dim, 1, cfg.hidden, cfg.layers)
        q_out = cfg.n_categorical + 2 * cfg.n_continuous           # logits, then means and std logits
        # on D's features Q is a linear head (Chen et al.); otherwise a net of its own reading x
        self.Q = MLP(cfg.hidden, q_out, cfg.hidden, 0) if cfg.q_on_disc_features else \
            MLP(x_dim, q_out, cfg.hidden, cfg.layers)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim + self.code_dim

    def players(self):
        c = self.cfg
        return [Player("disc", list(self.D.parameters()), c.lr_d or c.lr, c.betas),
                Player("gen", [*self.G.parameters(), *self.Q.parameters()], c.lr, c.betas)]

    # --- the joints ----------------------------------------------------------------------------------
    def prior(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z ~ N(0, I), categorical index ~ uniform, continuous codes ~ U(-1, 1)."""
        c, like = self.cfg, next(self.parameters())                           # the model's device and dtype
        z = torch.randn(n, c.latent_dim, device=like.device, dtype=like.dtype)    # (n, latent_dim)
        k = torch.randint(max(c.n_categorical, 1), (n,), device=like.device)      # (n,)
        u = torch.rand(n, c.n_continuous, device=like.device, dtype=like.dtype) * 2 - 1   # (n, n_continuous)
        return z, k, u

    def code(self, k: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(k, self.cfg.n_categorical).to(u.dtype) if self.cfg.n_categorical else u[:, :0]
        return torch.cat([one_hot, u], 1)                                    # (n, code_dim)

    def generate(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.G(latent).rsample()                                         # (B, *data_shape)
        return x if self.data_kind == "continuous" else torch.sigmoid(x)

    def discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's last hidden layer and its logit."""
        h = self.D.net[:-1](x.flatten(1))                                    # (B, hidden)
        return h, self.D.net[-1](h).squeeze(1)                               # (B, hidden), (B,)

    def q_c(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[D.Distribution | None, ...]:
        """Q(c|x): a categorical over the discrete code and a Gaussian over the continuous codes."""
        c = self.cfg
        out = self.Q(h if c.q_on_disc_features else x)                       # (B, n_cat + 2 n_cont)
        logits, mu, s = out.split([c.n_categorical, c.n_continuous, c.n_continuous], 1)
        cat = D.Categorical(logits=logits) if c.n_categorical else None
        cont = D.Independent(D.Normal(mu, F.softplus(s) + c.min_std), 1) if c.n_continuous else None
        return cat, cont

    def info_nll(self, x: torch.Tensor, h: torch.Tensor | None, k: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """-log Q(c|x) per example, the (negative) variational bound on I(c; x) minus H(c). (B,)"""
        cat, cont = self.q_c(x, h)
        nll = torch.zeros(x.shape[0], device=x.device)
        if cat is not None:
            nll = nll - cat.log_prob(k)
        if cont is not None:
            nll = nll - cont.log_prob(u)
        return nll

    # --- Hu eq. 9 --------------------------------------------------------------------------------------
    def loss(self, player, x):
        z, k, u = self.prior(x.shape[0])
        if player == "disc":
            with torch.no_grad():
                fake = self.generate(torch.cat([z, self.code(k, u)], 1))
            h_fake, logit_fake = self.discriminate(fake)
            logit_real = self.discriminate(x)[1]
            loss = discriminator_loss(logit_real, logit_fake)
            logs = {"d_real": logit_real.mean(), "d_fake": logit_fake.mean()}
            if self.cfg.q_on_disc_features:                                   # the shared body learns Q too
                info = self.info_nll(fake, h_fake, k, u).mean()
                loss, logs["info_nll"] = loss + self.cfg.info * info, info
            return loss, logs
        fake = self.generate(torch.cat([z, self.code(k, u)], 1))              # (B, *data_shape)
        h, logit = self.discriminate(fake)
        adv = generator_loss(logit, self.cfg.loss)
        info = self.info_nll(fake, h, k, u).mean()
        return adv + self.cfg.info * info, {"adv": adv, "info_nll": info}

    # --- capabilities ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n):
        z, k, u = self.prior(n)
        return self.generate(torch.cat([z, self.code(k, u)], 1))

    @torch.no_grad()
    def encode(self, x):
        """The inferred code: categorical probabilities, then the continuous codes' means. (B, code_dim)"""
        x = self.check_input(x)
        cat, cont = self.q_c(x, self.discriminate(x)[0] if self.cfg.q_on_disc_features else None)
        parts = ([cat.probs] if cat is not None else []) + ([cont.mean] if cont is not None else [])
        return torch.cat(parts, 1)

    @torch.no_grad()
    def classify(self, x) -> torch.Tensor:
        """The most probable category of the discrete code. (B,) int64"""
        if not self.cfg.n_categorical:
            raise JointKLError("this infogan has no categorical code; train with n_categorical >= 2")
        return self.encode(x)[:, :self.cfg.n_categorical].argmax(1)

    @torch.no_grad()
    def decode(self, c):
        """G from a code (noise z = 0, its mean) of width code_dim, or from a full latent [z, code]."""
        c = torch.as_tensor(c, dtype=torch.float32, device=self.device)
        if c.dim() != 2 or c.shape[1] not in (self.code_dim, self.latent_dim):
            raise JointKLError(f"decode takes codes of shape (N, {self.code_dim}) or latents of shape "
                               f"(N, {self.latent_dim}); got {tuple(c.shape)}")
        if c.shape[1] == self.code_dim and self.code_dim != self.latent_dim:
            c = torch.cat([c.new_zeros(c.shape[0], self.cfg.latent_dim), c], 1)
        return self.generate(c)
