"""The two sides of every model: conditionals p(.|.) and q(.|.) built on torch.distributions."""
from jointkl.joints.conditionals import Bernoulli, Categorical, Conditional, Delta, Dirac, Gaussian, Implicit, decoder

__all__ = ["Bernoulli", "Categorical", "Conditional", "Delta", "Dirac", "Gaussian", "Implicit", "decoder"]
