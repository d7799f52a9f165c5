"""``torch.multiprocessing.spawn``: run ``fn(i, *args)`` in ``nprocs`` processes."""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import traceback
from collections.abc import Callable
from typing import Any


class ProcessException(Exception):
    """A child process of :func:`spawn` failed."""

    def __init__(self, msg: str, error_index: int, pid: int):
        super().__init__(msg)
        self.msg, self.error_index, self.pid = msg, error_index, pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A child raised; the message holds its traceback."""


class ProcessExitedException(ProcessException):
    """A child ended with a non-zero exit code (or a signal) without raising."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int,
                 signal_name: str | None = None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code, self.signal_name = exit_code, signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code,
                            self.signal_name)


def _wrap(fn: Callable, i: int, args: tuple, error_queue) -> None:
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:
        error_queue.put(traceback.format_exc())
        raise SystemExit(1) from None


class ProcessContext:
    """The processes started by :func:`start_processes`; ``join()`` waits and re-raises."""

    def __init__(self, processes: list, error_queues: list):
        self.processes = processes
        self.error_queues = error_queues

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the processes; True once all ended well, False while some still run.

        Raises ``ProcessRaisedException`` (or ``ProcessExitedException``) for the first child
        that failed, after terminating the others.
        """
        sentinels = {p.sentinel: i for i, p in enumerate(self.processes) if p.is_alive()
                     or p.exitcode is None}
        if sentinels:
            multiprocessing.connection.wait(list(sentinels), timeout=timeout)
        failed = next((i for i, p in enumerate(self.processes)
                       if p.exitcode not in (None, 0)), None)
        if failed is None:
            if all(p.exitcode == 0 for p in self.processes):
                for p in self.processes:
                    p.join()
                return True
            return False
        for p in self.processes:
            if p.is_alive():
                p.terminate()
            p.join()
        proc, q = self.processes[failed], self.error_queues[failed]
        if not q.empty():
            raise ProcessRaisedException(
                f"\n\n-- Process {failed} terminated with the following error:\n{q.get()}",
                failed, proc.pid)
        code = proc.exitcode
        if code < 0:
            import signal

            name = signal.Signals(-code).name
            raise ProcessExitedException(f"process {failed} terminated with signal {name}",
                                         failed, proc.pid, code, name)
        raise ProcessExitedException(f"process {failed} terminated with exit code {code}",
                                     failed, proc.pid, code)


def start_processes(fn: Callable, args: tuple = (), nprocs: int = 1, join: bool = True,
                    daemon: bool = False, start_method: str = "spawn") -> Any:
    """Start ``nprocs`` processes running ``fn(i, *args)`` with the given start method.

    Returns None after all ended well when ``join``, else the :class:`ProcessContext`.
    """
    if nprocs < 1:
        raise ValueError(f"start_processes(): nprocs must be at least 1, got {nprocs}")
    ctx = multiprocessing.get_context(start_method)
    procs, queues = [], []
    for i in range(nprocs):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=_wrap, args=(fn, i, args, q), daemon=daemon)
        p.start()
        procs.append(p)
        queues.append(q)
    context = ProcessContext(procs, queues)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn: Callable, args: tuple = (), nprocs: int = 1, join: bool = True,
          daemon: bool = False, start_method: str = "spawn") -> Any:
    """``torch.multiprocessing.spawn``: :func:`start_processes`, ``spawn`` by default."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
