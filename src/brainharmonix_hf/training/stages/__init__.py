# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretraining stages, one file each, registered by name. A new stage is a `PretrainingStage` subclass in its own file,
added to `STAGES`; `brainharmonix pretrain <name>` and the loop then run it."""

from .base import PretrainingStage, StageData
from .function import FunctionStage
from .harmonizer import HarmonizerStage
from .structure import StructureStage

STAGES: dict[str, type[PretrainingStage]] = {
    stage.name: stage for stage in (StructureStage, FunctionStage, HarmonizerStage)
}


def get_stage(name: str) -> type[PretrainingStage]:
    """The stage class registered as `name`."""
    if name not in STAGES:
        raise ValueError(f"stage must be one of {tuple(STAGES)}, got {name!r}.")
    return STAGES[name]


__all__ = ["STAGES", "PretrainingStage", "StageData", "get_stage"]
