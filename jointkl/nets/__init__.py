"""Networks only; no loss code lives here."""
from jointkl.nets.mlp import MLP

__all__ = ["MLP"]
