"""Launch a pretraining worker script in real processes on CPU (torchrun, gloo) and read what the ranks wrote."""

import os
import socket
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"
HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_environment(**extra: str) -> dict[str, str]:
    """The environment of a CPU process group: the package from this checkout, one thread, no GPU."""
    return os.environ | {
        "PYTHONPATH": str(SRC),
        "OMP_NUM_THREADS": "1",
        "ACCELERATE_USE_CPU": "1",
        "CUDA_VISIBLE_DEVICES": "",
        **extra,
    }


def torchrun(worker: str, arguments: list[str], nproc: int = 2, timeout: int = 240) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node <nproc> tests/pretraining/<worker> <arguments>`; fails the test with the ranks'
    stderr when the group fails."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--master_port", str(free_port()), str(HERE / worker), *arguments,
    ]  # fmt: skip
    result = subprocess.run(command, env=cpu_environment(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-6000:]
    return result
