"""Debugging the graph: step through backward, find the first NaN/Inf, summarise tensors.

- :class:`BackwardStepper` drives the engine's backward generator one node at a time, with
  breakpoints, step-out and step-back.
- :func:`detect_nonfinite` raises :class:`NonFiniteError` at the first NaN/Inf, in forward
  order, naming the op, module scope and the user's source line.
- :class:`Recorder` keeps per-node statistics across training steps, with conditional
  breaks (:class:`BreakpointHit`); :func:`explain` finds the root cause of a NaN/Inf.
- :func:`summary` gives the small, device-computed summary of a tensor that views draw.
"""
from __future__ import annotations

from .explain import Explanation, explain, node_value
from .nonfinite import NonFiniteError, detect_nonfinite
from .recorder import BreakpointHit, NodeSummary, Recorder
from .stepper import BackwardStepper, Breakpoint, Step, schedule
from .summary import Summary, describe_summary, summary

__all__ = ["BackwardStepper", "Breakpoint", "BreakpointHit", "Explanation", "NodeSummary",
           "NonFiniteError", "Recorder", "Step", "Summary", "describe_summary",
           "detect_nonfinite", "explain", "node_value", "schedule", "summary"]

