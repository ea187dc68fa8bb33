"""Starting the ranks of a data-parallel run on one machine: Darknet's ``-gpus 0,1,2,3`` form
runs the same command again under the MPI launcher, one rank per GPU."""

import os
import shlex
import shutil
import subprocess
import sys

from ..errors import PydarknetError


def find_mpiexec():
    """The MPI launcher beside this Python (the mpich wheel puts it there) or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(beside):
        return beside
    return shutil.which("mpiexec")


def launch_command(ranks, argv):
    """The command that runs ``pydarknet ARGV`` as ``ranks`` MPI ranks."""
    return [find_mpiexec() or "mpiexec", "-n", str(ranks), sys.executable, "-m", "pydarknet",
            *argv]


def relaunch(ranks, argv):
    """Run ``pydarknet ARGV`` as ``ranks`` ranks under mpiexec and wait; returns its exit code."""
    command = launch_command(ranks, argv)
    if find_mpiexec() is None:
        raise PydarknetError(
            f"training on {ranks} GPUs runs one process per GPU under MPI, and no mpiexec was "
            f"found: pip install 'pydarknet[dist]' (mpi4py and the mpich wheel), or start the "
            f"ranks with your cluster's launcher: {shlex.join(command)}")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise PydarknetError("training on several GPUs needs mpi4py: pip install "
                             "'pydarknet[dist]'") from None
    print(f"starting {ranks} ranks: {shlex.join(command)}", file=sys.stderr, flush=True)
    return subprocess.call(command)
