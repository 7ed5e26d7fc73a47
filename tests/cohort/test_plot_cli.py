"""`brainharmonix plot` on the outputs of `brainharmonix embed` and on the cohort's files."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from brainharmonix_hf import BrainHarmonixModel
from brainharmonix_hf.cli import main
from brainharmonix_hf.cohort import embed_cohort, find_bids_sessions, load_embeddings
from brainharmonix_hf.visualization import plot_embedding_scatter, principal_components


def test_plot_embeddings_and_t1_from_the_cohort(tiny_model_dir, sample_tree, tmp_path, capsys):
    sessions = [s for s in find_bids_sessions(sample_tree) if s.subject != "04"]
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir)
    embed_cohort(model, sessions, tmp_path / "embeddings", progress=False)
    labels = tmp_path / "labels.csv"
    labels.write_text("subject,session,group\n01,1,a\n01,2,a\n02,1,b\n03,,b\n")
    output = tmp_path / "scatter.png"
    main(
        [
            "plot",
            "embeddings",
            "--embeddings",
            str(tmp_path / "embeddings"),
            "--labels",
            str(labels),
            "--label-column",
            "group",
            "--output",
            str(output),
        ]
    )
    assert output.stat().st_size > 5_000 and f"Wrote {output}" in capsys.readouterr().out

    table = load_embeddings(tmp_path / "embeddings")
    embeddings = np.array(table["embedding"])
    figure = plot_embedding_scatter(embeddings, ["a", "a", "b", "b"])
    drawn = np.concatenate([points.get_offsets() for points in figure.axes[0].collections])
    np.testing.assert_allclose(drawn, principal_components(embeddings)[0], atol=1e-10)
    plt.close(figure)

    t1 = sessions[0].t1
    main(["plot", "t1", "--t1", t1, "--model", str(tiny_model_dir), "--output", str(tmp_path / "t1.png")])
    assert (tmp_path / "t1.png").stat().st_size > 10_000


@pytest.mark.slow
def test_plot_attention_cli(tiny_model_dir, sample_tree, tmp_path):
    session = find_bids_sessions(sample_tree, participant_label=["01"], session=["1"])[0]
    output = tmp_path / "attention.png"
    main(
        [
            "plot",
            "attention",
            "--model",
            str(tiny_model_dir),
            "--fmri",
            session.fmri,
            "--repetition-time",
            "1.4",
            "--t1",
            session.t1,
            "--hub-token",
            "0",
            "--output",
            str(output),
        ]
    )
    assert output.stat().st_size > 10_000
    assert pd.read_csv(session.fmri, sep="\t").shape == (100, 400)
