"""Run a pretraining stage in this process on the session's real cohort (see conftest.py) and read its log."""

import json
from pathlib import Path

from brainharmonix_hf.training.pretrain import parse_arguments, train


def stage_flags(cohort: Path, stage: str) -> list[str]:
    """The data and model-config flags of `stage` on the cohort."""
    data = {"harmonizer": ["--latents", str(cohort / "latents")]}.get(
        stage, ["--manifest", str(cohort / ("t1.csv" if stage == "structure" else "fmri.csv"))]
    )
    return ["--model_config", str(cohort / f"{stage}_config"), *data]


def run_stage(cohort: Path, output_dir: Path, stage: str, *flags: str):
    """Train `stage` in this process on the cohort; returns (model, log records)."""
    args = parse_arguments([stage, "--output_dir", str(output_dir), *stage_flags(cohort, stage), *flags])
    model = train(args)
    return model, read_log(output_dir)


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(output_dir) / "log.jsonl").read_text().splitlines()]
