"""Model cards built from saved folders: metadata, sections, the loading snippet (run as written), provenance."""

import json
import re

import pytest
import torch
from huggingface_hub import ModelCard
from small_configs import small_brainharmonix_config

from brainharmonix_hf import (
    BrainHarmonixForSequenceClassification,
    BrainHarmonixModel,
    BrainHarmonixProcessor,
    FunctionJEPAForPreTraining,
    HarmonizerModel,
    StructureMAEModel,
    build_model_card,
)
from brainharmonix_hf.modeling.hub_mixin import REPO_ID_PLACEHOLDER

SECTIONS = ["## Inputs", "## Loading", "## Training data and recipe", "## Evaluation", "## Provenance"]
SECTIONS += ["## Intended use and limitations", "## Citation"]


@pytest.fixture(scope="module")
def config():
    return small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=2)


def _snippet(card: ModelCard) -> str:
    return re.search(r"## Loading\n\n```python\n(.*?)```", card.text, re.S).group(1)


@pytest.mark.parametrize(
    ("build", "title", "input_text"),
    [
        (lambda c: StructureMAEModel(c.structure_config), "BrainHarmonix-S", "`(batch, 1, 32, 32, 32)`"),
        (lambda c: FunctionJEPAForPreTraining(c.function_config), "BrainHarmonix-F", "round(35.28 / TR) frames"),
        (lambda c: HarmonizerModel(c.harmonizer_config), "Harmonizer", "`fmri_latents` `(batch, 800, 24)`"),
        (lambda c: BrainHarmonixModel(c), "BrainHarmonix: BrainHarmonixModel", "up to 2 patches (70.56 s)"),
    ],
)
def test_every_model_type_gets_a_complete_card_whose_snippet_loads_it(config, tmp_path, build, title, input_text):
    model = build(config)
    model.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "transformers" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "feature-extraction" and "brainharmonix" in card.data.tags
    assert card.text.index(title) < card.text.index("## Inputs")
    assert [card.text.index(section) for section in SECTIONS] == sorted(card.text.index(s) for s in SECTIONS)
    assert input_text in card.text and "arXiv 2509.24693" in card.text and "not for diagnosis" in card.text
    snippet = _snippet(card)
    assert len(snippet.strip().splitlines()) <= 5
    namespace = {}
    exec(snippet.replace(REPO_ID_PLACEHOLDER, str(tmp_path)), namespace)
    assert type(namespace["model"]) is type(model)
    assert all(torch.equal(namespace["model"].state_dict()[k], v) for k, v in model.state_dict().items())


def test_card_follows_the_processor_saved_beside_the_model(config, tmp_path):
    BrainHarmonixModel(config).save_pretrained(tmp_path)
    assert "No processor was saved" in (tmp_path / "README.md").read_text()
    processor = BrainHarmonixProcessor.for_config(config)
    processor.fmri_feature_extractor.normalization = "robust"
    processor.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert "fMRI normalisation: `robust` (cohort median / IQR per ROI; not fitted: fit them on your cohort" in card.text
    assert "intensity normalisation `whole_volume`" in card.text and "No processor was saved" not in card.text
    namespace = {}
    exec(_snippet(card).replace(REPO_ID_PLACEHOLDER, str(tmp_path)), namespace)
    assert type(namespace["processor"]) is BrainHarmonixProcessor
    assert namespace["processor"].fmri_feature_extractor.normalization == "robust"


@pytest.mark.parametrize(
    ("labels", "metrics", "kind"),
    [
        (["control", "asd", "adhd"], ["accuracy", "f1", "roc_auc"], "3 classes (control, asd, adhd)"),
        (["flanker"], ["mse", "pearsonr"], "regression (one output)"),
    ],
)
def test_classifier_cards_state_the_head(tmp_path, labels, metrics, kind):
    config = small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=2)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    BrainHarmonixForSequenceClassification(config).save_pretrained(tmp_path)
    card = build_model_card(tmp_path, repo_id="lab/asd-classifier", base_model="lab/brainharmonix")
    assert card.data.pipeline_tag is None and card.data.metrics == metrics
    assert card.data.base_model == "lab/brainharmonix" and kind in card.text
    assert 'AutoModelForSequenceClassification.from_pretrained("lab/asd-classifier")' in card.text


def test_converted_weights_keep_the_reference_licence_and_provenance(config, tmp_path):
    provenance = {
        "license": "cc-by-nc-sa-4.0",
        "sources": [{"file": "harmonix-f/model.pth", "sha256": "ab" * 32}],
        "fmri_inputs": {"roi_order": "Schaefer-400 17-network order (CBIG)"},  # as the converters write it
    }
    (tmp_path / "conversion.json").write_text(json.dumps(provenance))
    FunctionJEPAForPreTraining(config.function_config).save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.license == "cc-by-nc-sa-4.0"
    assert "ab" * 32 in card.text and "harmonix-f/model.pth" in card.text
    assert "ROI order: Schaefer-400 17-network order (CBIG)." in card.text
    assert "Converted from the reference BrainHarmonix release" in card.text and "UK Biobank" in card.text
    assert "Licence of these weights: `cc-by-nc-sa-4.0`" in card.text


def test_a_folder_of_something_else_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="neither a brainharmonix_hf model nor one of its processors"):
        build_model_card(tmp_path)


def test_only_the_main_process_writes_card_and_code(config, tmp_path):
    StructureMAEModel(config.structure_config).save_pretrained(tmp_path, is_main_process=False)
    # transformers leaves weights and config to the main process; the card and code hooks follow it.
    assert list(tmp_path.iterdir()) == []
