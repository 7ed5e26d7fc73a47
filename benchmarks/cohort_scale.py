"""Cohort embedding at study scale: discovery, an empty rerun and consolidation on synthetic derivatives trees.

For each size (default 1k and 10k sessions) the script writes a BIDS derivatives tree of that many sessions (two per
subject): a real XCP-D-style table per session (`*_atlas-Schaefer400_timeseries.tsv`, 400 CBIG-labelled columns,
4 frames of the LEMON run, perturbed per session), the BOLD run's JSON sidecar with the TR, and stand-ins for the T1
and the BOLD run (links to one copy of nilearn's MNI152 template; the BOLD one is never read). Then it measures:

- discovery: `find_bids_sessions` (a directory walk with BIDS name parsing and sidecar inheritance), and pybids'
  `BIDSLayout` on the same tree: with metadata indexing (the TR read with `get_metadata`), without it
  (`index_metadata=False`, TR not read), reopening a saved database (`database_path`), and with `validate=True`;
- the first embedding of every session with the smallest real BrainHarmonix model (one layer, width 24; no stubs),
  and its consolidation of the shards into `embeddings.parquet`;
- an empty rerun: the `brainharmonix embed` command on the finished folder (a new process: imports, discovery,
  model load, comparison with the folder), wall and CPU time, the CPU time of the command's imports alone, and the
  same rerun in this process (after imports), with its comparison of the rows found with the folder's.

It prints the seconds, each phase's growth exponent `log(t_big / t_small) / log(n_big / n_small)` (1 is linear;
n log n is 1.13 from 1k to 10k) and the floors (discovery of 10k sessions <= 60 s, an empty rerun <= 10 s), with the
machine's load average. Trees go to a temporary folder (about 20 kB per session) and are removed at the end.

    python benchmarks/cohort_scale.py [--sessions 1000 10000] [--pybids-up-to 10000]
"""

import argparse
import contextlib
import io
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib

from brainharmonix_hf import BrainHarmonixConfig, BrainHarmonixModel, BrainHarmonixProcessor, cli
from brainharmonix_hf.cohort import embed_cohort, find_bids_sessions
from brainharmonix_hf.processing.atlases import SCHAEFER400_7NETWORKS, schaefer400_roi_names
from brainharmonix_hf.sample_data import load_fmri_sample, load_t1_sample

FRAMES = 4
SPACE = "MNI152NLin2009cAsym"
FLOORS = {"discovery": 60.0, "empty rerun (command)": 10.0, "empty rerun (command, CPU time)": 10.0}
LAYER = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 48, "hidden_size": 24}


def smallest_model() -> tuple[BrainHarmonixModel, BrainHarmonixProcessor]:
    """A real BrainHarmonix model of the smallest useful size: one 24-wide layer per stage, 32³ T1 volumes, one fMRI
    time patch, 4 hub tokens."""
    decoder = {"decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 2, "decoder_hidden_size": 16}
    config = BrainHarmonixConfig(
        structure_config=LAYER | decoder | {"image_size": [32, 32, 32], "decoder_intermediate_size": 32},
        function_config=LAYER | {"num_time_patches": 1, "predictor_hidden_size": 16, "predictor_num_hidden_layers": 1,
                                 "predictor_num_attention_heads": 2, "predictor_intermediate_size": 32},
        harmonizer_config=LAYER | decoder | {"num_fmri_tokens": 400, "num_t1_tokens": 8, "latent_size": 24,
                                             "num_hub_tokens": 4, "decoder_intermediate_size": 32},
    )  # fmt: skip
    model = BrainHarmonixModel(config).eval()
    return model, BrainHarmonixProcessor.for_config(config)


def write_tree(root: Path, num_sessions: int, t1: Path) -> None:
    root.mkdir(parents=True)
    description = {"Name": "scale", "BIDSVersion": "1.9.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "x"}]}
    (root / "dataset_description.json").write_text(json.dumps(description))
    names = "\t".join(schaefer400_roi_names(SCHAEFER400_7NETWORKS))
    frames = load_fmri_sample().series[:, :FRAMES].T
    sidecar = json.dumps({"RepetitionTime": 1.4, "TaskName": "rest"})
    for index in range(num_sessions):
        subject, session = f"{index // 2:05d}", str(index % 2 + 1)
        prefix = f"sub-{subject}_ses-{session}"
        folder = root / f"sub-{subject}" / f"ses-{session}"
        (folder / "anat").mkdir(parents=True)
        (folder / "func").mkdir()
        os.symlink(t1, folder / "anat" / f"{prefix}_space-{SPACE}_desc-preproc_T1w.nii.gz")
        run = folder / "func" / f"{prefix}_task-rest_space-{SPACE}"
        values = frames + 1e-3 * index
        rows = "\n".join("\t".join(f"{value:.4g}" for value in frame) for frame in values)
        Path(f"{run}_atlas-Schaefer400_timeseries.tsv").write_text(f"{names}\n{rows}\n")
        Path(f"{run}_desc-preproc_bold.json").write_text(sidecar)
        os.symlink(t1, f"{run}_desc-preproc_bold.nii.gz")  # never read: the sidecar's data file, as fMRIPrep writes


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def cpu_timed(function) -> tuple[float, object]:
    """CPU seconds of this process (less sensitive than wall time to other work on a shared machine)."""
    start = time.process_time()
    result = function()
    return time.process_time() - start, result


def pybids_discovery(root: Path, **options) -> int:
    """The tables, BOLD sidecars and T1s of the tree through a `BIDSLayout`, each table's TR by `get_metadata` when
    metadata is indexed: the queries the embedding needs."""
    from bids import BIDSLayout

    layout = BIDSLayout(root, is_derivative=True, **options)
    tables = layout.get(suffix="timeseries", extension=".tsv")
    layout.get(suffix="T1w", desc="preproc", extension=[".nii", ".nii.gz"])
    if options.get("indexer") is None:
        bolds = layout.get(suffix="bold", extension=".nii.gz")
        by_session = {(f.entities["subject"], f.entities.get("session")): f for f in bolds}
        for table in tables:
            by_session[(table.entities["subject"], table.entities.get("session"))].get_metadata()["RepetitionTime"]
    return len(tables)


def measure(num_sessions: int, work: Path, t1: Path, pybids: bool, model_dir: Path) -> dict[str, float]:
    from bids import BIDSLayoutIndexer

    root = work / f"tree{num_sessions}"
    seconds = {}
    seconds["write tree (not a floor)"], _ = timed(lambda: write_tree(root, num_sessions, t1))
    seconds["discovery"], rows = timed(lambda: find_bids_sessions(root))
    assert len(rows) == num_sessions and all(row.repetition_time == 1.4 for row in rows)
    seconds["discovery (CPU time, again)"], _ = cpu_timed(lambda: find_bids_sessions(root))
    if pybids:
        database = work / f"pybids{num_sessions}.sqlite"
        seconds["pybids: index with metadata"], found = timed(lambda: pybids_discovery(root, validate=False))
        assert found == num_sessions
        seconds["pybids: index_metadata=False (no TR)"], _ = timed(
            lambda: pybids_discovery(root, validate=False, indexer=BIDSLayoutIndexer(index_metadata=False))
        )
        seconds["pybids: save database (first run)"], _ = timed(
            lambda: pybids_discovery(root, validate=False, database_path=database)
        )
        seconds["pybids: reopen saved database"], _ = timed(
            lambda: pybids_discovery(root, validate=False, database_path=database)
        )
        seconds["pybids: validate=True"], _ = timed(lambda: pybids_discovery(root, validate=True))
    model = BrainHarmonixModel.from_pretrained(model_dir).eval()
    processor = BrainHarmonixProcessor.from_pretrained(model_dir)
    output = work / f"embeddings{num_sessions}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 4-frame series are shorter than one patch: said once per row otherwise
        seconds["first embedding (not a floor)"], run = timed(
            lambda: embed_cohort(model, rows, output, processor=processor, batch_size=32, progress=False)
        )
    assert run.embedded == num_sessions and run.failed == 0
    seconds["consolidation"] = run.seconds["consolidate"]
    arguments = ["embed", "--model", str(model_dir), "--bids", str(root), "--output", str(output), "--no-progress"]
    cpu_before = _children_cpu()
    seconds["empty rerun (command)"], result = timed(
        lambda: _run([sys.executable, "-m", "brainharmonix_hf.cli", *arguments])
    )
    seconds["empty rerun (command, CPU time)"] = _children_cpu() - cpu_before
    assert f"0 embedded, {num_sessions} already done, 0 failed" in result.stdout, result.stderr[-2000:]
    cpu_before = _children_cpu()
    _run([sys.executable, "-c", "import brainharmonix_hf.cli"])
    seconds["of which imports (CPU time)"] = _children_cpu() - cpu_before
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        seconds["empty rerun in process (after imports)"], _ = timed(lambda: cli.main(arguments))
        seconds["empty rerun in process (CPU time, again)"], _ = cpu_timed(lambda: cli.main(arguments))
    record = json.loads((output / "runs.jsonl").read_text().splitlines()[-1])
    seconds["of which comparing with the folder"] = record["seconds"]["plan"]
    shutil.rmtree(root)
    shutil.rmtree(output)
    return seconds


def _run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs=2, default=[1000, 10000], help="The two tree sizes.")
    parser.add_argument("--pybids-up-to", type=int, default=10000, help="Largest tree pybids indexes.")
    args = parser.parse_args()
    small, big = args.sessions
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        t1 = work / "t1_standin.nii.gz"
        nib.save(load_t1_sample(), t1)
        model, processor = smallest_model()
        model.save_pretrained(work / "model")
        processor.save_pretrained(work / "model")
        results = {n: measure(n, work, t1, n <= args.pybids_up_to, work / "model") for n in (small, big)}
    load_after = os.getloadavg()
    nlogn = math.log(big * math.log(big) / (small * math.log(small))) / math.log(big / small)
    print(f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) before {load_before}, after {load_after}")
    print(f"| phase | {small} sessions (s) | {big} sessions (s) | growth exponent | floor |")
    print("|---|---|---|---|---|")
    for phase in results[small]:
        first, second = results[small][phase], results[big].get(phase)
        exponent = "" if second is None else f"{math.log(second / first) / math.log(big / small):.2f}"
        floor = f"<= {FLOORS[phase]:g} s at {big}" if phase in FLOORS else ""
        shown = "not run" if second is None else f"{second:.2f}"
        print(f"| {phase} | {first:.2f} | {shown} | {exponent} | {floor} |")
    print(f"(n log n grows with exponent {nlogn:.2f} from {small} to {big}; 1.00 is linear)")


if __name__ == "__main__":
    main()
