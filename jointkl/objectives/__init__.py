"""One paper model per file; importing this package registers them all."""
from jointkl.objectives import aae, ali, avb, dali, em, gan, vae  # noqa: F401
from jointkl.objectives import ada, infogan, wake_sleep  # noqa: F401  (Hu et al. 2018)
from jointkl.objectives import cgan, cvae, svae  # noqa: F401  (Hu et al. 2018: conditional, semi-supervised)
from jointkl.objectives import alice, beta_vae, sngan, unrolled_gan, vaegan, veegan  # noqa: F401  (issue 23)
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import MODELS, get, register

__all__ = ["MODELS", "Objective", "Player", "get", "register"]
