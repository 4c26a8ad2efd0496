"""jointkl: deep generative models as one idea — a KL between a generative and an inference joint,
with adversaries where a density ratio is intractable."""
from jointkl.api import load, train
from jointkl.errors import JointKLError
from jointkl.objectives import MODELS

import importlib.metadata

try:                                     # one source: pyproject.toml's version, as installed
    __version__ = importlib.metadata.version("jointkl")
except importlib.metadata.PackageNotFoundError:   # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["JointKLError", "MODELS", "load", "train"]
