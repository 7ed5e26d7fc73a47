"""The `brainharmonix` command starts without the stack: `--help`, every command's `--help` and usage errors import
neither torch nor transformers (nor numpy), checked with `python -X importtime` on the console command. Times are in
`benchmarks/cli_startup.py`, not asserted here. Also: one dtype spelling across commands."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from brainharmonix_hf.cli import build_parser

HEAVY = {"torch", "transformers", "numpy", "pandas", "datasets", "nibabel", "matplotlib"}


@pytest.fixture(scope="module")
def brainharmonix(tmp_path_factory) -> list[str]:
    """The installed console script, or a launcher of the same name (the package keys its lazy start on it)."""
    installed = Path(sys.executable).with_name("brainharmonix")
    if installed.is_file():
        return [sys.executable, str(installed)]
    launcher = tmp_path_factory.mktemp("bin") / "brainharmonix"
    launcher.write_text("import sys\nfrom brainharmonix_hf.cli import console_main\nsys.exit(console_main())\n")
    return [sys.executable, str(launcher)]


def run_with_import_times(command: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True)
    names = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return result, {name.split(".")[0] for name in names}


@pytest.mark.parametrize(
    ("arguments", "status", "expected"),
    [
        (["--help"], 0, "embed"),
        (["embed", "--help"], 0, "--participant-label"),
        (["convert", "--help"], 0, "--trust-pickle"),
        (["cache-latents", "--help"], 0, "bfloat16 (bf16"),
        (["evaluate", "--help"], 0, "Column of the first source holding the class"),
        (["plot", "attention", "--help"], 0, "--hub-token"),
        (["demo", "--help"], 0, "first `make demo`"),
        (["finetune", "--help"], 0, "--lora-rank"),
        (["pretrain", "--help"], 0, "--warmup_start_learning_rate"),
        (["pretrain", "no-such-stage", "--output_dir", "run"], 2, "stage must be one of ('structure', 'function'"),
        (["pretrain", "function", "--seed", "two"], 2, "argument --seed: invalid int value: 'two'"),
        (["embed"], 2, "the following arguments are required: --model"),
        (["embed", "--model", "m", "--bids", "d", "--output", "o", "--dtype", "int8"], 2, "Unknown dtype 'int8'"),
        (["no-such-command"], 2, "invalid choice: 'no-such-command'"),
    ],
)
def test_help_and_usage_errors_import_no_heavy_module(brainharmonix, arguments, status, expected):
    result, imported = run_with_import_times([*brainharmonix, *arguments])
    assert result.returncode == status, result.stderr[-2000:]
    output = result.stdout + "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import"))
    assert expected in output
    assert not imported & HEAVY, sorted(imported & HEAVY)


@pytest.mark.parametrize(
    ("arguments", "field", "expected"),
    [
        (
            ["cache-latents", "--model", "m", "--manifest", "c.csv", "--output", "o", "--dtype", "bf16"],
            "dtype",
            "bfloat16",
        ),
        (
            ["cache-latents", "--model", "m", "--manifest", "c.csv", "--output", "o", "--dtype", "fp16"],
            "dtype",
            "float16",
        ),
        (["embed", "--model", "m", "--bids", "d", "--output", "o", "--dtype", "bf16"], "dtype", "bfloat16"),
        (["embed", "--model", "m", "--bids", "d", "--output", "o", "--dtype", "BFloat16"], "dtype", "bfloat16"),
        (["embed", "--model", "m", "--bids", "d", "--output", "o", "--dtype", "fp32"], "dtype", "float32"),
    ],
)
def test_every_command_takes_the_same_dtype_spellings(arguments, field, expected):
    assert getattr(build_parser().parse_args(arguments), field) == expected


def test_a_dtype_a_command_cannot_use_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["embed", "--model", "m", "--bids", "d", "--output", "o", "--dtype", "fp16"])
    assert exit_info.value.code == 2
    assert re.search(r"invalid choice: 'float16' \(choose from '?float32'?, '?bfloat16'?\)", capsys.readouterr().err)


def test_a_users_script_named_like_the_command_still_registers_the_auto_classes(tmp_path):
    script = tmp_path / "brainharmonix.py"
    script.write_text(
        "import brainharmonix_hf\nfrom transformers import AutoConfig\n"
        "print(type(AutoConfig.for_model('brainharmonix_function_jepa')).__name__)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "FunctionJEPAConfig"
