"""The base class of every distribution (``torch.distributions.Distribution``)."""
from __future__ import annotations

import dyntorch as torch

from .._tensor import Size, Tensor
from . import constraints
from .utils import lazy_property

_NO_SHAPE = Size()  # the default sample and batch shape (immutable)


class Distribution:
    """Batch of distributions of shape ``batch_shape``, each over events of ``event_shape``.

    With ``validate_args`` (on by default, like torch under ``__debug__``), parameters are
    checked against ``arg_constraints`` when the distribution is made and values against
    ``support`` in ``log_prob``; a violation raises ``ValueError`` naming the parameter, the
    constraint and the offending values.
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__
    arg_constraints: dict[str, constraints.Constraint] = {}
    support: constraints.Constraint | None = None

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument validation on or off for distributions made afterwards."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args() takes True or False, got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=_NO_SHAPE, event_shape=_NO_SHAPE,
                 validate_args: bool | None = None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if not self._validate_args:
            return
        for param, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if param not in self.__dict__ and isinstance(getattr(type(self), param, None),
                                                         lazy_property):
                continue  # the other parametrisation was given; this one is derived
            value = getattr(self, param)
            if not bool(constraint.check(value).all()):
                raise ValueError(
                    f"Expected parameter {param} ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {self!r} to satisfy the constraint "
                    f"{constraint!r}, but found invalid values:\n{value}")

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape=_NO_SHAPE) -> Tensor:
        """Draw ``sample_shape`` samples (no gradient flows back to the parameters)."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=_NO_SHAPE) -> Tensor:
        """Reparameterised sample: gradients flow back to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sampler "
                                  "(has_rsample is False); use sample()")

    def sample_n(self, n: int) -> Tensor:
        return self.sample(Size((n,)))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement icdf")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def perplexity(self) -> Tensor:
        return torch.exp(self.entropy())

    def _extended_shape(self, sample_shape=_NO_SHAPE) -> Size:
        if not isinstance(sample_shape, (tuple, list, Size)):
            raise TypeError(f"sample_shape must be a tuple or torch.Size, got "
                            f"{type(sample_shape).__name__}")
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def _validate_sample(self, value) -> None:
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim = len(self._event_shape)
        if tuple(value.shape[value.dim() - event_dim:]) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: "
                             f"{tuple(value.shape)} vs {tuple(self._event_shape)}.")
        try:
            torch.broadcast_shapes(tuple(value.shape), tuple(self._extended_shape()))
        except RuntimeError:
            raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                             f"{tuple(value.shape)} vs {tuple(self._extended_shape())}.") from None
        support = self.support
        if support is None:
            return
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                f"distribution {self!r}, but found invalid values:\n{value}")

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        vals = [self.__dict__[k] for k in names]
        parts = [f"{k}: {v.item() if v.numel() == 1 else v.size()}" for k, v in zip(names, vals)]
        return f"{type(self).__name__}({', '.join(parts)})"
