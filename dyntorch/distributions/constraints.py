"""What a distribution's parameters and values must satisfy (``torch.distributions.constraints``).

Each constraint's ``check(value)`` answers element-wise (over the batch: an event of several
entries is valid only if all its entries are) with a bool tensor.
"""
from __future__ import annotations

from .. import ops as _ops  # noqa: F401  (the Tensor methods used below are attached by ops)
from .._tensor import Tensor

__all__ = ["Constraint", "boolean", "real", "real_vector", "positive", "unit_interval",
           "simplex", "integer_interval", "interval", "greater_than", "less_than",
           "is_dependent"]


def _fmt(bound) -> str:
    return repr(bound.item()) if isinstance(bound, Tensor) and bound.numel() == 1 else repr(bound)


class Constraint:
    """A region a value must lie in; ``event_dim`` entries on the right form one event."""

    is_discrete = False
    event_dim = 0

    def check(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__[1:]}()"


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)


class _Real(Constraint):
    def check(self, value):
        return value == value  # False only for NaN


class _IndependentConstraint(Constraint):
    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int):
        self.base, self.reinterpreted_batch_ndims = base, reinterpreted_batch_ndims
        self.event_dim = base.event_dim + reinterpreted_batch_ndims

    def check(self, value):
        ok = self.base.check(value)
        for _ in range(self.reinterpreted_batch_ndims):
            ok = ok.all(-1)
        return ok

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base!r}, {self.reinterpreted_batch_ndims})"


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return self.lower_bound < value

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={_fmt(self.lower_bound)})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return value < self.upper_bound

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={_fmt(self.upper_bound)})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (self.lower_bound <= value) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        lo, hi = _fmt(self.lower_bound), _fmt(self.upper_bound)
        return f"{type(self).__name__[1:]}(lower_bound={lo}, upper_bound={hi})"


class _IntegerInterval(_Interval):
    is_discrete = True

    def check(self, value):
        return (value % 1 == 0) & super().check(value)


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        return (value >= 0).all(-1) & ((value.sum(-1) - 1).abs() < 1e-6)


class _Dependent(Constraint):
    """A constraint that depends on other parameters; checked by the distribution itself."""

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint: Constraint) -> bool:
    """Whether ``constraint`` is only known once the other parameters are."""
    return isinstance(constraint, _Dependent)


dependent = _Dependent()
boolean = _Boolean()
real = _Real()
real_vector = _IndependentConstraint(real, 1)
positive = _GreaterThan(0.0)
unit_interval = _Interval(0.0, 1.0)
simplex = _Simplex()
integer_interval = _IntegerInterval
interval = _Interval
greater_than = _GreaterThan
less_than = _LessThan
