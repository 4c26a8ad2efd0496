"""Divergence estimators: analytic/Monte-Carlo KL, adversarial density ratios, importance weights."""
