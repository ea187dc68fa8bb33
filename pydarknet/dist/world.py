"""The processes of a data-parallel run: who we are, how many we are, and the collectives.

A run started by ``mpiexec -n N`` (or any MPI launcher) has N ranks; anything else is one
process. MPI is imported only when the launcher's environment says there are several ranks,
so a plain run never initialises MPI.
"""

import os
import sys

import numpy as np

from ..errors import PydarknetError

# What MPI launchers put in each rank's environment: the world size.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE",
                   "SLURM_NTASKS")


class LocalWorld:
    """One process: rank 0 of 1; every collective returns its input."""

    rank, size = 0, 1
    is_root = True

    def allreduce_sum(self, array):
        return array

    def broadcast(self, obj):
        return obj

    def broadcast_array(self, array):
        return array

    def any(self, flag):
        return bool(flag)

    def barrier(self):
        pass

    def abort(self, message, code=1):
        raise SystemExit(code)


class MpiWorld:
    """The ranks of MPI's COMM_WORLD (mpi4py)."""

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0

    def allreduce_sum(self, array):
        """Sum a contiguous float32/float64 numpy array over the ranks, in place."""
        from mpi4py import MPI
        self.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
        return array

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (any picklable object)."""
        return self.comm.bcast(obj, root=0)

    def broadcast_array(self, array):
        """Rank 0's values of a contiguous numpy array, in place on every rank."""
        self.comm.Bcast(array, root=0)
        return array

    def any(self, flag):
        """True on every rank when ``flag`` is true on any (e.g. a stop asked for on one)."""
        from mpi4py import MPI
        return bool(self.comm.allreduce(int(bool(flag)), op=MPI.MAX))

    def barrier(self):
        self.comm.Barrier()

    def abort(self, message, code=1):
        """Stop every rank: this one's message first, then MPI_Abort (the launcher ends the
        others within seconds)."""
        print(f"pydarknet: rank {self.rank}/{self.size}: {message}", file=sys.stderr, flush=True)
        self.comm.Abort(code)


# ...and this process's rank among those on its machine.
_LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK",
                         "SLURM_LOCALID")


def _announced(keys, default, environ=None):
    """The first of the launcher variables ``keys`` that holds a number, else ``default``."""
    environ = os.environ if environ is None else environ
    for key in keys:
        value = environ.get(key, "")
        if value.isdigit():
            return int(value)
    return default


def local_rank(environ=None):
    """This rank's index among the ranks on its machine (0 when no launcher said)."""
    return _announced(_LOCAL_RANK_VARIABLES, 0, environ)


def launched_ranks(environ=None):
    """The world size an MPI launcher announced in the environment (1 when none did)."""
    return _announced(_SIZE_VARIABLES, 1, environ)


_WORLD = None


def get_world():
    """This process's world: MPI's when launched with several ranks, else a LocalWorld."""
    global _WORLD
    if _WORLD is None:
        if launched_ranks() <= 1:
            _WORLD = LocalWorld()
        else:
            try:
                from mpi4py import MPI
            except ImportError as e:
                raise PydarknetError(
                    f"started by an MPI launcher with {launched_ranks()} ranks, but mpi4py "
                    f"cannot be imported ({e}): pip install 'pydarknet[dist]' (mpi4py and the "
                    f"mpich wheel)") from None
            _WORLD = MpiWorld(MPI.COMM_WORLD) if MPI.COMM_WORLD.Get_size() > 1 else LocalWorld()
    return _WORLD


def flat_buffer(arrays, dtype=np.float32):
    """One contiguous host buffer with room for every array (and its offsets)."""
    offsets, total = [], 0
    for a in arrays:
        offsets.append(total)
        total += int(a.size)
    return np.empty(total, dtype), offsets
