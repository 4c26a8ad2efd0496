"""Bayesian inference targets and baselines: unnormalized log-densities with exact or reference posteriors
(`eight_schools`), and Gaussian variational Bayes (`vb`) to set beside AVB's neural sampler (`AVBVI`)."""
from jointkl.bayes.eight_schools import EightSchools, EightSchoolsConfig
from jointkl.bayes.vb import GaussianVB, GaussianVBConfig

__all__ = ["EightSchools", "EightSchoolsConfig", "GaussianVB", "GaussianVBConfig"]
