"""Loading never unpickles by default, and NaN/Inf weights are reported by name."""

import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from small_configs import small_brainharmonix_config
from transformers import AutoModel

from brainharmonix_hf import HarmonizerModel, StructureMAEModel


@pytest.fixture
def structure_config():
    return small_brainharmonix_config(image_size=(32, 32, 32)).structure_config


class _Trap:
    """Unpickling this object would write a file: proof that a loader ran code from the checkpoint."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_folder_with_only_pickled_weights_is_refused(structure_config, tmp_path):
    model = StructureMAEModel(structure_config)
    model.config.save_pretrained(tmp_path)
    trap = tmp_path / "code_ran"
    state = dict(model.state_dict())
    with open(tmp_path / "pytorch_model.bin", "wb") as file:
        pickle.dump({**state, "trap": _Trap(str(trap))}, file)
    for loader in (StructureMAEModel.from_pretrained, AutoModel.from_pretrained):
        with pytest.raises(OSError, match=r"no safetensors weights .* never unpickles weights by default"):
            loader(tmp_path)
    assert not trap.exists()


def test_pickled_weights_load_when_the_user_opts_in(structure_config, tmp_path):
    model = StructureMAEModel(structure_config)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = StructureMAEModel.from_pretrained(tmp_path, use_safetensors=False)
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in model.state_dict().items())


def test_non_finite_weights_are_named_in_a_warning(tmp_path):
    config = small_brainharmonix_config(image_size=(32, 32, 32)).harmonizer_config
    HarmonizerModel(config).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    names = sorted(weights)
    poisoned = {names[0]: float("nan"), names[-1]: float("inf")}
    for name, value in poisoned.items():
        weights[name].view(-1)[0] = value
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match=r"NaN or Inf values in 2 tensor\(s\)") as caught:
        AutoModel.from_pretrained(tmp_path)
    message = str(caught[0].message)
    assert all(name in message for name in poisoned)


def test_finite_weights_load_without_warning(structure_config, tmp_path, recwarn):
    StructureMAEModel(structure_config).save_pretrained(tmp_path)
    StructureMAEModel.from_pretrained(tmp_path)
    assert not [w for w in recwarn if "NaN or Inf" in str(w.message)]
