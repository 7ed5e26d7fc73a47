"""Each picture is written, and the values drawn are the model's / the data's (read back from the figure's artists)."""

import json

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from small_configs import small_brainharmonix_config

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.cli import main
from brainharmonix_hf.modeling.harmonizer_tokens import combine_modalities
from brainharmonix_hf.processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from brainharmonix_hf.sample_data import load_fmri_sample, load_t1_sample
from brainharmonix_hf.visualization import (
    hub_attention_per_roi,
    model_input_box,
    plot_embedding_scatter,
    plot_hub_attention,
    plot_loss_curves,
    plot_t1_input,
)
from brainharmonix_hf.visualization.surface_panels import fsaverage5_schaefer400

NUM_TIME_PATCHES = 4  # 100 frames of the LEMON run at TR 1.4 s (25-frame patches)


@pytest.fixture(scope="module")
def t1_image():
    return load_t1_sample()


def attention_by_hand(model, inputs) -> np.ndarray:
    """Hub-token attention per ROI of a one-layer Harmonizer, from its weights (no attention backend)."""
    latents = model.encode_modalities(**{k: v for k, v in inputs.items()})
    config = model.harmonizer.config
    tokens, token_mask = combine_modalities(config, **latents)
    embeddings = model.harmonizer.embeddings(tokens, token_mask).hidden_states  # [CLS, hub tokens, valid tokens]
    layer = model.harmonizer.layers[0]
    attention = layer.attention
    qkv = attention.qkv(layer.norm1(embeddings))[0].view(-1, 3, attention.num_attention_heads, attention.head_dim)
    query, key = qkv[:, 0].transpose(0, 1), qkv[:, 1].transpose(0, 1)
    weights = torch.softmax(query @ key.transpose(1, 2) * attention.scaling, dim=-1).mean(0)
    num_hub = config.num_hub_tokens
    valid = torch.nonzero(token_mask[0]).squeeze(1)
    rois = valid[valid < config.num_fmri_tokens] // NUM_TIME_PATCHES
    per_roi = np.zeros((num_hub, 400))
    for column, roi in enumerate(rois.tolist()):
        per_roi[:, roi] += weights[1 : 1 + num_hub, 1 + num_hub + column].numpy()
    return per_roi


@torch.no_grad()
def test_hub_attention_is_the_models_and_is_drawn(t1_image, tmp_path):
    torch.manual_seed(0)
    model = BrainHarmonixModel(small_brainharmonix_config(num_time_patches=NUM_TIME_PATCHES)).eval()
    fmri = load_fmri_sample()
    # The run is 652 frames: the model holds 100; a shorter run (90 frames) leaves the last time patch partly padded.
    inputs = BrainHarmonixProcessor.for_config(model.config)(
        t1=t1_image,
        fmri=fmri.series[:, :90],
        repetition_time=fmri.repetition_time,
        layout="rois_first",
        return_tensors="pt",
    )
    attention = hub_attention_per_roi(model, inputs)
    assert attention.shape == (4, 400) and model.harmonizer.config._attn_implementation == "sdpa"
    np.testing.assert_allclose(attention, attention_by_hand(model, inputs), rtol=1e-4, atol=1e-7)
    assert np.all(attention.sum(1) < 1) and np.all(attention > 0)

    output = tmp_path / "attention.png"
    figure = plot_hub_attention(attention, output, hub_tokens=(2,))
    assert output.stat().st_size > 10_000
    # One colour scale for every row, centred on uniform attention (1/400 of a hub token's attention per ROI) and
    # wide enough for every value; one colour bar.
    norms = {id(axis.collections[0].norm) for axis in figure.axes[:8]}
    norm = figure.axes[0].collections[0].norm
    assert len(norms) == 1 and norm.vcenter == pytest.approx(1 / 400)
    assert norm.vmin <= attention.min() and norm.vmax >= attention.max() and len(figure.axes) == 9
    assert "uniform" in figure.get_suptitle() and "1/400" in figure.get_suptitle()
    meshes = fsaverage5_schaefer400()
    for row, values in enumerate([attention.mean(0), attention[2]]):
        for column, hemisphere in ((0, "left"), (3, "right")):
            drawn = figure.axes[4 * row + column].collections[0].get_array()
            mesh = meshes[hemisphere]
            labels = mesh.labels[mesh.faces[:, 0]]
            np.testing.assert_allclose(np.sort(drawn.compressed()), np.sort(values[labels[labels > 0] - 1]))
            assert drawn.mask.sum() == (labels == 0).sum()  # the medial wall
    plt.close(figure)
    with pytest.raises(ValueError, match="schaefer400_7networks order"):
        plot_hub_attention(attention, atlas="schaefer400_17networks")


def test_loss_curves_are_the_log(tmp_path):
    # A real (tiny) optimisation writes the log in the run-folder format.
    torch.manual_seed(0)
    inputs, weight = torch.randn(64, 8), torch.randn(8, 1)
    targets = inputs @ weight
    layer = torch.nn.Linear(8, 1)
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.05)
    records = []
    for step in range(1, 41):
        loss = torch.nn.functional.mse_loss(layer(inputs[:48]), targets[:48])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        records.append(
            {"step": step, "epoch": 0, "loss": loss.item(), "lr": 0.05, "samples_per_second": 1e3, "split": "train"}
        )
        if step % 10 == 0:
            with torch.no_grad():
                validation = torch.nn.functional.mse_loss(layer(inputs[48:]), targets[48:]).item()
            records.append({"step": step, "epoch": 0, "loss": validation, "split": "validation"})
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))

    figure = plot_loss_curves(tmp_path, tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 5_000
    train, validation = figure.axes[0].lines
    assert (train.get_label(), validation.get_label()) == ("train", "validation")
    expected = {split: [r for r in records if r["split"] == split] for split in ("train", "validation")}
    for line, split in ((train, "train"), (validation, "validation")):
        np.testing.assert_array_equal(line.get_xdata(), [r["step"] for r in expected[split]])
        np.testing.assert_array_equal(line.get_ydata(), [r["loss"] for r in expected[split]])
    assert train.get_ydata()[-1] < 0.1 * train.get_ydata()[0]
    plt.close(figure)

    main(["plot", "losses", "--run-dir", str(tmp_path), "--output", str(tmp_path / "cli.png")])
    assert (tmp_path / "cli.png").stat().st_size > 5_000
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "log.jsonl").write_text('{"step": 1, "split": "train"}\n')
    with pytest.raises(ValueError, match=r"no \['loss'\] field"):
        plot_loss_curves(tmp_path / "bad")


def test_embedding_scatter_is_the_pca(tmp_path):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((30, 24)) + np.repeat([[0.0], [2.0], [4.0]], 10, axis=0)
    labels = ["control"] * 10 + ["patient"] * 10 + ["sibling"] * 10
    figure = plot_embedding_scatter(embeddings, labels, tmp_path / "scatter.png", label_name="group", unit="session")
    assert figure.axes[0].get_title() == "30 session embeddings"
    assert (tmp_path / "scatter.png").stat().st_size > 5_000
    expected = PCA(n_components=2).fit_transform(embeddings)
    points = figure.axes[0].collections
    assert [p.get_label() for p in points] == ["control", "patient", "sibling"]
    np.testing.assert_allclose(np.concatenate([p.get_offsets() for p in points]), expected, atol=1e-10)
    plt.close(figure)


def test_t1_box_is_what_the_model_sees(t1_image, tmp_path):
    extractor = T1VolumeFeatureExtractor()
    volume, box = model_input_box(extractor, t1_image)
    assert (box[:, 1] - box[:, 0]).tolist() == [160, 192, 160]
    # Inside the volume the box holds exactly the voxels the processor hands the model (z-scored), and the box's
    # first voxel sits at the processor's MNI coordinates.
    inside = tuple(slice(max(start, 0), min(stop, size)) for (start, stop), size in zip(box, volume.shape, strict=True))
    pixels = extractor(t1_image)["pixel_values"][0, 0]
    seen = pixels[tuple(slice(s.start - start, s.stop - start) for s, (start, _) in zip(inside, box, strict=True))]
    padded = np.pad(volume, extractor.reference_padding)
    np.testing.assert_allclose(seen, (volume[inside] - padded.mean()) / padded.std(), atol=1e-4)
    world = nib.affines.apply_affine(t1_image.affine, box[:, 0])
    np.testing.assert_allclose(world, extractor.input_affine()[:3, 3])
    # The picture follows the affine: an LPS copy with a trimmed field of view shows the same box and voxels.
    flipped = t1_image.get_fdata()[::-1, ::-1, 10:]
    lps = nib.Nifti1Image(flipped, t1_image.affine @ nib.affines.from_matvec(np.diag([-1, -1, 1]), [196, 232, 10]))
    lps_volume, lps_box = model_input_box(extractor, lps)
    np.testing.assert_array_equal(lps_box, box)
    np.testing.assert_array_equal(lps_volume[:, :, 10:], volume[:, :, 10:])
    assert not lps_volume[:, :, :10].any()

    figure = plot_t1_input(t1_image, extractor, tmp_path / "t1.png")
    assert (tmp_path / "t1.png").stat().st_size > 10_000
    # Everything in MNI mm (1 mm grid from (-98, -134, -72) mm): the box starts at the processor's MNI corner, the image
    # spans the grid's voxel edges, and labels and titles say mm.
    corner, grid_origin = extractor.input_affine()[:3, 3], extractor.grid()[0][:3, 3]
    for axis, shown in zip(figure.axes, ((1, 2), (0, 2), (0, 1)), strict=True):
        rectangle = axis.patches[0]
        np.testing.assert_allclose(rectangle.get_xy(), corner[list(shown)] - 0.5)
        assert (rectangle.get_width(), rectangle.get_height()) == tuple(box[list(shown), 1] - box[list(shown), 0])
        image = axis.images[0]
        assert image.get_array().shape == tuple(volume.shape[i] for i in shown)[::-1]
        low = grid_origin[list(shown)] - 0.5
        np.testing.assert_allclose(image.get_extent(), [low[0], low[0] + volume.shape[shown[0]], low[1],
                                                        low[1] + volume.shape[shown[1]]])  # fmt: skip
        assert "mm" in axis.get_xlabel() and "mm" in axis.get_ylabel() and axis.get_title().endswith(" mm")
    plt.close(figure)


def test_loss_curves_show_the_health_metrics_and_collapse_events(tmp_path):
    """A pretraining log with health metrics and a collapse event (as the loop writes them): the last panel draws
    the spread and the effective rank relative to the first evaluation, the threshold, and the event."""
    records = [
        {"step": 0, "epoch": 0, "loss": 0.5, "split": "validation", "relative_spread": 0.4, "effective_rank": 6.0}
    ]
    for step, spread, rank in ((1, 0.3, 5.0), (2, 0.05, 4.5)):
        records.append({"step": step, "epoch": 0, "loss": 0.5 / (step + 1), "lr": 1e-3, "split": "train"})
        records.append(
            {"step": step, "epoch": 0, "loss": 0.4 / step, "split": "validation", "relative_spread": spread,
             "effective_rank": rank}
        )  # fmt: skip
    records.append({"step": 2, "epoch": 0, "split": "validation", "event": "collapse", "reasons": ["spread fell"]})
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    figure = plot_loss_curves(tmp_path, tmp_path / "health.png")
    assert len(figure.axes) == 3
    spread, rank, threshold, event = figure.axes[-1].lines
    np.testing.assert_allclose(spread.get_ydata(), [1.0, 0.75, 0.125])
    np.testing.assert_allclose(rank.get_ydata(), [1.0, 5 / 6, 0.75])
    assert threshold.get_ydata()[0] == 0.25 and event.get_xdata()[0] == 2
    validation = figure.axes[0].lines[1]
    np.testing.assert_array_equal(validation.get_xdata(), [0, 1, 2])  # the event record has no loss to draw
    plt.close(figure)
