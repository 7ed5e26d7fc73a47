"""Start-up time of the `brainharmonix` command: `--help`, a command's `--help` and a usage error, against the
interpreter alone and against importing torch and transformers (what a command line that imported the stack eagerly
would pay before printing anything).

Each case runs in a fresh process, best of 5 wall-clock times; prints seconds and the ratios to the baseline.
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 5


def console_command(folder: Path) -> list[str]:
    """The installed `brainharmonix` script, or a launcher of the same name (the package keys its lazy start-up on
    the command's name)."""
    installed = Path(sys.executable).with_name("brainharmonix")
    if installed.is_file():
        return [sys.executable, str(installed)]
    launcher = folder / "brainharmonix"
    launcher.write_text("import sys\nfrom brainharmonix_hf.cli import console_main\nsys.exit(console_main())\n")
    return [sys.executable, str(launcher)]


def best_time(command: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return min(times)


def imported_modules(command: list[str]) -> set[str]:
    """Top-level modules a run imports, from `python -X importtime`."""
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True)
    lines = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in lines}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        brainharmonix = console_command(Path(folder))
        cases = {
            "python -c pass (interpreter)": [sys.executable, "-c", "pass"],
            "import torch, transformers (eager)": [sys.executable, "-c", "import torch, transformers"],
            "brainharmonix --help": [*brainharmonix, "--help"],
            "brainharmonix embed --help": [*brainharmonix, "embed", "--help"],
            "brainharmonix embed (usage error)": [*brainharmonix, "embed"],
            "brainharmonix pretrain --help": [*brainharmonix, "pretrain", "--help"],
            "brainharmonix pretrain (usage error)": [*brainharmonix, "pretrain", "function"],
        }
        seconds = {name: best_time(command) for name, command in cases.items()}
        heavy = imported_modules([*brainharmonix, "--help"]) & {"torch", "transformers", "numpy", "pandas"}
    baseline = seconds["import torch, transformers (eager)"]
    print(f"best of {REPEATS} fresh processes")
    for name, value in seconds.items():
        print(f"{name:<38} {value:6.2f} s   {value / baseline:5.2f} x the eager import")
    print(f"heavy modules imported by `brainharmonix --help`: {sorted(heavy) or 'none'}")
    print(f"median of the brainharmonix cases: {statistics.median(list(seconds.values())[2:]):.2f} s")


if __name__ == "__main__":
    main()
