"""``dyntorch.nn.utils``."""
