"""`brainharmonix convert` on reference-layout checkpoints: folders that load with the Auto classes and reproduce the
reference computation (written independently in `reference_forward.py`) on the same weights."""

import argparse
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import reference_checkpoints as ref
import reference_forward as forward
import torch
from huggingface_hub import ModelCard
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

import brainharmonix_hf  # noqa: F401  (registers the Auto classes)
from brainharmonix_hf.cli import main
from brainharmonix_hf.convert import convert_reference_release
from brainharmonix_hf.convert.function import REFERENCE_ATLAS
from brainharmonix_hf.convert.harmonizer import convert_harmonizer
from brainharmonix_hf.processing.atlases import schaefer400_roi_names
from brainharmonix_hf.sample_data import load_t1_sample

TOLERANCE = 1e-5
README = Path(__file__).resolve().parents[2] / "README.md"
NUM_LABELS = 3


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The reference files (training state beside the weights, as the release saves it) and their conversion."""
    folder = tmp_path_factory.mktemp("release")
    states = {
        "structure": ref.structure_reference(),
        "function": ref.function_reference(),
        "harmonizer": ref.harmonizer_reference(),
        "classifier": ref.classifier_reference(num_labels=NUM_LABELS),
    }
    training = {"epoch": 299, "args": argparse.Namespace(lr=np.float64(5e-4), batch_size=16, model="base")}
    paths = {}
    for name, state in states.items():
        paths[name] = folder / f"{name}.pth"
        torch.save(state if name == "function" else {"model": state, **training}, paths[name])
    harmonics_path, gradients_path, harmonics, gradients = ref.write_table_csvs(folder)
    ref.tiny_config().save_pretrained(folder / "config")
    output = folder / "converted"
    main(
        [
            "convert",
            *("--structure", str(paths["structure"]), "--function", str(paths["function"])),
            *("--harmonizer", str(paths["harmonizer"]), "--classifier", str(paths["classifier"])),
            *("--geometric-harmonics", str(harmonics_path), "--gradients", str(gradients_path)),
            *("--output", str(output), "--config", str(folder / "config")),
        ]
    )
    return {"states": states, "paths": paths, "harmonics": harmonics, "gradients": gradients, "output": output}


@pytest.fixture(scope="module")
def inputs():
    """Two subjects: TR 0.735 s (patches of 48 frames) and TR 2.0 s (18 frames), both far shorter than the window."""
    generator = torch.Generator().manual_seed(7)
    frames = (100, 50)  # 3 valid time patches of 18 each
    series = torch.zeros(2, ref.ROIS, max(frames))
    for index, length in enumerate(frames):
        series[index, :, :length] = torch.randn(ref.ROIS, length, generator=generator)
    attention_mask = (torch.arange(max(frames))[None] < torch.tensor(frames)[:, None]).long()
    return {
        "pixel_values": torch.randn(2, 1, *ref.IMAGE, generator=generator),
        "fmri_values": series,
        "repetition_time": torch.tensor([0.735, 2.0]),
        "attention_mask": attention_mask,
        "frames": frames,
    }


def reference_fmri(release, inputs, prefix="encoder_ema"):
    """Reference fMRI encoder, one subject (one TR) at a time: tokens (2, R·W, D) and keep mask (2, R·W)."""
    outputs = [
        forward.fmri_encoder(
            release["states"]["function"],
            prefix,
            inputs["fmri_values"][index : index + 1, :, :length],
            float(inputs["repetition_time"][index]),
            release["harmonics"],
            release["gradients"],
            ref.HEADS,
        )
        for index, length in enumerate(inputs["frames"])
    ]
    return torch.cat([tokens for tokens, _ in outputs]), torch.cat([keep for _, keep in outputs])


def test_every_folder_loads_with_the_auto_classes(release):
    output = release["output"]
    assert sorted(path.name for path in output.iterdir()) == [
        "brainharmonix",
        "classifier",
        "function",
        "harmonizer",
        "structure",
    ]
    expected = {
        "structure": ("StructureMAEModel", "StructureMAEForPreTraining"),
        "function": ("FunctionJEPAModel", "FunctionJEPAForPreTraining"),
        "harmonizer": ("HarmonizerModel", "HarmonizerForPreTraining"),
    }
    for name, (base, pretraining) in expected.items():
        assert (output / name / "model.safetensors").is_file()
        assert not list((output / name).glob("*.bin"))
        assert type(AutoModel.from_pretrained(output / name)).__name__ == base
        assert type(AutoModelForPreTraining.from_pretrained(output / name)).__name__ == pretraining
    assert type(AutoModel.from_pretrained(output / "brainharmonix")).__name__ == "BrainHarmonixModel"
    classifier = AutoModelForSequenceClassification.from_pretrained(output / "classifier")
    assert type(classifier).__name__ == "BrainHarmonixForSequenceClassification"
    assert classifier.config.num_labels == NUM_LABELS

    assert type(AutoProcessor.from_pretrained(output / "structure")).__name__ == "T1VolumeFeatureExtractor"
    fmri = AutoProcessor.from_pretrained(output / "function")
    assert (type(fmri).__name__, fmri.atlas, fmri.normalization) == ("FMRIFeatureExtractor", REFERENCE_ATLAS, "robust")
    assert fmri.robust_median is None  # the reference's statistics were never released: fitted on the user's cohort
    assert (fmri.num_time_patches, fmri.window_seconds) == (18, 35.28)
    for name in ("brainharmonix", "classifier"):
        processor = AutoProcessor.from_pretrained(output / name)
        assert type(processor).__name__ == "BrainHarmonixProcessor"
        assert processor.fmri_feature_extractor.atlas == REFERENCE_ATLAS
    config = AutoConfig.from_pretrained(output / "function")
    assert config.atlas == REFERENCE_ATLAS and "17-network" in config.roi_order and "7-network" in config.roi_order


def test_conversion_record_names_sources_licence_and_every_key(release):
    output, paths = release["output"], release["paths"]
    record = json.loads((output / "function" / "conversion.json").read_text())
    assert record["license"] == "cc-by-nc-sa-4.0"
    assert record["model_class"] == "FunctionJEPAForPreTraining"
    files = {source["file"]: source["sha256"] for source in record["sources"]}
    assert set(files) == {"function.pth", "schaefer400_roi_eigenmodes.csv", "gradient_mapping_400.csv"}
    assert all(len(digest) == 64 for digest in files.values())
    assert record["fmri_inputs"]["atlas"] == REFERENCE_ATLAS and record["fmri_inputs"]["normalization"].startswith(
        "robust"
    )
    keys = record["keys"]["function"]
    state = release["states"]["function"]
    accounted = (
        keys["loaded"] + len(keys["regenerated"]) + len(keys["duplicates_checked_equal"]) + len(keys["not_loaded"])
    )
    assert accounted == len(state)
    assert set(keys["not_loaded"]) == {
        "encoder_ema.pos_embed.decoder_pos_embed_proj.weight",
        "encoder_ema.pos_embed.decoder_pos_embed_proj.bias",
    }
    assert "encoder_ema.pos_embed.emb_h_encoder" in keys["regenerated"]
    assert max(keys["regenerated_max_abs_difference"].values()) < 1e-6

    composite = json.loads((output / "brainharmonix" / "conversion.json").read_text())
    assert set(composite["keys"]) == {"structure", "function", "harmonizer"}
    assert composite["training_state_not_loaded"]["harmonizer"] == ["args", "epoch"]
    assert {source["file"] for source in composite["sources"]} >= {"structure.pth", "function.pth", "harmonizer.pth"}
    assert paths["structure"].is_file()  # sources are never modified or moved


def test_converted_weights_keep_their_licence_when_saved_again(release, tmp_path):
    model = AutoModel.from_pretrained(release["output"] / "brainharmonix")
    model.save_pretrained(tmp_path)
    assert not (tmp_path / "conversion.json").exists()
    assert ModelCard.load(tmp_path / "README.md").data.license == "cc-by-nc-sa-4.0"


def test_converted_folders_carry_cards_with_the_reference_licence(release):
    for folder in ("structure", "function", "harmonizer", "brainharmonix"):
        card = ModelCard.load(release["output"] / folder / "README.md")
        assert card.data.license == "cc-by-nc-sa-4.0", folder
        config = json.loads((release["output"] / folder / "config.json").read_text())
        function = config.get("function_config", config)
        if "roi_tables" in function:  # the reference's own tables, stored in the weights
            assert function["roi_tables"] == "custom" and function["atlas"] == REFERENCE_ATLAS, folder
        assert "Converted by brainharmonix_hf from reference checkpoints" in card.text, folder
        record = json.loads((release["output"] / folder / "conversion.json").read_text())
        assert all(source["sha256"] in card.text for source in record["sources"]), folder


def test_t1_encoder_matches_the_reference(release, inputs):
    model = AutoModel.from_pretrained(release["output"] / "structure").eval()
    with torch.no_grad():
        ours = model(inputs["pixel_values"]).last_hidden_state
        expected = forward.t1_encoder(release["states"]["structure"], inputs["pixel_values"], ref.HEADS)
    assert ours.shape == (2, ref.NUM_T1, ref.WIDTH)
    assert (ours - expected).abs().max() <= TOLERANCE


def test_fmri_encoder_matches_the_reference_at_two_trs_with_padding(release, inputs):
    model = AutoModel.from_pretrained(release["output"] / "function").eval()
    with torch.no_grad():
        outputs = model(inputs["fmri_values"], inputs["repetition_time"], inputs["attention_mask"])
        expected, keep = reference_fmri(release, inputs)
    assert torch.equal(outputs.token_mask.bool(), keep)
    assert int(keep[0].sum()) == int(keep[1].sum()) == ref.ROIS * 3
    assert (outputs.last_hidden_state[keep] - expected[keep]).abs().max() <= TOLERANCE
    # The context encoder of the pretraining model is the reference's `encoder.*`.
    pretraining = AutoModelForPreTraining.from_pretrained(release["output"] / "function").eval()
    with torch.no_grad():
        context = pretraining.encoder(inputs["fmri_values"], inputs["repetition_time"], inputs["attention_mask"])
        expected_context, _ = reference_fmri(release, inputs, prefix="encoder")
    assert (context.last_hidden_state[keep] - expected_context[keep]).abs().max() <= TOLERANCE


def test_composite_and_classifier_match_the_reference_chain(release, inputs):
    states = release["states"]
    model_inputs = {key: inputs[key] for key in ("pixel_values", "fmri_values", "repetition_time", "attention_mask")}
    composite = AutoModel.from_pretrained(release["output"] / "brainharmonix").eval()
    classifier = AutoModelForSequenceClassification.from_pretrained(release["output"] / "classifier").eval()
    with torch.no_grad():
        hub_tokens = composite(**model_inputs).last_hidden_state
        logits = classifier(**model_inputs).logits
        t1 = forward.t1_encoder(states["structure"], inputs["pixel_values"], ref.HEADS)
        fmri, keep = reference_fmri(release, inputs)
        expected_hub_tokens = forward.harmonizer_encoder(states["harmonizer"], fmri, keep, t1, ref.HEADS)
        expected_logits = forward.finetune_logits(states["classifier"], fmri, keep, t1, ref.HEADS)
    assert hub_tokens.shape == (2, 1 + ref.HUBS, ref.WIDTH) and logits.shape == (2, NUM_LABELS)
    assert (hub_tokens - expected_hub_tokens).abs().max() <= TOLERANCE
    assert (logits - expected_logits).abs().max() <= TOLERANCE


def test_harmonizer_reconstruction_decoder_matches_the_reference():
    """The decoder attends over every latent position; a 12-token fMRI grid keeps the reference computation small."""
    num_fmri = 12
    config = ref.tiny_harmonizer_config(num_fmri)
    state = ref.harmonizer_reference(num_fmri_tokens=num_fmri)
    model, _ = convert_harmonizer(state, config)
    generator = torch.Generator().manual_seed(3)
    fmri, t1 = torch.randn(2, num_fmri, ref.WIDTH, generator=generator), torch.randn(2, ref.NUM_T1, ref.WIDTH)
    fmri_mask = torch.ones(2, num_fmri, dtype=torch.long)
    fmri_mask[1, 8:] = 0
    with torch.no_grad():
        outputs = model(fmri, fmri_mask, t1, return_loss=False)
        encoded = forward.harmonizer_encoder(state, fmri, fmri_mask.bool(), t1, ref.HEADS)
        reconstruction = forward.harmonizer_decoder(
            state, encoded, num_fmri + ref.NUM_T1, ref.HARMONIZER_DECODER["heads"]
        )
    assert (outputs.last_hidden_state - encoded).abs().max() <= TOLERANCE
    assert (outputs.reconstruction - reconstruction).abs().max() <= TOLERANCE


def test_readme_pretrained_weights_snippet_runs_as_written(release, tmp_path, monkeypatch):
    snippet = re.findall(
        r"```python\n(.*?)```", README.read_text().split("<!-- pretrained-weights -->", 1)[1], re.DOTALL
    )[0]
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 6
    monkeypatch.chdir(tmp_path)
    (tmp_path / "converted").symlink_to(release["output"])
    nib.save(load_t1_sample(), "sub-01_T1w.nii.gz")
    rng = np.random.default_rng(0)
    for subject in ("01", "02"):  # raw-scale series: ROI means in the thousands
        series = 5000.0 + rng.normal(scale=200.0, size=(ref.ROIS, 1)) + rng.normal(size=(ref.ROIS, 150))
        with open(f"sub-{subject}_schaefer400_17networks.csv", "w") as handle:
            handle.write("roi," + ",".join(f"t{index}" for index in range(150)) + "\n")
            for name, row in zip(schaefer400_roi_names("schaefer400_17networks"), series, strict=True):
                handle.write(f"{name}," + ",".join(f"{value:.6g}" for value in row) + "\n")
    namespace = {}
    exec(snippet, namespace)
    assert tuple(namespace["embedding"].shape) == (1, ref.WIDTH)
    assert torch.isfinite(namespace["embedding"]).all()
    assert int(namespace["inputs"]["attention_mask"].sum()) == 150


@pytest.mark.slow
def test_published_size_fmri_encoder_matches_the_reference(tmp_path):
    """BrainHarmonix-F at the published sizes (ViT-B, predictor 384 × 6, 400 × 11 pretraining tables), converted from a
    file and run on one TR 2.0 s subject of 40 frames (3 valid time patches of 18)."""
    state = ref.function_reference(width=768, layers=12, mlp=3072, predictor={"width": 384, "layers": 6, "mlp": 1536})
    torch.save(state, tmp_path / "model.pth")
    harmonics_path, gradients_path, harmonics, gradients = ref.write_table_csvs(tmp_path)
    folders = convert_reference_release(
        tmp_path / "converted",
        function=tmp_path / "model.pth",
        geometric_harmonics=harmonics_path,
        gradients=gradients_path,
    )
    model = AutoModel.from_pretrained(folders["function"]).eval()
    series = torch.randn(1, ref.ROIS, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(series, torch.tensor([2.0])).last_hidden_state
        expected, keep = forward.fmri_encoder(state, "encoder_ema", series, 2.0, harmonics, gradients, heads=12)
    assert int(keep.sum()) == ref.ROIS * 3
    assert (ours[keep] - expected[keep]).abs().max() <= 1e-4


def test_a_single_stage_converts_alone(release, tmp_path):
    output = tmp_path / "structure_only"
    config = release["paths"]["structure"].parent / "config"
    main(
        ["convert", "--structure", str(release["paths"]["structure"]), "--output", str(output), "--config", str(config)]
    )
    assert [path.name for path in output.iterdir()] == ["structure"]
    record = json.loads((output / "structure" / "conversion.json").read_text())
    assert record["model_class"] == "StructureMAEForPreTraining" and "fmri_inputs" not in record
    assert record["keys"]["structure"]["regenerated"].keys() == {"pos_embed", "decoder_pos_embed"}
    assert record["training_state_not_loaded"] == {"structure": ["args", "epoch"]}
