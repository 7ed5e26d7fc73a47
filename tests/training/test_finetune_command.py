"""`brainharmonix finetune`: trains and evaluates from a latent cache (classifier, LoRA, linear probe), a manifest and
an embeddings table, with splits by subject; every option has help text."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch

from brainharmonix_hf import (
    BrainHarmonixModel,
    BrainHarmonixProcessor,
    HarmonizerForLinearProbing,
    HarmonizerForSequenceClassification,
    HarmonizerModel,
)
from brainharmonix_hf.cli import build_parser, main
from brainharmonix_hf.training.latent_cache import (
    cache_latents,
    embed_latent_cache,
    load_latent_cache,
    with_model_inputs,
)

FAST = ["--epochs", "2", "--warmup-epochs", "0", "--batch-size", "4", "--learning-rate", "1e-2", "--device", "cpu"]


def run(tmp_path, *arguments) -> dict:
    main(["finetune", "--output", str(tmp_path / "run"), *arguments, *FAST])
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_every_option_of_finetune_and_evaluate_has_help():
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name in ("finetune", "evaluate", "cache-latents"):
        for action in commands.choices[name]._actions:
            assert action.help and len(action.help) > 10, (name, action.dest)


def test_finetune_a_latent_cache_trains_and_evaluates(harmonizer_dir, latent_cache, tmp_path, capsys):
    report = run(tmp_path, "--model", harmonizer_dir, "--latent-cache", latent_cache)
    # The cache's split column: 8 training and 4 validation subjects, no test set.
    assert report["split"] == "the rows' split column" and "test" not in report
    assert report["sizes"]["train"] == {"rows": 8, "subjects": 8}
    assert report["sizes"]["validation"] == {"rows": 4, "subjects": 4}
    assert 0.0 <= report["validation"]["validation_f1"] <= 1.0 and np.isfinite(report["validation"]["validation_loss"])
    model = HarmonizerForSequenceClassification.from_pretrained(tmp_path / "run" / "model").eval()
    assert model.config.label2id == {"0": 0, "1": 1}
    assert "validation: " in capsys.readouterr().out
    trainer_state = json.loads((tmp_path / "run" / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [entry["epoch"] for entry in trainer_state["log_history"] if "eval_f1" in entry] == [1.0, 2.0]


def test_finetune_with_lora_saves_a_merged_model(harmonizer_dir, latent_cache, tmp_path):
    report = run(tmp_path, "--model", harmonizer_dir, "--latent-cache", latent_cache, "--lora", "--lora-rank", "2")
    assert report["lora"] == {"rank": 2, "alpha": 16}
    merged = HarmonizerForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    original = HarmonizerForSequenceClassification.from_pretrained(harmonizer_dir)
    assert not torch.equal(
        merged.harmonizer.layers[0].attention.qkv.weight, original.harmonizer.layers[0].attention.qkv.weight
    )
    assert not any("lora" in name for name in merged.state_dict())


def test_linear_probe_from_a_cache_without_splits_holds_out_subjects(cohort, tiny_model_dir, harmonizer_dir, tmp_path):
    # The same cohort without a split column, each subject with two sessions: a split by subject is made.
    rows = [row | {"split": None, "session": session} for row in cohort for session in ("1", "2")]
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir)
    cache_latents(model, BrainHarmonixProcessor.from_pretrained(tiny_model_dir), rows, tmp_path / "cache")
    report = run(
        tmp_path, "--model", tiny_model_dir, "--latent-cache", str(tmp_path / "cache"), "--head", "linear-probe"
    )
    sizes = report["sizes"]
    assert report["split"] == "stratified by subject (seed 0)"
    assert sum(size["subjects"] for size in sizes.values()) == 12
    assert all(size["rows"] == 2 * size["subjects"] > 0 for size in sizes.values())
    assert set(report["test"]) >= {"test_f1", "test_auroc", "test_loss"}
    probe = HarmonizerForLinearProbing.from_pretrained(tmp_path / "run" / "model")
    assert probe.config.num_labels == 2


def test_finetune_a_manifest_end_to_end(cohort, tiny_model_dir, tmp_path):
    manifest = tmp_path / "cohort.csv"
    pd.DataFrame(cohort).to_csv(manifest, index=False)
    report = run(tmp_path, "--model", tiny_model_dir, "--manifest", str(manifest), "--epochs", "1")
    assert report["sizes"]["train"]["rows"] == 8 and np.isfinite(report["validation"]["validation_loss"])
    with pytest.raises(ValueError, match="cache the latents first"):
        main(["finetune", "--output", str(tmp_path / "probe"), "--model", tiny_model_dir, "--manifest", str(manifest),
              "--head", "linear-probe"])  # fmt: skip


def test_linear_probe_on_embeddings_equals_the_probe_on_latents(harmonizer_dir, latent_cache, tmp_path):
    cache = load_latent_cache(latent_cache)
    embeddings = embed_latent_cache(cache, HarmonizerModel.from_pretrained(harmonizer_dir))
    table = cache.select_columns(["subject", "label", "split"]).to_pandas().assign(embedding=list(embeddings))
    table.to_parquet(tmp_path / "embeddings.parquet")
    report = run(
        tmp_path,
        "--model",
        harmonizer_dir,
        "--embeddings",
        str(tmp_path / "embeddings.parquet"),
        "--head",
        "linear-probe",
        "--task",
        "regression",
    )
    assert report["task"] == "regression" and np.isfinite(report["validation"]["validation_mse"])
    # The probe trained on stored embeddings reads latents the same way.
    probe = HarmonizerForLinearProbing.from_pretrained(tmp_path / "run" / "model").eval()
    inputs = with_model_inputs(cache)[:4]
    with torch.no_grad():
        from_latents = probe(**inputs).logits
        from_embeddings = probe(pooled_hub_tokens=torch.from_numpy(embeddings[:4])).logits
    torch.testing.assert_close(from_latents, from_embeddings, rtol=1e-4, atol=1e-5)


def test_split_column_with_a_subject_on_two_sides_is_refused(harmonizer_dir, tmp_path):
    # Subject s1's first session is in train and its second in test: its other session would teach the answer.
    rng = np.random.default_rng(0)
    hidden_size = HarmonizerModel.from_pretrained(harmonizer_dir).config.hidden_size
    table = pd.DataFrame(
        {
            "subject": ["s0", "s0", "s1", "s1", "s2", "s3", "s4", "s5"],
            "session": ["1", "2", "1", "2", "1", "1", "1", "1"],
            "label": ["a", "a", "b", "b", "a", "b", "a", "b"],
            "split": ["train", "train", "train", "test", "validation", "validation", "validation", "test"],
            "embedding": list(rng.normal(size=(8, hidden_size))),
        }
    )
    table.to_parquet(tmp_path / "embeddings.parquet")
    arguments = ["--model", harmonizer_dir, "--embeddings", str(tmp_path / "embeddings.parquet")]
    with pytest.raises(ValueError) as error:
        run(tmp_path, *arguments, "--head", "linear-probe")
    assert str(error.value) == (
        "subjects ['s1'] have rows in two of the train / validation / test parts of the split column: keep all "
        "sessions of a subject in one part (or leave `split` empty for a split by subject)."
    )
    assert not (tmp_path / "run").exists()  # refused before anything is written
    # With s1's sessions on one side the same table trains.
    table.loc[3, "split"] = "train"
    table.to_parquet(tmp_path / "embeddings.parquet")
    report = run(tmp_path, *arguments, "--head", "linear-probe")
    assert report["sizes"]["train"] == {"rows": 4, "subjects": 2} and report["sizes"]["test"] == {
        "rows": 1,
        "subjects": 1,
    }


def test_the_seed_fixes_the_new_head_whatever_ran_before(harmonizer_dir, latent_cache, tmp_path):
    """The classifier head is initialised under the run's seed: two runs with one seed train the same model even when
    the global random state differs before them."""
    weights = []
    for index, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)
        main(["finetune", "--output", str(tmp_path / str(index)), "--model", harmonizer_dir, "--latent-cache",
              latent_cache, "--seed", "3", *FAST])  # fmt: skip
        model = HarmonizerForSequenceClassification.from_pretrained(tmp_path / str(index) / "model")
        weights.append(model.classifier.dense.weight)
    assert weights[0].abs().sum() > 0
    torch.testing.assert_close(weights[0], weights[1], atol=0, rtol=0)
