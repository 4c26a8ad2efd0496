"""The two sides of every model: conditionals p(.|.) and q(.|.) built on torch.distributions."""
from jointkl.joints.codes import Code, CodeDist, uniform_code
from jointkl.joints.conditionals import (Bernoulli, BernoulliPrior, Categorical, Conditional, Delta, Dirac, Gaussian, Implicit,
                                         OnFeatures, decoder, encoder)

__all__ = ["Bernoulli", "BernoulliPrior", "Categorical", "Code", "CodeDist", "Conditional", "Delta", "Dirac", "Gaussian", "Implicit",
           "OnFeatures", "decoder", "encoder", "uniform_code"]
