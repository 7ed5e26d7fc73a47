# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""What an output folder's rows were made with: one model (its weights and config, not where it was loaded from) and
one set of options that change embeddings. A run with anything else is refused, with the fix, before it writes."""

import hashlib
import json
from collections.abc import Mapping

import torch

from ..file_hashes import sha256_of

# Settings whose change makes rows incomparable; the others (model name, revision, commit) are only recorded.
IDENTITY_SETTINGS = ("model_fingerprint", "dtype", "processor", "hub_tokens", "fmri_atlas", "fmri_atlas_image_sha256")
PROVENANCE_KEYS = ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "auto_map", "architectures")
# Identity settings known before the model is loaded (the command line checks these first).
OPTION_SETTINGS = ("dtype", "hub_tokens", "fmri_atlas", "fmri_atlas_image_sha256")


class OutputFolderMismatch(ValueError):
    """An output folder made with another model or options than the run's."""


def parameters_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the model's config (less where it was loaded from and the transformers version) and every parameter
    and buffer (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256(json.dumps(_without_provenance(model.config.to_dict()), sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _without_provenance(value):
    """A config dict without the entries that say where, how and with what it was saved (and the runtime dtype)."""
    if isinstance(value, dict):
        return {key: _without_provenance(item) for key, item in value.items() if key not in PROVENANCE_KEYS}
    return value


def option_settings(
    *, dtype: torch.dtype | str, hub_tokens: bool, fmri_atlas: str | None, fmri_atlas_image=None
) -> dict:
    """The options of a run that change its rows."""
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "hub_tokens": bool(hub_tokens),
        "fmri_atlas": fmri_atlas,
        "fmri_atlas_image_sha256": None if fmri_atlas_image is None else sha256_of(fmri_atlas_image),
    }


def folder_settings(model, processor, *, model_revision=None, model_commit=None, **options) -> dict:
    """Everything a folder's rows depend on (`option_settings` keywords in `options`), and where the model came from."""
    return option_settings(dtype=model.dtype, **options) | {
        "model": model.config.name_or_path or None,
        "model_revision": model_revision,
        "model_commit": model_commit,
        "model_fingerprint": parameters_fingerprint(model),
        "processor": json.loads(processor.to_json_string()),
    }


def check_settings(output_dir, stored: Mapping | None, current: Mapping, keys=IDENTITY_SETTINGS) -> None:
    """Refuse `current` settings that differ from a folder's `stored` ones on any of `keys`.

    Raises:
        OutputFolderMismatch: naming each difference and the fix (a new folder, or `--overwrite`).
    """
    if stored is None:
        return
    differences = [key for key in keys if key in stored and stored.get(key) != current.get(key)]
    if differences:
        shown = "; ".join(_describe(key, stored, current) for key in differences)
        raise OutputFolderMismatch(
            f"{output_dir} holds embeddings made with other settings ({shown}). Write to a new --output folder, or "
            "pass --overwrite (overwrite=True) to replace its rows."
        )


def _describe(key: str, stored: Mapping, current: Mapping) -> str:
    if key == "model_fingerprint":
        return f"another model: {stored.get('model')!r} then, {current.get('model')!r} now (weights or config differ)"
    if key == "processor":
        was, now = stored.get(key) or {}, current.get(key) or {}
        changed = sorted(
            f"{part}.{name}"
            for part in set(was) | set(now)
            if isinstance(was.get(part), dict) or isinstance(now.get(part), dict)
            for name in set(was.get(part) or {}) | set(now.get(part) or {})
            if (was.get(part) or {}).get(name) != (now.get(part) or {}).get(name)
        )
        return f"processor settings differ ({', '.join(changed) or 'other'})"
    return f"{key} {stored.get(key)!r} then, {current.get(key)!r} now"
