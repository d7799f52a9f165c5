"""``torch.distributions``: probability distributions with sampling and log-densities.

``Categorical``, ``Bernoulli``, ``Normal`` and ``Uniform`` with torch's constructors,
argument validation, ``sample`` / ``rsample`` (where reparameterisable), ``log_prob``,
``entropy``, ``mean``, ``variance`` and ``probs`` / ``logits``. Gradients flow through
``log_prob``, ``entropy`` and ``rsample`` to the parameters (REINFORCE, VAEs).
"""
from . import constraints
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .normal import Normal
from .uniform import Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "constraints"]
