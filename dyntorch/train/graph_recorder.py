"""``GraphRecorder``: a Trainer callback that records every training step's graph statistics."""
from __future__ import annotations

from collections.abc import Callable

from ..debug.recorder import NodeSummary, Recorder
from .callbacks import Callback

__all__ = ["GraphRecorder"]


class GraphRecorder(Callback):
    """Run a :class:`dyntorch.debug.Recorder` on the trained module during ``fit``.

    The recorder starts at ``on_fit_start`` (watching the first optimizer for
    update-to-weight ratios) and stops listening at ``on_fit_end`` (or when ``fit`` leaves
    with an error); what it kept stays readable through :attr:`recorder`. A ``break_when``
    that fires raises :class:`dyntorch.debug.BreakpointHit` out of ``trainer.fit`` with a
    stepper over that step's graph.

    Parameters
    ----------
    keep, every, break_when, sample
        As for :class:`~dyntorch.debug.Recorder` (``sample``: arrays of more than twice this
        many entries are summarised on an evenly strided sample, norms and NaN/Inf counts
        excepted; None for exact statistics).
    show : bool
        In a notebook, display the recorder's view below the cell when the first step is
        recorded; it follows training while ``fit`` runs (its slider scrubs the kept steps).
        Outside IPython this does nothing.

    Examples
    --------
    >>> cb = GraphRecorder(keep=100, break_when="nonfinite")
    >>> Trainer(max_epochs=3, callbacks=[cb]).fit(module, loader)
    >>> cb.recorder.history("net.0.weight", "grad_norm")
    >>> Trainer(max_epochs=3, callbacks=[GraphRecorder(show=True)]).fit(module, loader)
    """

    def __init__(self, keep: int = 200, every: int = 1,
                 break_when: Callable[[NodeSummary], bool] | str | None = None,
                 sample: int | None = 4096, show: bool = False) -> None:
        self.keep, self.every, self.break_when, self.sample = keep, every, break_when, sample
        self.show = show
        self.recorder: Recorder | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.close()
        opts = getattr(trainer, "optimizers", None) or []
        self.recorder = Recorder(pl_module, keep=self.keep, every=self.every,
                                 break_when=self.break_when,
                                 optimizer=opts[0] if opts else None, sample=self.sample)
        # fit() leaves with the BreakpointHit and calls no callback: stop listening first
        self.recorder.on_break = lambda hit: self.recorder.close()
        if self.show and _shell() is not None:
            first = self.recorder.register_step_hook(lambda rec, step: _display_once(rec, first))

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.recorder is not None:
            self.recorder.close()


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _display_once(rec: Recorder, handle) -> None:
    """Display ``rec`` (its view, drawn by whichever reader registered one) and stop."""
    handle.remove()
    from IPython.display import display

    display(rec)

