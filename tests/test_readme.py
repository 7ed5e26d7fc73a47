# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The README's practitioner path, executed as written on real files (a small model stands in for the checkpoint)."""

import importlib.util
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from small_configs import small_brainharmonix_config

from brainharmonix_hf.processing.atlases import schaefer400_roi_names
from brainharmonix_hf.sample_data import load_fmri_sample, load_t1_sample

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def quickstart(text: str) -> str:
    """The code block right after the `<!-- quickstart -->` marker."""
    return python_blocks(text.split("<!-- quickstart -->", 1)[1])[0]


def test_quickstart_has_at_most_five_lines():
    lines = [line for line in quickstart(README.read_text()).splitlines() if line.strip()]
    assert len(lines) <= 5, lines


@pytest.mark.skipif(
    importlib.util.find_spec("brainspace") is None,
    reason="the fMRI sample ships in brainspace (`pip install --no-deps brainspace`)",
)
def test_readme_snippets_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = README.read_text()
    # The subject's files, as the quickstart names them: a real T1 NIfTI and a real ROI CSV (5 minutes at TR 2 s
    # stand-in: the first 150 frames of the LEMON run).
    nib.save(load_t1_sample(), "sub-01_T1w.nii.gz")
    series = load_fmri_sample().series[:, :150]
    with open("sub-01_schaefer400.csv", "w") as handle:
        handle.write("roi," + ",".join(f"t{index}" for index in range(series.shape[1])) + "\n")
        for name, row in zip(schaefer400_roi_names("schaefer400_7networks"), series, strict=True):
            handle.write(f"{name}," + ",".join(f"{value:.6g}" for value in row) + "\n")

    # The checkpoint snippet as written, with a small config in place of the published sizes.
    (checkpoint_snippet,) = [block for block in python_blocks(text) if "config = BrainHarmonixConfig()" in block]
    lines = [line for line in checkpoint_snippet.splitlines() if line != "config = BrainHarmonixConfig()"]
    assert len(lines) == len(checkpoint_snippet.splitlines()) - 1
    exec("\n".join(lines), {"config": small_brainharmonix_config()})

    namespace = {}
    exec(quickstart(text), namespace)
    embedding = namespace["embedding"]
    assert tuple(embedding.shape) == (1, 24)
    assert np.isfinite(embedding.detach().numpy()).all()
    # 150 frames at TR 2 s in patches of round(35.28 / 2) = 18 frames: 9 of the 18 time patches are valid.
    assert int(namespace["inputs"]["attention_mask"].sum()) == 150
