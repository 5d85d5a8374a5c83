"""The process group: the MPI communicator every collective runs on, and waits that never hang.

``init()`` reads the MPI environment that ``mpiexec`` sets up (``PMI_RANK``/``PMI_SIZE`` for MPICH's
hydra, ``OMPI_COMM_WORLD_*`` for Open MPI, ``PMIX_RANK``). Outside ``mpiexec`` the world is one
process and no MPI library is loaded at all. Every wait on a non-blocking MPI request goes through
:meth:`ProcessGroup.wait`: it polls ``Test`` against a deadline (``timeout`` seconds, default 60, or
``CHAINRULE_DIST_TIMEOUT``) while answering the liveness pings of other ranks. When the deadline
passes, the rank pings every other rank, names those that do not answer, and raises
:class:`DistributedError`; the process then aborts the MPI job at exit instead of hanging in
``MPI_Finalize`` on a peer that is gone. Likewise a rank that dies of an uncaught exception aborts the
job after printing its traceback (``init`` wraps ``sys.excepthook``, as ``python -m mpi4py`` does), so
the others stop at once instead of waiting out the timeout.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

import numpy as np

_MPI_ENV = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")
_INSTALL = "pip install 'chainrule[mpi]'  (mpi4py>=4 with the mpich wheel, which ships mpiexec)"
_PING, _PONG = 7301, 7302
_DEFAULT_TIMEOUT = 60.0


class DistributedError(RuntimeError):
    """A collective failed or did not complete in time (a rank died, hung or disagreed)."""


def launched_by_mpi() -> bool:
    """Whether this process was started by ``mpiexec`` (its environment says so)."""
    return any(k in os.environ for k in _MPI_ENV)


def import_mpi():
    """mpi4py's ``MPI`` module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"chainrule.distributed needs mpi4py under mpiexec; install it with: {_INSTALL}") from e
    return MPI


def _timeout_from_env(timeout: float | None) -> float:
    if timeout is None:
        raw = os.environ.get("CHAINRULE_DIST_TIMEOUT")
        if raw is None:
            return _DEFAULT_TIMEOUT
        try:
            timeout = float(raw)
        except ValueError:
            raise ValueError(f"CHAINRULE_DIST_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not timeout > 0:
        raise ValueError(f"distributed: timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


class ProcessGroup:
    """The ranks that train together: an MPI communicator (None for a world of one), its rank and size,
    and the timeout of every wait.

    >>> group = cr.distributed.init()
    >>> group.rank, group.size
    (0, 1)
    """

    def __init__(self, comm=None, timeout: float | None = None):
        self.comm = comm
        self.timeout = _timeout_from_env(timeout)
        self.broken = False
        if comm is None:
            self.rank, self.size = 0, 1
            self.MPI = None
            self._ping_comm = None
            return
        self.MPI = import_mpi()
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        # Pings travel on a communicator of their own, so they never match the group's messages.
        self._ping_comm = comm.Dup()
        self._ping_in = np.zeros(1, dtype=np.int64)
        self._ping_req = self._ping_comm.Irecv(self._ping_in, source=self.MPI.ANY_SOURCE, tag=_PING)
        self._pong_out = np.zeros(1, dtype=np.int64)
        self._pongs: list = []

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank}, size={self.size}, timeout={self.timeout:g}s)"

    def where(self) -> str:
        """``rank r of n``: how errors name this process."""
        return f"rank {self.rank} of {self.size}"

    # ---- waiting ---------------------------------------------------------------------------------
    def _serve_pings(self) -> None:
        """Answer the liveness pings that arrived (another rank asks whether we are still here)."""
        while self._ping_req.Test():
            src = int(self._ping_in[0])
            self._pongs = [r for r in self._pongs if not r.Test()]
            self._pongs.append(self._ping_comm.Isend(self._pong_out, dest=src, tag=_PONG))
            self._ping_req = self._ping_comm.Irecv(self._ping_in, source=self.MPI.ANY_SOURCE, tag=_PING)

    def test(self, requests: list) -> bool:
        """Whether all ``requests`` have completed (also drives MPI's progress engine)."""
        if self.comm is None:
            return True
        return bool(self.MPI.Request.Testall(requests))

    def wait(self, requests: list, what: str) -> None:
        """Wait for ``requests`` (an MPI request list) to complete, at most ``timeout`` seconds.

        Raises :class:`DistributedError` naming ``what`` and the ranks that no longer answer."""
        if self.comm is None or not requests:
            return
        if self.broken:
            raise DistributedError(f"{what}: {self.where()}: an earlier collective failed; the group is unusable")
        Testall = self.MPI.Request.Testall
        try:
            if Testall(requests):
                return
            deadline = time.monotonic() + self.timeout
            pause = 1e-6
            while True:
                self._serve_pings()
                if Testall(requests):
                    return
                if time.monotonic() > deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 2e-3)
        except self.MPI.Exception as e:
            self._fail()
            raise DistributedError(f"{what}: {self.where()}: MPI reported an error: {e}") from None
        lost = self._unresponsive()
        self._fail()
        who = (f"rank{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost))} did not answer (died or hung)"
               if lost else "every rank still answers, so some rank is stuck outside the collectives")
        raise DistributedError(
            f"{what}: {self.where()}: not complete after {self.timeout:g} s; {who}. "
            "Stopping this rank (set the limit with timeout= or CHAINRULE_DIST_TIMEOUT)"
        )

    def _unresponsive(self, grace: float = 2.0) -> list[int]:
        """Ping every other rank and return those that give no answer within ``grace`` seconds."""
        MPI, comm = self.MPI, self._ping_comm
        me = np.array([self.rank], dtype=np.int64)
        answers = {}
        for r in range(self.size):
            if r != self.rank:
                comm.Isend(me, dest=r, tag=_PING)
                buf = np.zeros(1, dtype=np.int64)
                answers[r] = (comm.Irecv(buf, source=r, tag=_PONG), buf)
        deadline = time.monotonic() + grace
        waiting = dict(answers)
        while waiting and time.monotonic() < deadline:
            self._serve_pings()
            for r in [r for r, (req, _) in waiting.items() if req.Test()]:
                del waiting[r]
            time.sleep(1e-3)
        del MPI
        return sorted(waiting)

    def close(self) -> None:
        """Withdraw the standing ping receive, so MPI_Finalize finds nothing pending."""
        if self.comm is None or self.broken or self._ping_req is None:
            return
        self._ping_req.Cancel()
        self._ping_req.Wait()
        self._ping_req = None

    def _fail(self) -> None:
        self.broken = True

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (``MPI_Abort``)."""
        if self.comm is not None:
            self.comm.Abort(code)


_group: ProcessGroup | None = None


def _at_exit() -> None:
    # Registered by init(): a rank whose collective failed must not wait in MPI_Finalize for a peer
    # that is gone; aborting ends the job (and any survivors still waiting) at once.
    if _group is None:
        return
    if _group.broken:
        _group.abort(1)
    _group.close()


def _abort_on_uncaught(previous):
    def hook(kind, value, tb):
        previous(kind, value, tb)
        if _group is not None and _group.comm is not None:
            sys.stderr.write(f"chainrule.distributed: {_group.where()} stopped on an uncaught {kind.__name__}; "
                             "aborting the MPI job\n")
            sys.stderr.flush()
            _group.abort(1)

    return hook


def init(timeout: float | None = None) -> ProcessGroup:
    """Join the job this process was launched in and make it the default group.

    Under ``mpiexec`` the group is ``MPI.COMM_WORLD`` (needs ``chainrule[mpi]``); otherwise it is a
    world of one where every collective returns its input. ``timeout`` bounds every wait (seconds;
    default ``CHAINRULE_DIST_TIMEOUT`` or 60). Calling it again returns the same group.

    >>> group = cr.distributed.init()
    >>> cr.distributed.get_world_size()
    1
    """
    global _group
    if _group is not None:
        if timeout is not None:
            _group.timeout = _timeout_from_env(timeout)
        return _group
    if launched_by_mpi():
        MPI = import_mpi()
        comm = MPI.COMM_WORLD.Dup()
        comm.Set_errhandler(MPI.ERRORS_RETURN)
        _group = ProcessGroup(comm, timeout)
        atexit.register(_at_exit)
        sys.excepthook = _abort_on_uncaught(sys.excepthook)
    else:
        _group = ProcessGroup(None, timeout)
    return _group


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _group is not None


def default_group() -> ProcessGroup:
    """The group :func:`init` made (calling it first when needed)."""
    return _group if _group is not None else init()


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank: 0 .. world size - 1 (0 in a world of one)."""
    return (group or default_group()).rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    """How many processes train together (1 when not launched by mpiexec)."""
    return (group or default_group()).size
