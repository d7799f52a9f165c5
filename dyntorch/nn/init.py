"""``dyntorch.nn.init``."""
