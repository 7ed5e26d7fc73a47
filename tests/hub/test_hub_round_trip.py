"""push_to_hub -> from_pretrained -> ModelCard.load through the in-memory Hub (no network), the offline cache in a
fresh process, and revision pinning."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from fake_hub import fake_hub  # noqa: F401  (fixture)
from huggingface_hub import ModelCard
from small_configs import small_brainharmonix_config
from transformers import AutoModel, AutoModelForPreTraining, AutoProcessor

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor, StructureMAEForPreTraining


@pytest.fixture(scope="module")
def config():
    return small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=2)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_stage_model_push_pull_and_card(fake_hub, config):  # noqa: F811
    torch.manual_seed(0)
    model = StructureMAEForPreTraining(config.structure_config)
    model.push_to_hub("lab/structure-tiny", tags=["t1"])
    loaded = AutoModelForPreTraining.from_pretrained("lab/structure-tiny")
    assert type(loaded) is StructureMAEForPreTraining and _same_weights(model, loaded)
    card = ModelCard.load("lab/structure-tiny")
    assert card.data.library_name == "transformers" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "feature-extraction" and {"brainharmonix", "t1"} <= set(card.data.tags)
    assert 'AutoModelForPreTraining.from_pretrained("lab/structure-tiny")' in card.text
    assert "`(batch, 1, 32, 32, 32)`" in card.text
    assert fake_hub.unhandled == []


def test_processor_push_pull_and_card(fake_hub, config):  # noqa: F811
    processor = BrainHarmonixProcessor.for_config(config)
    processor.fmri_feature_extractor.normalization = "zscore"
    processor.push_to_hub("lab/processor")
    loaded = AutoProcessor.from_pretrained("lab/processor")
    assert type(loaded) is BrainHarmonixProcessor
    assert loaded.fmri_feature_extractor.to_dict() == processor.fmri_feature_extractor.to_dict()
    assert loaded.t1_feature_extractor.volume_size == [32, 32, 32]
    card = ModelCard.load("lab/processor")
    assert card.data.pipeline_tag is None and "fMRI normalisation: `zscore` (scope `roi`)" in card.text
    assert 'AutoProcessor.from_pretrained("lab/processor")' in card.text


def test_composite_push_pull_offline_cache_and_revisions(fake_hub, config, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    first = BrainHarmonixModel(config).eval()
    first_commit = first.push_to_hub("lab/brainharmonix-tiny", commit_message="first").oid
    BrainHarmonixProcessor.for_config(config).push_to_hub("lab/brainharmonix-tiny")
    second = BrainHarmonixModel(config).eval()
    second.push_to_hub("lab/brainharmonix-tiny", commit_message="second")

    assert _same_weights(AutoModel.from_pretrained("lab/brainharmonix-tiny"), second)
    assert _same_weights(AutoModel.from_pretrained("lab/brainharmonix-tiny", revision=first_commit), first)
    assert not _same_weights(first, second)
    card = ModelCard.load("lab/brainharmonix-tiny")
    assert "Atlas `schaefer400_7networks`" in card.text and "CLS + 4 hub tokens `(batch, 5, 24)`" in card.text
    # The card of the last (model) push still describes the processor pushed before it.
    assert "fMRI normalisation: `none`" in card.text and 'AutoProcessor.from_pretrained("lab/brainharmonix' in card.text
    # The processor pushed between the two model commits is still there: each commit keeps the other files.
    assert type(AutoProcessor.from_pretrained("lab/brainharmonix-tiny")) is BrainHarmonixProcessor

    series = np.random.default_rng(0).standard_normal((400, 60)).astype(np.float32)
    np.save(tmp_path / "series.npy", series)
    with torch.no_grad():
        expected = second(fmri_values=torch.from_numpy(series)[None], repetition_time=torch.tensor([1.0]))
    torch.save(expected.last_hidden_state, tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import numpy as np, torch
        import brainharmonix_hf
        from transformers import AutoModel
        model = AutoModel.from_pretrained("lab/brainharmonix-tiny").eval()
        series = torch.from_numpy(np.load({str(tmp_path / "series.npy")!r}))[None]
        with torch.no_grad():
            out = model(fmri_values=series, repetition_time=torch.tensor([1.0])).last_hidden_state
        assert torch.equal(out, torch.load({str(tmp_path / "expected.pt")!r}))
        try:
            AutoModel.from_pretrained("lab/never-pushed")
        except OSError as error:
            print("refused:", type(error).__name__)
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(fake_hub.home / "hub"), "HF_HUB_OFFLINE": "1"}
    env["HF_HOME"] = str(fake_hub.home)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused: OSError" in result.stdout


def test_user_written_card_is_kept_unless_overwritten(fake_hub, config, tmp_path):  # noqa: F811
    model = StructureMAEForPreTraining(config.structure_config)
    model.push_to_hub("lab/with-card")
    user_card = ModelCard("---\nlicense: mit\n---\n# Our lab's T1 encoder\nHand-written notes.\n")
    user_card.push_to_hub("lab/with-card")
    model.push_to_hub("lab/with-card", tags=["extra"])
    kept = ModelCard.load("lab/with-card")
    assert "Hand-written notes." in kept.text and kept.data.license == "mit" and "extra" in kept.data.tags
    model.push_to_hub("lab/with-card", overwrite_card=True)
    assert "Hand-written notes." not in ModelCard.load("lab/with-card").text

    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "README.md").write_text("# mine\n")
    model.save_pretrained(folder)
    assert (folder / "README.md").read_text() == "# mine\n"
    model.save_pretrained(folder, overwrite_card=True)
    assert "BrainHarmonix-S" in (folder / "README.md").read_text()


def test_new_weights_pushed_over_converted_ones_get_their_own_licence(fake_hub, config, tmp_path):  # noqa: F811
    from huggingface_hub import HfApi

    record = tmp_path / "conversion.json"
    record.write_text('{"license": "cc-by-nc-sa-4.0", "sources": []}')
    api = HfApi()
    api.create_repo("lab/reused")
    api.upload_file(path_or_fileobj=str(record), path_in_repo="conversion.json", repo_id="lab/reused")
    StructureMAEForPreTraining(config.structure_config).push_to_hub("lab/reused")
    card = ModelCard.load("lab/reused")
    assert card.data.license == "apache-2.0" and "cc-by-nc-sa" not in card.text
