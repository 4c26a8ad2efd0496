"""Eight Schools (Gelman et al., BDA 5.5; AVB Sec. 5.1, Fig. 3-4): a 10-d posterior as a target for Bayes.

    likelihood   y_i ~ N(mu + tau * eta_i, sigma_i^2), i = 1..8                     (AVB Sec. 5.1, non-centred)
    prior        "paper": mu, tau, eta_i ~ N(0, s^2), s = `prior_scale` (AVB Sec. 5.1: s = 1), tau unconstrained,
                 so the posterior is symmetric under (tau, eta) -> (-tau, -eta) and bimodal in tau when the data
                 favour |tau| > 0; "gelman": mu ~ N(0, 5^2), tau ~ HalfCauchy(5), eta_i ~ N(0, 1), sampled as
                 u = log tau (the log-Jacobian u enters the density)
    z            (mu, u, eta_1..eta_8) in R^10, u = tau ("paper") or log tau ("gelman"); `log_joint(z)` is
                 log p(y, z) for a (N, 10) batch, the unnormalized target of every method (VB, AVB, NUTS)

Exact posterior by quadrature (no Monte Carlo): eta integrates out, y_i | mu, tau ~ N(mu, v_i),
v_i = sigma_i^2 + a^2 tau^2 (a the prior std of eta); given tau the prior on mu is conjugate, mu | tau, y ~ N(m, 1/P) with
P = 1/s_mu^2 + sum_i 1/v_i, m = sum_i (y_i / v_i) / P, and p(y | tau) = p(y | m, tau) p(m) / p(m | y, tau); and
eta_i | mu, tau, y is Gaussian. What is left is a 1-d integral over u on a fine grid (trapezoid rule), which gives
every first and second moment, the density of u, and exact i.i.d. draws (u by the grid's inverse CDF, then mu, then
eta, each Gaussian).

`data="avb"`: the authors' public Stan notebook ran on y / 10 with its own sigma (below), not on BDA's numbers.
With BDA's y and sigma and the paper's N(0, 1) priors the likelihood is nearly flat over |tau| < 3
(log p(y | tau) moves by 0.04 nats), the posterior is close to the prior and unimodal, and Gaussian VB is already
near exact; with the authors' data p(tau | y) has modes at +-0.62, 4x the density at 0 (Fig. 4's bimodality).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributions as D

from jointkl.errors import JointKLError

# The authors' rescaled data (their public notebook "Stan-example"): y / 10 and these standard errors.
AVB_Y = (2.8, 0.8, -0.3, 0.7, -0.1, 0.1, 1.8, 1.2)
AVB_SIGMA = (0.8, 0.5, 0.8, 0.6, 0.5, 0.6, 0.5, 0.4)


@dataclass(frozen=True)
class EightSchoolsConfig:
    prior: str = "paper"        # paper: N(0, prior_scale^2) on mu, tau, eta (AVB Sec. 5.1) | gelman (BDA, log tau)
    data: str = "avb"           # avb: the authors' y/10 and sigma (see module docstring) | gelman: BDA's y, sigma
    prior_scale: float = 1.0    # "paper" prior std (AVB Sec. 5.1: 1; the authors' notebook: 100)
    grid: int = 200_001         # quadrature points over u (moments agree with 800,001 points to 1e-14; so do 20,001)


class EightSchools:
    """The target: `log_joint(z)`, exact moments and draws by quadrature, and a cached NUTS reference."""

    def __init__(self, cfg: EightSchoolsConfig = EightSchoolsConfig()):
        if cfg.prior not in ("paper", "gelman"):
            raise JointKLError(f"eight schools prior={cfg.prior!r} is not known; choose paper or gelman")
        if cfg.data not in ("avb", "gelman"):
            raise JointKLError(f"eight schools data={cfg.data!r} is not known; choose avb or gelman")
        if not cfg.prior_scale > 0 or cfg.grid < 1001:
            raise JointKLError("eight schools needs prior_scale > 0 and grid >= 1001; raise them")
        self.cfg = cfg
        if cfg.data == "avb":
            self.y, self.sigma = torch.tensor(AVB_Y, dtype=torch.float64), torch.tensor(AVB_SIGMA, dtype=torch.float64)
        else:
            from jointkl.data import load
            ds = load("eight_schools")
            self.y, self.sigma = ds.meta["y"].double(), ds.meta["sigma"].double()
        s = cfg.prior_scale
        self.s_mu, self.s_eta = (s, s) if cfg.prior == "paper" else (5.0, 1.0)
        self.dim = 2 + len(self.y)

    def priors(self, like: torch.Tensor) -> tuple[D.Distribution, D.Distribution, D.Distribution]:
        """p(mu), p(u), p(eta_i) with parameters in `like`'s dtype and device (float64 stays exact). p(u): tau itself,
        or log tau with HalfCauchy(5) on tau (TransformedDistribution adds the log-Jacobian u)."""
        t = like.new_tensor
        p_u = (D.Normal(t(0.0), t(self.s_mu)) if self.cfg.prior == "paper"
               else D.TransformedDistribution(D.HalfCauchy(t(5.0)), [D.ExpTransform().inv]))
        return D.Normal(t(0.0), t(self.s_mu)), p_u, D.Normal(t(0.0), t(self.s_eta))

    def tau(self, u: torch.Tensor) -> torch.Tensor:
        return u if self.cfg.prior == "paper" else u.exp()

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """log p(y, z) for z (N, 10) = (mu, u, eta_1..8), in z's dtype. (N,)"""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise JointKLError(f"eight schools log_joint needs a (N, {self.dim}) batch; got {tuple(z.shape)}")
        y, sigma = self.y.to(z), self.sigma.to(z)
        mu, u, eta = z[:, 0], z[:, 1], z[:, 2:]                                     # (N,), (N,), (N, 8)
        p_mu, p_u, p_eta = self.priors(z)
        log_prior = p_mu.log_prob(mu) + p_u.log_prob(u) + p_eta.log_prob(eta).sum(-1)
        theta = mu[:, None] + self.tau(u)[:, None] * eta                            # (N, 8) school effects
        return log_prior + D.Normal(theta, sigma).log_prob(y).sum(-1)

    # ---- exact posterior by 1-d quadrature -----------------------------------------------------------------
    def _u_grid(self) -> torch.Tensor:
        if self.cfg.prior == "paper":        # no mass beyond 12 prior std, nor where tau eta is 50x the data's scale
            lim = min(12 * self.s_mu, 50 * float(self.y.abs().max() + self.sigma.max()) / self.s_eta)
            return torch.linspace(-lim, lim, self.cfg.grid, dtype=torch.float64)
        return torch.linspace(-25.0, 12.0, self.cfg.grid, dtype=torch.float64)  # log tau; HalfCauchy tails ~1/tau

    def _conditionals(self, u: torch.Tensor):
        """Given u (G,): log p(u, y) (G,), mu | u, y ~ N(m, 1/P) (G,) each, and eta_i = c_i (y_i - mu) + N(0, w_i)."""
        tau = self.tau(u)[:, None]                                                  # (G, 1)
        v = self.sigma**2 + self.s_eta**2 * tau**2                                  # (G, 8) var of y_i | mu, tau
        prec = 1 / self.s_mu**2 + (1 / v).sum(1)                                    # (G,)
        m = (self.y / v).sum(1) / prec                                              # (G,)
        p_mu, p_u, _ = self.priors(u)
        log_py = (D.Normal(m[:, None], v.sqrt()).log_prob(self.y).sum(1) + p_mu.log_prob(m)
                  - D.Normal(m, prec.rsqrt()).log_prob(m))                          # p(y|u) = p(y|m,u) p(m) / p(m|y,u)
        w = 1 / (1 / self.s_eta**2 + tau**2 / self.sigma**2)                        # (G, 8) var of eta_i | mu, tau, y
        c = w * tau / self.sigma**2                                                 # (G, 8)
        return p_u.log_prob(u) + log_py, m, prec, c, w

    def exact(self) -> dict[str, torch.Tensor]:
        """Posterior moments in z-space: mean (10,), var (10,), E|tau|, E[tau eta_i] = E[theta_i - mu] (8,),
        log p(y) (the evidence), and the density of u on the grid ("u", "density_u")."""
        u = self._u_grid()
        log_pu, m, prec, c, w = self._conditionals(u)
        dens = (log_pu - log_pu.max()).exp()                                        # (G,) unnormalized
        norm = torch.trapezoid(dens, u)
        wts = dens / norm                                                           # (G,) the density of u | y

        def e(f):                                                                   # E[f(u)] by the trapezoid rule
            return torch.trapezoid(wts * f, u) if f.dim() == 1 else torch.trapezoid(wts[:, None] * f, u, dim=0)
        r = self.y - m[:, None]                                                     # (G, 8) y_i - E[mu | u]
        tau = self.tau(u)
        mean = torch.cat([e(m)[None], e(u)[None], e(c * r)])                        # E[eta_i|u] = c_i (y_i - m)
        second = torch.cat([e(m**2 + 1 / prec)[None], e(u**2)[None], e(w + c**2 * (r**2 + 1 / prec[:, None]))])
        return {"mean": mean, "var": second - mean**2, "abs_tau": e(tau.abs()), "tau_eta": e(tau[:, None] * c * r),
                "log_evidence": log_pu.max() + norm.log(), "u": u, "density_u": wts}

    def exact_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n i.i.d. posterior draws (n, 10) in float64: u by inverse CDF on the grid (uniform within a cell), then
        mu | u, y and eta | mu, u, y, both Gaussian."""
        u = self._u_grid()
        log_pu, *_ = self._conditionals(u)
        p = (log_pu - log_pu.max()).exp()
        cell = (p[1:] + p[:-1]) / 2                                                 # (G-1,) trapezoid mass per cell
        i = torch.multinomial(cell / cell.sum(), n, replacement=True, generator=generator)
        ui = u[i] + (u[1] - u[0]) * torch.rand(n, dtype=torch.float64, generator=generator)   # (n,)
        _, m, prec, c, w = self._conditionals(ui)
        eps = torch.randn(n, 9, dtype=torch.float64, generator=generator)
        mu = m + prec.rsqrt() * eps[:, 0]                                           # (n,)
        eta = c * (self.y - mu[:, None]) + w.sqrt() * eps[:, 1:]                    # (n, 8)
        return torch.cat([mu[:, None], ui[:, None], eta], 1)

    # ---- NUTS reference, cached ------------------------------------------------------------------------
    def nuts_cache(self, chains: int, warmup: int, draws: int, seed: int = 0,
                   cache_dir: str | Path | None = None) -> tuple[Path, dict]:
        """Where `nuts` caches these settings, and the settings the file name hashes."""
        settings = {**asdict(self.cfg), "y": self.y.tolist(), "sigma": self.sigma.tolist(), "chains": chains,
                    "warmup": warmup, "draws": draws, "seed": seed, "version": 1}
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        if cache_dir is None:
            from jointkl.data.files import data_dir
            cache_dir = data_dir() / "eight_schools"
        return Path(cache_dir) / f"eight-schools-nuts-{key}.npz", settings

    def nuts(self, chains: int = 4, warmup: int = 1000, draws: int = 5000, seed: int = 0,
             cache_dir: str | Path | None = None, workers: int = 1) -> dict[str, np.ndarray]:
        """Pyro NUTS on -log_joint (float64), `chains` chains from N(0, I) starts (`run_nuts`); draws
        (chains * draws, 10), plus "ess" (10,) and "rhat" (10,) from Pyro's diagnostics. Cached as
        `cache_dir/eight-schools-nuts-<key>.npz` (default: $JOINTKL_DATA/eight_schools), the key a hash of the
        target and these settings; a cached file is loaded, never recomputed."""
        path, settings = self.nuts_cache(chains, warmup, draws, seed, cache_dir)
        if path.exists():
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        out = run_nuts(self.cfg, chains, warmup, draws, seed, workers)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **out, settings=json.dumps(settings))
        os.replace(tmp, path)                                                       # never half a cache file
        return {**out, "settings": np.array(json.dumps(settings))}


def _chain(cfg: EightSchoolsConfig, seed: int, warmup: int, draws: int) -> torch.Tensor:
    """One NUTS chain (Pyro's default adaptation: step size and diagonal mass matrix) on -log_joint in float64,
    started from N(0, I). (draws, 10)"""
    try:
        import pyro
        from pyro.infer import MCMC, NUTS
    except ImportError:
        raise JointKLError("the NUTS reference needs Pyro; install it with pip install 'jointkl[bayes]' "
                           "(or pip install pyro-ppl)") from None
    torch.set_num_threads(1)
    es = EightSchools(cfg)
    pyro.set_rng_seed(seed)
    kernel = NUTS(potential_fn=lambda p: -es.log_joint(p["z"][None])[0])
    mcmc = MCMC(kernel, num_samples=draws, warmup_steps=warmup, disable_progbar=True,
                initial_params={"z": torch.randn(es.dim, dtype=torch.float64)})
    mcmc.run()
    return mcmc.get_samples()["z"]


def run_nuts(cfg: EightSchoolsConfig, chains: int, warmup: int, draws: int, seed: int,
             workers: int = 1) -> dict[str, np.ndarray]:
    """`chains` independent chains (seeds seed*1000 + c), `workers` processes at a time (spawned, one thread each):
    draws (chains * draws, 10), chain after chain, and Pyro's "ess" (10,) and split "rhat" (10,)."""
    seeds = [seed * 1000 + c for c in range(chains)]
    if workers > 1 and chains > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(workers, chains), mp_context=mp.get_context("spawn")) as pool:
            z = list(pool.map(_chain, [cfg] * chains, seeds, [warmup] * chains, [draws] * chains))
    else:
        z = [_chain(cfg, s, warmup, draws) for s in seeds]
    z = torch.stack(z)                                                              # (chains, draws, 10)
    from pyro.ops.stats import effective_sample_size, split_gelman_rubin
    return {"samples": z.flatten(0, 1).numpy(), "ess": effective_sample_size(z).numpy(),
            "rhat": split_gelman_rubin(z).numpy()}


def moments_check(samples: torch.Tensor, exact: dict[str, torch.Tensor], ess: torch.Tensor) -> torch.Tensor:
    """z-scores (samples' mean - exact mean) / MCSE for each coordinate's mean and second moment (20,), the MCSE
    from the effective sample size (`ess`, (10,); the same ESS is used for the second moments)."""
    z = samples.double()
    m1, m2 = exact["mean"], exact["var"] + exact["mean"] ** 2
    se1 = (z.var(0) / ess).sqrt()
    se2 = ((z**2).var(0) / ess).sqrt()
    return torch.cat([(z.mean(0) - m1) / se1, ((z**2).mean(0) - m2) / se2])
