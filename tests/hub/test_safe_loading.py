"""Loading never unpickles by default, and NaN/Inf weights are reported by name."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from small_configs import small_brainharmonix_config
from transformers import AutoModel

from brainharmonix_hf import (
    BrainHarmonixForSequenceClassification,
    BrainHarmonixModel,
    FunctionJEPAForPreTraining,
    FunctionJEPAModel,
    HarmonizerForPreTraining,
    HarmonizerForSequenceClassification,
    HarmonizerModel,
    StructureMAEForPreTraining,
    StructureMAEModel,
)


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


# Incomplete or mismatched checkpoints: an inference model never runs with weights the checkpoint did not hold.


@pytest.fixture(scope="module")
def small_config():
    return small_brainharmonix_config(image_size=(32, 32, 32))


STAGES = {
    "structure": (StructureMAEModel, StructureMAEForPreTraining, "structure_config"),
    "function": (FunctionJEPAModel, FunctionJEPAForPreTraining, "function_config"),
    "harmonizer": (HarmonizerModel, HarmonizerForPreTraining, "harmonizer_config"),
}


def test_a_model_folder_without_config_json_is_refused_naming_the_file(small_config, tmp_path):
    FunctionJEPAModel(small_config.function_config).save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(OSError, match=r"has no config\.json.*save_pretrained.*config="):
        FunctionJEPAModel.from_pretrained(tmp_path)
    # With the config given, the weights load.
    loaded = FunctionJEPAModel.from_pretrained(tmp_path, config=small_config.function_config)
    assert loaded.config.hidden_size == small_config.function_config.hidden_size


@pytest.mark.parametrize("stage", list(STAGES))
def test_an_inference_model_refuses_a_checkpoint_missing_a_weight(small_config, tmp_path, stage):
    model_class, _, config_name = STAGES[stage]
    model_class(getattr(small_config, config_name)).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = "layers.0.attention.proj.bias"
    del weights[dropped]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError) as error:
        model_class.from_pretrained(tmp_path)
    message = str(error.value)
    assert f"1 weight(s) of {model_class.__name__}" in message and dropped in message
    assert "random" in message and "complete checkpoint" in message


def test_a_config_with_more_layers_than_the_weights_is_refused_naming_the_layers(small_config, tmp_path):
    FunctionJEPAModel(small_config.function_config).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as error:
        FunctionJEPAModel.from_pretrained(tmp_path)
    message = str(error.value)
    assert "layers.1.*" in message and "layers.2.*" in message
    assert "the config describes 3 layers but the weights hold 1" in message


def test_a_base_checkpoint_in_a_head_model_is_the_usual_notice_with_no_unexpected_keys(small_config, tmp_path):
    HarmonizerModel(small_config.harmonizer_config).save_pretrained(tmp_path)
    model, info = HarmonizerForSequenceClassification.from_pretrained(tmp_path, num_labels=3, output_loading_info=True)
    assert info["missing_keys"] and all(key.startswith("classifier.") for key in info["missing_keys"])
    assert not info["unexpected_keys"]  # the base model's final LayerNorm is dropped by design
    assert model.classifier.dense.out_features == 3


@pytest.mark.parametrize(
    ("model_class", "head_class", "config_name"),
    [
        (HarmonizerModel, HarmonizerForSequenceClassification, "harmonizer_config"),
        (BrainHarmonixModel, BrainHarmonixForSequenceClassification, None),
    ],
)
def test_an_inference_model_loads_a_heads_checkpoint_with_a_fresh_final_layernorm(
    small_config, tmp_path, model_class, head_class, config_name
):
    # A task head drops the Harmonizer's final LayerNorm: its checkpoint lacks the one weight the inference model may
    # start fresh, at unit scale and zero shift, without reporting it missing.
    config = getattr(small_config, config_name) if config_name else small_config
    head = head_class(config)
    head.save_pretrained(tmp_path)
    model, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    harmonizer = model if config_name else model.harmonizer
    assert torch.equal(harmonizer.layernorm.weight, torch.ones_like(harmonizer.layernorm.weight))
    assert torch.equal(harmonizer.layernorm.bias, torch.zeros_like(harmonizer.layernorm.bias))
    head_weights = getattr(head, head.base_model_prefix).state_dict()
    loaded = model.state_dict()
    assert head_weights and all(torch.equal(loaded[key], value) for key, value in head_weights.items())


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stage_loads_silently_from_its_pretraining_folder(small_config, tmp_path, stage):
    model_class, pretraining_class, config_name = STAGES[stage]
    pretraining = pretraining_class(getattr(small_config, config_name))
    pretraining.save_pretrained(tmp_path)
    model, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    # The encoder's weights are the pretraining model's (the target encoder for FunctionJEPA).
    encoder = getattr(pretraining, pretraining.base_model_prefix)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in encoder.state_dict().items())


def test_an_integer_tensor_for_a_float_weight_is_refused(small_config, tmp_path):
    FunctionJEPAModel(small_config.function_config).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["layernorm.weight"] = weights["layernorm.weight"].round().to(torch.int64)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(
        ValueError, match=r"floating-point weight\(s\).*as integers: layernorm\.weight \(int64\).*re-save"
    ):
        FunctionJEPAModel.from_pretrained(tmp_path)
