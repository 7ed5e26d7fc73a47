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


def _assert_no_trust_pickle_hint(error):
    assert "--trust-pickle" not in str(error.value) and "trust_pickle" not in str(error.value)


def test_an_empty_file_is_named_as_empty(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"model\.pth is empty \(0 bytes\).*download") as error:
        load_checkpoint(path)
    _assert_no_trust_pickle_hint(error)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_truncated_file_is_named_as_truncated(tmp_path, legacy):
    whole = tmp_path / "whole.pth"
    torch.save({"model": {"norm.weight": torch.ones(1000)}}, whole, _use_new_zipfile_serialization=not legacy)
    path = tmp_path / "model.pth"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert f"model.pth ({len(data) // 2} bytes) is truncated or damaged" in message
    assert "Download the file again" in message
    _assert_no_trust_pickle_hint(error)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("version https://git-lfs.github.com/spec/v1\noid sha256:ab12\nsize 700000000\n", "Git LFS pointer"),
        ("<!DOCTYPE html><html><body>Google Drive - Virus scan warning</body></html>\n", "web page"),
        ("encoder.blocks.0.attn.qkv.weight: [2304, 768]\n", "text file"),
    ],
)
def test_a_text_file_is_named_as_text_without_the_pickle_hint(tmp_path, text, named):
    path = tmp_path / "model.pth"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "not a PyTorch checkpoint" in message and named in message and repr(text[:20])[1:-1] in message
    _assert_no_trust_pickle_hint(error)


def test_an_all_nan_weight_is_converted_with_a_warning_naming_it(tmp_path):
    state = ref.structure_reference()
    state["blocks.1.mlp.fc1.weight"] = torch.full_like(state["blocks.1.mlp.fc1.weight"], float("nan"))
    path = tmp_path / "model.pth"
    torch.save({"model": state}, path)
    ref.tiny_config().save_pretrained(tmp_path / "config")
    arguments = ["convert", "--structure", str(path), "--config", str(tmp_path / "config")]
    named = r"NaN or Inf values in 1 tensor\(s\): structure\.layers\.1\.mlp\.fc1\.weight"
    with pytest.warns(UserWarning, match=named) as caught:
        main([*arguments, "--output", str(tmp_path / "o")])
    assert "model.pth" in str(caught[0].message)
    assert (tmp_path / "o" / "structure" / "model.safetensors").is_file()
