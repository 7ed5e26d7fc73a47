"""Safe unpickling of reference `.pth` files: tensors, containers, argparse.Namespace and numpy scalars load with
`weights_only=True`; anything else is refused unless the caller trusts the file."""

import argparse
import os
import re

import numpy as np
import pytest
import reference_checkpoints as ref
import torch

from brainharmonix_hf.cli import console_main, main
from brainharmonix_hf.convert import UntrustedCheckpointError, load_checkpoint
from brainharmonix_hf.convert.checkpoint_io import extract_state_dict


class TrainingNote:
    """A harmless object of a type outside the allow-list."""

    def __init__(self, text: str):
        self.text = text


class MakesADirectory:
    """Unpickling this object runs `os.mkdir(path)`: code from the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_training_arguments_and_numpy_scalars_load_safely(tmp_path):
    path = tmp_path / "model.pth"
    args = argparse.Namespace(lr=np.float64(5e-4), epochs=np.int64(300), name="base")
    torch.save({"model": {"norm.weight": torch.ones(3)}, "args": args, "epoch": 299}, path)
    checkpoint = load_checkpoint(path)
    assert checkpoint["args"].lr == 5e-4 and checkpoint["args"].epochs == 300
    state, others = extract_state_dict(checkpoint, path)
    assert list(state) == ["norm.weight"] and others == ["args", "epoch"]


def test_a_file_that_runs_code_is_refused_unless_trusted(tmp_path):
    marker = tmp_path / "created_by_unpickling"
    path = tmp_path / "model.pth"
    torch.save({"model": {"norm.weight": torch.ones(3)}, "extra": MakesADirectory(marker)}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"(?s)refused.*mkdir.*--trust-pickle"):
        load_checkpoint(path)
    assert not marker.exists()
    checkpoint = load_checkpoint(path, trust_pickle=True)
    assert marker.is_dir()  # what trusting means: the file's code ran
    assert torch.equal(checkpoint["model"]["norm.weight"], torch.ones(3))


def test_the_cli_refuses_unknown_types_and_converts_them_when_trusted(tmp_path, capsys):
    path = tmp_path / "model.pth"
    torch.save({"model": ref.structure_reference(), "note": TrainingNote("epoch 300")}, path)
    ref.tiny_config().save_pretrained(tmp_path / "config")
    arguments = ["convert", "--structure", str(path), "--config", str(tmp_path / "config")]
    with pytest.raises(SystemExit) as exit_info:
        console_main([*arguments, "--output", str(tmp_path / "refused")])
    assert exit_info.value.code == 2
    assert re.match(r"(?s)^brainharmonix convert: .*was refused.*TrainingNote.*--trust-pickle", capsys.readouterr().err)
    assert not (tmp_path / "refused").exists()
    main([*arguments, "--output", str(tmp_path / "trusted"), "--trust-pickle"])
    assert (tmp_path / "trusted" / "structure" / "model.safetensors").is_file()


def test_files_that_are_not_state_dicts_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint file"):
        load_checkpoint(tmp_path / "missing.pth")
    torch.save({"model": {"norm.weight": torch.ones(3), "step": 3}}, tmp_path / "mixed.pth")
    with pytest.raises(ValueError, match=r"entries \['step'\] are not tensors"):
        extract_state_dict(load_checkpoint(tmp_path / "mixed.pth"), tmp_path / "mixed.pth")
