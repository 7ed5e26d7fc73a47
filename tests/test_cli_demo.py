# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix demo`, run in-process with a small StructureMAE config on the real MNI152 template."""

import re

import pytest

from brainharmonix_hf import StructureMAEConfig
from brainharmonix_hf.cli import main

SMALL = {"image_size": [32, 48, 32], "hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2}


@pytest.fixture(scope="module")
def config_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_structure_mae")
    StructureMAEConfig(**SMALL, intermediate_size=48).save_pretrained(folder)
    return str(folder)


def run_demo(capsys, *arguments: str) -> list[str]:
    main(["demo", *arguments])
    return capsys.readouterr().out.strip().splitlines()


def test_demo_prints_the_token_shape_and_a_seeded_checksum(capsys, config_folder):
    first = run_demo(capsys, "--config", config_folder, "--seed", "3")
    assert first[0].startswith("StructureMAE on nilearn's MNI152 T1 template: image [32, 48, 32], grid (2, 3, 2)")
    match = re.fullmatch(r"tokens \(1, 12, 24\)  mean \|x\| (\d+\.\d+)  token mean\[:4\] \[(.+)\]", first[1])
    assert match is not None, first[1]
    assert 0.1 < float(match.group(1)) < 2.0  # LayerNorm output of a real volume: order-one values
    assert run_demo(capsys, "--config", config_folder, "--seed", "3") == first
    assert run_demo(capsys, "--config", config_folder, "--seed", "4")[1] != first[1]


def test_cli_requires_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "demo" in capsys.readouterr().err
