"""A one-seed version of `benchmarks/structure_learning.py` on deformed copies of nilearn's MNI152 template: the loop
logs the health metrics at every evaluation, and the pretrained StructureMAE ranks a T1's own augmented views higher
among unseen T1s than its initial weights do."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_one_seed_structure_benchmark(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports the function benchmark's run helpers
    spec = importlib.util.spec_from_file_location("structure_learning", BENCHMARKS / "structure_learning.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    (result,), voxels = benchmark.run_benchmark([0], tmp_path)
    for record in (result["initial_health"], result["health"]):
        # 4 held-out anatomies span at least half of the 3 dimensions 4 centred items can (no collapse).
        assert record["num_samples"] == 4 and record["effective_rank"] > 1.5 and record["relative_spread"] > 0.1
    assert result["held_out_loss"][1] < 0.5 * result["held_out_loss"][0]
    pretrained, initial = result["pretrained"], result["initial"]
    assert pretrained["num_queries"] == initial["num_queries"] == 16 * 12
    assert pretrained["mean_rank"] < initial["mean_rank"], result
    assert not result["collapse"]
    # The views are told apart by their voxels well above chance (1/16): the task is possible.
    assert voxels["identification_accuracy"] > 0.2
