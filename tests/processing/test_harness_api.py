"""The harness-shaped API: the README's wrapper (at most 12 code lines) run against a loader of dict samples of mixed
lengths and TRs, as an evaluation harness feeds it; `FMRISampleTransform`; `batch_valid_tokens`.

Real data: the LEMON run that brainspace ships, in Schaefer-400 17-network column order (the harness's), z-scored per
ROI with its mean and std kept beside it; windows at TR 1.4 s and downsampled to 2.8 s and 4.2 s.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from brainharmonix_hf import (
    FMRIFeatureExtractor,
    FMRISampleTransform,
    FunctionJEPAConfig,
    FunctionJEPAModel,
    batch_valid_tokens,
    split_valid_tokens,
)
from brainharmonix_hf.processing.atlases import SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS, schaefer400_permutation

README = Path(__file__).resolve().parents[2] / "README.md"
SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
TO_17 = schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)


def readme_harness_block() -> str:
    return re.search(r"<!-- harness -->\n```python\n(.*?)```", README.read_text(), flags=re.DOTALL).group(1)


class HarnessSamples(Dataset):
    """Dict samples as a harness yields them: `bold` time-first z-scored (17-network columns), `mean`, `std`, `tr`,
    `target`; windows of different lengths and TRs, each passed through `transform`."""

    def __init__(self, lemon_7networks: np.ndarray, transform):
        run = lemon_7networks[TO_17].T  # (frames, ROIs), 17-network order
        windows = [(run[:100], 1.4), (run[::2][:60], 2.8), (run[::3][:40], 4.2), (run[200:230], 1.4)]
        self.samples = []
        for index, (window, tr) in enumerate(windows):
            mean, std = window.mean(axis=0), window.std(axis=0)
            self.samples.append({"bold": (window - mean) / std, "mean": mean, "std": std, "tr": tr, "target": index})
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.transform(self.samples[index])


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    FunctionJEPAModel(FunctionJEPAConfig(**SMALL)).save_pretrained(tmp_path)
    FMRIFeatureExtractor(normalization="zscore").save_pretrained(tmp_path)
    return tmp_path


def test_readme_harness_wrapper_is_at_most_12_code_lines():
    lines = [line for line in readme_harness_block().splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith(("import ", "from "))]
    assert len(code) <= 12, code


def test_readme_harness_wrapper_runs_on_a_dict_sample_loader_with_mixed_lengths_and_trs(checkpoint, lemon_schaefer400):
    namespace = {}
    exec(readme_harness_block(), namespace)
    wrapper = namespace["BrainHarmonixF"](checkpoint)
    loader = DataLoader(HarnessSamples(lemon_schaefer400, wrapper.transform), batch_size=4, collate_fn=default_collate)
    (batch,) = list(loader)
    pooled, tokens, mask = wrapper(batch)

    # Valid time patches: 100 frames at TR 1.4 s (25-frame patches) fill 4; 60 at 2.8 s (13) fill 5; 40 at 4.2 s
    # (8) fill 5; 30 at 1.4 s fill 2. Slots padding in every series (time patches 5..17) are dropped: 400 x 5 stay.
    assert pooled.shape == (4, 1, 32) and tokens.shape == (4, 400 * 5, 32) and mask.shape == (4, 400 * 5)
    assert mask.sum(dim=1).tolist() == [400 * 4, 400 * 5, 400 * 5, 400 * 2]
    assert batch["target"].tolist() == [0, 1, 2, 3]
    weights = mask.unsqueeze(-1).float()
    torch.testing.assert_close(pooled[:, 0], (tokens * weights).sum(dim=1) / weights.sum(dim=1))
    assert torch.equal(tokens[mask == 0], torch.zeros_like(tokens[mask == 0]))

    # The same series in the model's (7-network) order through the batched processor give the same embeddings.
    dataset = HarnessSamples(lemon_schaefer400, lambda sample: sample)
    series_7 = [sample["bold"][:, np.argsort(TO_17)] for sample in dataset.samples]
    direct = FMRIFeatureExtractor.from_pretrained(checkpoint)(
        series_7,
        repetition_time=[sample["tr"] for sample in dataset.samples],
        layout="time_first",
        atlas=SCHAEFER400_7NETWORKS,
        return_tensors="pt",
    )
    with torch.no_grad():
        outputs = wrapper.model(**direct)
    torch.testing.assert_close(pooled[:, 0], outputs.pooler_output, rtol=1e-5, atol=1e-5)
    per_series = split_valid_tokens(outputs.last_hidden_state, outputs.token_mask)
    assert [len(series_tokens) for series_tokens in per_series] == mask.sum(dim=1).tolist()


def test_a_robust_scaling_processor_gets_the_original_signal_back_from_mean_and_std(lemon_schaefer400):
    raw = 9000.0 + 50.0 * lemon_schaefer400  # scanner-scale signal, 7-network rows
    cohort_means = raw.mean(axis=1)[None] + np.random.default_rng(0).normal(scale=30.0, size=(8, 400))
    extractor = FMRIFeatureExtractor(normalization="robust").fit_robust_statistics_from_means(
        cohort_means, atlas=SCHAEFER400_7NETWORKS
    )
    window = raw[TO_17, :80].T  # time-first, 17-network columns
    mean, std = window.mean(axis=0), window.std(axis=0)
    sample = {"bold": (window - mean) / std, "mean": mean, "std": std, "tr": 1.4, "subject": "sub-01"}
    transformed = FMRISampleTransform(extractor, atlas=SCHAEFER400_17NETWORKS)(sample)
    direct = extractor(raw[:, :80], repetition_time=1.4, layout="rois_first", atlas=SCHAEFER400_7NETWORKS)
    np.testing.assert_allclose(transformed["fmri_values"][:, :80].numpy(), direct["fmri_values"][0][:, :80], atol=1e-4)
    assert transformed["subject"] == "sub-01" and "bold" not in transformed and "mean" not in transformed
    without_scale = {key: sample[key] for key in ("bold", "tr")}
    with pytest.raises(ValueError, match=r"needs the 'mean' and 'std' it was z-scored with.*mean_key="):
        FMRISampleTransform(extractor, atlas=SCHAEFER400_17NETWORKS)(without_scale)


def test_a_sample_without_its_series_names_the_keys():
    transform = FMRISampleTransform(FMRIFeatureExtractor(), atlas=SCHAEFER400_7NETWORKS)
    with pytest.raises(KeyError, match=r"no 'bold' entry \(entries: timeseries, tr\).*series_key="):
        transform({"timeseries": np.zeros((30, 400)), "tr": 2.0})


def test_batch_valid_tokens_drops_only_slots_padded_in_every_series():
    tokens = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)
    token_mask = torch.tensor([[1, 0, 1, 0, 0, 0], [1, 1, 0, 0, 1, 0]])
    kept, mask = batch_valid_tokens(tokens, token_mask)
    assert mask.tolist() == [[1, 0, 1, 0], [1, 1, 0, 1]]
    torch.testing.assert_close(kept, tokens[:, [0, 1, 2, 4]])
