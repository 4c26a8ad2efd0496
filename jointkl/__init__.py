"""jointkl: deep generative models as one idea — a KL between a generative and an inference joint,
with adversaries where a density ratio is intractable."""
from jointkl.api import load, train
from jointkl.errors import JointKLError
from jointkl.objectives import MODELS

__version__ = "0.1.0"
__all__ = ["JointKLError", "MODELS", "load", "train"]
