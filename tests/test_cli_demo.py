# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix demo`, run in-process with a small config on the bundled T1 and fMRI samples."""

import importlib.util
import re

import pytest
from small_configs import small_brainharmonix_config

from brainharmonix_hf.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("brainspace") is None,
    reason="the fMRI sample ships in brainspace (`pip install --no-deps brainspace`)",
)


@pytest.fixture(scope="module")
def config_folder(tmp_path_factory):
    """Full-size fMRI inputs (400 ROIs × 18 time patches), a 32 × 48 × 32 T1 crop (12 tokens), small stages."""
    folder = tmp_path_factory.mktemp("small_brainharmonix")
    small_brainharmonix_config(image_size=(32, 48, 32)).save_pretrained(folder)
    return str(folder)


def run_demo(capsys, *arguments: str) -> list[str]:
    main(["demo", *arguments])
    return capsys.readouterr().out.strip().splitlines()


def checksum(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("checksum:"))


def test_demo_embeds_the_bundled_subject(capsys, config_folder):
    lines = run_demo(capsys, "--config", config_folder, "--seed", "3")
    assert "T1   pixel_values (1, 1, 32, 48, 32)" in lines
    # 652 frames at TR 1.4 s: 18 patches of round(35.28 / 1.4) = 25 frames keep 450, the rest is dropped (noted).
    assert "fMRI fmri_values (1, 400, 450), 450 frames at TR 1.4 s" in lines
    assert any(line.startswith("note:") and "202 frames (282.8 s) are dropped" in line for line in lines)
    assert "hub tokens (1, 5, 24)  embedding (1, 24)" in lines
    match = re.fullmatch(r"checksum: mean \|hub tokens\| (\d+\.\d+)  embedding\[:4\] \[(.+)\]", checksum(lines))
    assert match is not None
    assert 0.1 < float(match.group(1)) < 2.0  # LayerNorm outputs: order-one values


def test_demo_checksum_follows_the_seed(capsys, config_folder):
    first = checksum(run_demo(capsys, "--config", config_folder, "--seed", "3"))
    assert checksum(run_demo(capsys, "--config", config_folder, "--seed", "3")) == first
    assert checksum(run_demo(capsys, "--config", config_folder, "--seed", "4")) != first


def test_cli_requires_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "demo" in capsys.readouterr().err
