"""``torch.distributions``: probability distributions with sampling and log-densities.

``Categorical``, ``Bernoulli``, ``Normal`` and ``Uniform`` with torch's constructors,
argument validation, ``sample`` / ``rsample`` (where reparameterisable), ``log_prob``,
``entropy``, ``mean``, ``variance`` and ``probs`` / ``logits``, and ``kl_divergence``
between two of one family. Gradients flow through ``log_prob``, ``entropy``, ``rsample``
and ``kl_divergence`` to the parameters (REINFORCE, VAEs).
"""
from . import constraints
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .kl import kl_divergence, register_kl
from .normal import Normal
from .uniform import Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "constraints",
           "kl_divergence", "register_kl"]
