# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretraining stages, one file each, registered by name. A new stage is a `PretrainingStage` subclass in its own file,
added to `STAGE_CLASSES` and `EXPORTS`; `brainharmonix pretrain <name>` and the loop then run it.

The registry names classes rather than importing them (`EXPORTS` says which module holds each), so the stage names
(`STAGE_CLASSES`, the choices of `brainharmonix pretrain`) cost no import of torch; `get_stage(name)` imports the one
stage asked for.
"""

from ...lazy_exports import lazy_exports

# Stage name -> its `PretrainingStage` subclass, by class name (imported with `EXPORTS`).
STAGE_CLASSES: dict[str, str] = {
    "structure": "StructureStage",
    "function": "FunctionStage",
    "harmonizer": "HarmonizerStage",
}
EXPORTS = {
    "PretrainingStage": ".base",
    "StageData": ".base",
    "StructureStage": ".structure",
    "FunctionStage": ".function",
    "HarmonizerStage": ".harmonizer",
}
_lazy_getattr, _lazy_dir = lazy_exports(__name__, EXPORTS)


def get_stage(name: str) -> type:
    """The `PretrainingStage` subclass registered as `name`."""
    if name not in STAGE_CLASSES:
        raise ValueError(f"stage must be one of {tuple(STAGE_CLASSES)}, got {name!r}.")
    return _lazy_getattr(STAGE_CLASSES[name])


def __getattr__(name: str) -> object:
    if name == "STAGES":  # every stage class by name (imports them all)
        return {stage: get_stage(stage) for stage in STAGE_CLASSES}
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), "STAGES"})


__all__ = [
    "STAGES",
    "STAGE_CLASSES",
    "FunctionStage",
    "HarmonizerStage",
    "PretrainingStage",
    "StageData",
    "StructureStage",
    "get_stage",
]
