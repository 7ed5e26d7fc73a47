# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix demo`: the whole pipeline on the bundled real data, run in-process with two steps per stage."""

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image
from transformers import AutoModel

from brainharmonix_hf.cli import console_main, main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("brainspace") is None,
    reason="the fMRI sample ships in brainspace (`pip install --no-deps brainspace`)",
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Output folder and printed lines of one short demo run."""
    output = tmp_path_factory.mktemp("demo") / "run"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["demo", "--output", str(output), "--steps", "2", "--seed", "1"])
    return output, printed.getvalue().splitlines()


def test_demo_writes_a_report_of_the_whole_pipeline(demo_run):
    output, lines = demo_run
    metrics = json.loads((output / "report" / "metrics.json").read_text())
    for stage in ("structure", "function", "harmonizer"):
        losses = metrics["pretraining_losses"][stage]
        assert losses["train"]["points"] == 2 and np.isfinite(losses["train"]["last"])
        assert np.isfinite(losses["validation"]["first"]) and np.isfinite(losses["validation"]["last"])
    # 6 subjects × 2 sessions of the sample BIDS tree, all embedded.
    assert metrics["embedding"] == {"sessions": 12, "embedded": 12, "failed": 0, "dimension": 48}
    probe = metrics["linear_probe"]
    summary = probe["models"]["linear_probe"]["summary"]
    assert 0.0 <= summary["balanced_accuracy"]["mean"] <= 1.0 and len(probe["models"]) == 1
    # Splits by subject: 6 subjects of 2 sessions, each subject wholly in one part of every split.
    assert (probe["num_subjects"], probe["num_sessions"]) == (6, 12)
    for row in probe["models"]["linear_probe"]["splits"]:
        subjects = [row[f"num_{part}_subjects"] for part in ("train", "validation", "test")]
        assert sum(subjects) == 6 and [row[f"num_{part}"] for part in ("train", "validation", "test")] == [
            2 * count for count in subjects
        ]
    # Every interval inside the metric's range.
    for name, values in summary.items():
        assert 0.0 <= values["ci_low"] <= values["mean"] <= values["ci_high"] <= 1.0, (name, values)
    assert any(line.startswith("linear probe, splits by subject (6 subjects, 12 sessions)") for line in lines)
    for figure in metrics["figures"]:
        with Image.open(figure) as image:
            assert image.size[0] > 200 and image.size[1] > 100
    assert len(metrics["figures"]) == 6
    assert lines[-1] == f"report: {output / 'report'} (metrics.json and 6 figures)"


def test_demo_model_reloads_with_its_card(demo_run):
    output, _ = demo_run
    model_dir = output / "models" / "brainharmonix"
    card = (model_dir / "README.md").read_text()
    assert "library_name: transformers" in card
    model = AutoModel.from_pretrained(model_dir)
    assert model.config.harmonizer_config.num_hub_tokens == 16


def test_demo_refuses_a_used_folder(demo_run):
    output, _ = demo_run
    with pytest.raises(FileExistsError, match="not empty"):
        main(["demo", "--output", str(output)])


def test_console_prints_input_errors_without_a_traceback(demo_run, tmp_path, capsys):
    output, _ = demo_run
    for argv, message in (
        (["demo", "--output", str(output)], f"brainharmonix demo: {output} is not empty"),
        (
            ["evaluate", "--source", f"a={tmp_path / 'gone.parquet'}", "--output", str(tmp_path / "r.json")],
            f"brainharmonix evaluate: No embeddings table or model folder at {tmp_path / 'gone.parquet'}",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info:
            console_main(argv)
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert error.startswith(message) and "Traceback" not in error
    assert not (tmp_path / "r.json").exists()


def test_cli_requires_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "demo" in capsys.readouterr().err
