"""Debugging the graph: step through backward, find the first NaN/Inf, summarise tensors.

- :class:`BackwardStepper` drives the engine's backward generator one node at a time, with
  breakpoints, step-out and step-back.
- :func:`detect_nonfinite` raises :class:`NonFiniteError` at the first NaN/Inf, in forward
  order, naming the op, module scope and the user's source line.
- :func:`summary` gives the small, device-computed summary of a tensor that views draw.
"""
from __future__ import annotations

from .nonfinite import NonFiniteError, detect_nonfinite
from .stepper import BackwardStepper, Breakpoint, Step, schedule
from .summary import Summary, describe_summary, summary

__all__ = ["BackwardStepper", "Breakpoint", "NonFiniteError", "Step", "Summary",
           "describe_summary", "detect_nonfinite", "schedule", "summary"]
