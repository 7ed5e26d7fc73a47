"""Launch pretraining worker scripts in real processes on CPU (gloo): plain torchrun, `accelerate launch` with a
shipped config of `configs/accelerate/`, or two simulated nodes on localhost."""

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src"
CONFIGS = ROOT / "configs" / "accelerate"
HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_environment() -> dict[str, str]:
    """The environment of a CPU process group: the package from this checkout, one thread, no GPU."""
    return os.environ | {
        "PYTHONPATH": str(SRC),
        "OMP_NUM_THREADS": "1",
        "ACCELERATE_USE_CPU": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-6000:]
    return result


def torchrun(worker: str, arguments: list[str], nproc: int = 2, timeout: int = 240) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node <nproc> tests/pretraining/<worker> <arguments>`; fails the test with the ranks'
    stderr when the group fails."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--master_port", str(free_port()), str(HERE / worker), *arguments,
    ]  # fmt: skip
    return _check(subprocess.run(command, env=cpu_environment(), capture_output=True, text=True, timeout=timeout))


def accelerate_command(config: str, worker: str, arguments: list[str], *launch_flags: str) -> list[str]:
    """`accelerate launch --config_file configs/accelerate/<config> --num_processes 2` on CPU: the YAML's process
    layout and FSDP settings, fp32 (`--mixed_precision no`: the YAMLs name bf16 for GPUs)."""
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config),
        "--num_processes", "2", "--mixed_precision", "no", *launch_flags, str(HERE / worker), *arguments,
    ]  # fmt: skip


def accelerate_launch(config: str, worker: str, arguments: list[str], timeout: int = 240):
    """One machine, two processes, with a shipped config."""
    command = accelerate_command(config, worker, arguments, "--main_process_port", str(free_port()))
    return _check(subprocess.run(command, env=cpu_environment(), capture_output=True, text=True, timeout=timeout))


def launch_two_nodes(worker: str, arguments: list[str], timeout: int = 240) -> None:
    """`configs/accelerate/multinode.yaml` as 2 nodes × 1 process on localhost: the same command twice, with
    `--machine_rank 0` and `1`, meeting at 127.0.0.1 (torchrun `--nnodes 2 --node_rank R`, static rendezvous)."""
    port = str(free_port())
    flags = ("--main_process_ip", "127.0.0.1", "--main_process_port", port)
    run_nodes(
        [
            accelerate_command("multinode.yaml", worker, arguments, "--machine_rank", str(rank), *flags)
            for rank in (0, 1)
        ],
        timeout,
    )


def torchrun_two_nodes(worker: str, arguments: list[str], rendezvous: str, timeout: int = 240) -> None:
    """`torchrun --nnodes 2 --nproc_per_node 1` twice on localhost: `static` (`--node_rank 0/1 --rdzv-endpoint`) or
    `c10d` (`--rdzv-backend c10d --rdzv-endpoint --rdzv-id`: the nodes are numbered by the rendezvous)."""
    endpoint = f"127.0.0.1:{free_port()}"
    base = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
    if rendezvous == "static":
        nodes = [[*base, "--node_rank", str(rank), "--rdzv-endpoint", endpoint] for rank in (0, 1)]
    else:
        nodes = [[*base, "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "test"]] * 2
    run_nodes([[*node, str(HERE / worker), *arguments] for node in nodes], timeout)


def run_nodes(commands: list[list[str]], timeout: int) -> None:
    """Start the commands at once (one per simulated node) and fail the test with the stderr of any that fails."""
    logs = [tempfile.TemporaryFile("w+") for _ in commands]
    nodes = [
        subprocess.Popen(command, env=cpu_environment(), stdout=subprocess.DEVNULL, stderr=log, text=True)
        for command, log in zip(commands, logs, strict=True)
    ]
    try:
        for node in nodes:
            node.wait(timeout=timeout)
    finally:
        for node in nodes:
            node.kill()
    for node, log in zip(nodes, logs, strict=True):
        log.seek(0)
        assert node.returncode == 0, log.read()[-6000:]
