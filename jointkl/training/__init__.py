"""The model-agnostic alternating-update trainer, its config and its checkpoints."""
