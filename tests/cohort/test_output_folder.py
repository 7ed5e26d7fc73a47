"""The output folder belongs to one model and one set of options, holds no stale row, lets one run in at a time, and
every input error of the command is one line (exit status 2) before the model loads."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from cohort_sample import NUM_TIME_PATCHES
from file_opens import count_opens
from small_configs import small_brainharmonix_config

from brainharmonix_hf import BrainHarmonixModel
from brainharmonix_hf.cli import console_main, main
from brainharmonix_hf.cohort import load_embeddings, load_failures
from brainharmonix_hf.cohort.folder_settings import parameters_fingerprint
from brainharmonix_hf.cohort.session_features import file_stat

CONSOLE = [sys.executable, "-c", "from brainharmonix_hf.cli import console_main; console_main()"]


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("other_model")
    BrainHarmonixModel(small_brainharmonix_config(num_time_patches=NUM_TIME_PATCHES)).save_pretrained(folder)
    return folder


def embed_command(model_dir, tree, output, *extra):
    args = ["embed", "--model", str(model_dir), "--bids", str(tree), "--output", str(output), "--no-progress"]
    return [*args, "--participant-label", "01", "02", *extra]


def test_changed_inputs_are_re_embedded_and_reported(tiny_model_dir, sample_tree, tmp_path, capsys):
    tree = shutil.copytree(sample_tree, tmp_path / "tree")
    output = tmp_path / "out"
    main(embed_command(tiny_model_dir, tree, output))
    before = load_embeddings(output).to_pandas().set_index("session")
    table = next((tree / "sub-01" / "ses-2" / "func").glob("*_timeseries.tsv"))
    series = pd.read_csv(table, sep="\t")
    (series * 1.5).to_csv(table, sep="\t", index=False)
    t1 = next((tree / "sub-01" / "ses-1" / "anat").glob("*_T1w.nii.gz"))
    os.utime(t1, ns=(t1.stat().st_atime_ns, t1.stat().st_mtime_ns + 10**9))  # touched, same content
    capsys.readouterr()
    main(embed_command(tiny_model_dir, tree, output))
    printed = capsys.readouterr().out
    assert "1 embedded, 2 already done, 0 failed" in printed
    assert f"Re-embedded 01 2 rest: fmri {table} changed (sha256 " in printed
    after = load_embeddings(output).to_pandas().set_index("session")
    assert len(after) == 3
    assert np.abs(np.stack(after.loc["2", "embedding"]) - np.stack(before.loc["2", "embedding"])).max() > 1e-4
    np.testing.assert_array_equal(np.stack(after.loc["1", "embedding"]), np.stack(before.loc["1", "embedding"]))
    # A changed input that no longer embeds: its stale row leaves the table, the failure names the file.
    table.write_text("not\ta table\n")
    main(embed_command(tiny_model_dir, tree, output))
    assert "0 embedded, 2 already done, 1 failed" in capsys.readouterr().out
    assert sorted(load_embeddings(output)["session"]) == ["1", "1"]
    (failure,) = load_failures(output)
    assert (failure["session"], failure["file"], failure["field"]) == ("2", str(table), "fmri")


def test_inputs_are_hashed_once_and_a_touched_one_never_again(tiny_model_dir, sample_tree, tmp_path, capsys):
    """A file hashed while planning is not hashed again to embed it; a touched file whose content is unchanged gets
    its new size and modification time stored, so the next rerun opens no input at all."""
    tree = shutil.copytree(sample_tree, tmp_path / "tree")
    output = tmp_path / "out"
    table = next((tree / "sub-01" / "ses-2" / "func").glob("*_timeseries.tsv"))
    t1 = next((tree / "sub-01" / "ses-1" / "anat").glob("*_T1w.nii.gz"))
    with count_opens() as first_run:
        main(embed_command(tiny_model_dir, tree, output))
    series = pd.read_csv(table, sep="\t")
    (series * 1.5).to_csv(table, sep="\t", index=False)
    os.utime(t1, ns=(t1.stat().st_atime_ns, t1.stat().st_mtime_ns + 10**9))  # touched, same content
    capsys.readouterr()
    with count_opens() as rerun:
        main(embed_command(tiny_model_dir, tree, output))
    assert "1 embedded, 2 already done, 0 failed" in capsys.readouterr().out
    assert rerun[str(t1)] == 1  # hashed once to find it unchanged
    assert rerun[str(table)] == first_run[str(table)]  # hashed while planning, then only read to embed
    stored = load_embeddings(output).to_pandas()
    row = stored[stored["t1"] == str(t1)]
    assert len(row) == 1 and row["t1_stat"].item() == file_stat(str(t1))
    with count_opens() as second_rerun:
        main(embed_command(tiny_model_dir, tree, output))
    assert "0 embedded, 3 already done, 0 failed" in capsys.readouterr().out
    inputs = {*stored["t1"], *stored["fmri"]}
    assert len(inputs) == 6 and [path for path in second_rerun if path in inputs] == []  # sidecars give the TR


def refused(args, capsys) -> str:
    """The console command's error (exit status 2), as printed."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        console_main(args)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_a_second_model_or_other_options_are_refused_with_the_fix(
    tiny_model_dir, other_model_dir, sample_tree, tmp_path, capsys
):
    output = tmp_path / "out"
    main(embed_command(tiny_model_dir, sample_tree, output))
    written = (output / "embeddings.parquet").read_bytes()
    error = refused(embed_command(other_model_dir, sample_tree, output), capsys).splitlines()[-1]
    # The model is told apart by its weights and config (not by its path), so once it is loaded.
    assert error.startswith(f"brainharmonix embed: {output} holds embeddings made with other settings (another model")
    assert error.endswith("Write to a new --output folder, or pass --overwrite (overwrite=True) to replace its rows.")
    error = refused(embed_command(tiny_model_dir, sample_tree, output, "--dtype", "bfloat16", "--hub-tokens"), capsys)
    assert error.count("\n") == 1, error  # options are checked before the model loads
    assert "(dtype 'float32' then, 'bfloat16' now; hub_tokens False then, True now)" in error
    assert (output / "embeddings.parquet").read_bytes() == written
    main(embed_command(other_model_dir, sample_tree, output, "--overwrite"))
    assert "3 embedded, 0 already done, 0 failed" in capsys.readouterr().out
    assert set(load_embeddings(output)["model_name"]) == {str(other_model_dir)}


def test_a_second_run_on_a_locked_folder_is_refused(tiny_model_dir, sample_tree, tmp_path, capsys):
    """Two real processes: another one holds the folder's lock; the command here stops at once and writes nothing."""
    output = tmp_path / "out"
    output.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from brainharmonix_hf.cohort.folder_lock import output_folder_lock
            with output_folder_lock({str(output)!r}):
                print("locked", flush=True)
                sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        error = refused(embed_command(tiny_model_dir, sample_tree, output), capsys)
        assert error.count("\n") == 1, error
        assert f"{output} is in use by another `brainharmonix embed` run (process {holder.pid} on " in error
        assert not (output / "embeddings.parquet").exists() and not list((output / "shards").glob("*"))
    finally:
        holder.communicate("\n", timeout=60)
    main(embed_command(tiny_model_dir, sample_tree, output))
    assert len(load_embeddings(output)) == 3


def test_read_only_output_folder_is_one_line_before_anything_loads(tiny_model_dir, sample_tree, tmp_path):
    """Root writes anywhere: as root, the command runs without the capability to override file permissions."""
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    output = read_only / "embeddings"
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without util-linux's setpriv to drop the permission override")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [*prefix, *CONSOLE, *embed_command(tiny_model_dir, sample_tree, output)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"brainharmonix embed: Cannot write to {read_only} (read-only or not yours), so --output {output} cannot "
        "be written. Choose an --output folder you can write to.\n"
    )
    assert not output.exists()


@pytest.mark.parametrize("problem", ["missing", "empty", "file"])
def test_model_folder_errors_are_one_line(problem, sample_tree, tmp_path, capsys):
    model = {"missing": tmp_path / "no_such_model", "empty": tmp_path / "empty", "file": tmp_path / "model.bin"}[
        problem
    ]
    if problem == "empty":
        model.mkdir()
    if problem == "file":
        model.write_bytes(b"0")
    error = refused(embed_command(model, sample_tree, tmp_path / "out"), capsys)
    assert error.count("\n") == 1 and error.startswith(f"brainharmonix embed: --model {model}")
    assert ("holds no config.json" if problem == "empty" else "no model folder there") in error
    assert not (tmp_path / "out").exists()


def test_other_input_errors_are_one_line(tiny_model_dir, sample_tree, tmp_path, capsys):
    cases = [
        (["--atlas-image", str(tmp_path / "missing.nii.gz")], "--atlas-image"),
        (["--fmri-atlas", "gordon333"], "--fmri-atlas: ROIs of 'gordon333', but the model expects atlas"),
        (["--participant-label", "99"], "No session with a T1 or fMRI input matches"),
    ]
    for extra, message in cases:
        error = refused([*embed_command(tiny_model_dir, sample_tree, tmp_path / "out"), *extra], capsys)
        assert error.count("\n") == 1 and message in error, error
    error = refused(["embed", "--model", str(tiny_model_dir), "--bids", str(tmp_path / "no"), "--output", "o"], capsys)
    assert "has no dataset_description.json" in error


def test_a_model_is_told_by_its_weights_and_config_not_its_folder(tiny_model_dir, other_model_dir, tmp_path):
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "moved")
    fingerprint = parameters_fingerprint(model)
    assert parameters_fingerprint(BrainHarmonixModel.from_pretrained(copy)) == fingerprint
    fresh = BrainHarmonixModel(small_brainharmonix_config(num_time_patches=NUM_TIME_PATCHES))
    fresh.save_pretrained(tmp_path / "fresh")  # saving adds auto_map and architectures: not the model
    assert parameters_fingerprint(BrainHarmonixModel.from_pretrained(tmp_path / "fresh")) == parameters_fingerprint(
        fresh
    )
    assert parameters_fingerprint(BrainHarmonixModel.from_pretrained(other_model_dir)) != fingerprint
