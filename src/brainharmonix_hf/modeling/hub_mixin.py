# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Saving, publishing and safe loading shared by every model and processor of the package.

- `save_pretrained` runs the save hooks that the installed package registers (`brainharmonix_hf/__init__.py`: the
  model card and the code that loads the folder without the package). Saved as remote code beside a checkpoint, this
  module has no hooks registered and saves plain folders.
- `push_to_hub` uploads exactly what `save_pretrained` writes, card included; a card already on the Hub that the
  package did not generate (a user-written README) is kept unless `overwrite_card=True`.
- `from_pretrained` (models) never unpickles: it loads safetensors only, refuses a folder or repo that only holds
  pickled `pytorch_model.bin` weights with a message saying how to convert it, and warns about NaN/Inf weights. It
  refuses a local folder without `config.json` (instead of building the default sizes), integer tensors for
  floating-point weights (instead of casting them), and, for inference models (`_refuses_missing_weights`), a
  checkpoint that lacks any of their weights (instead of running with random ones).

This file imports only the standard library, torch, transformers and huggingface_hub, so it travels with the model
code as a sibling module.
"""

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import ClassVar

import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError
from safetensors import safe_open
from transformers.utils import (
    CONFIG_NAME,
    FEATURE_EXTRACTOR_NAME,
    PROCESSOR_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    cached_file,
)

from .user_warnings import warn_at_caller

# Marker line in every card the package writes: such a README is regenerated on the next save, any other is kept.
GENERATED_CARD_MARKER = "<!-- brainharmonix_hf generated model card: edits here are replaced on the next save -->"
# The files a model card is built from (`hub_cards`); a push brings the repo's copies along so the card covers them.
PROVENANCE_NAME = "conversion.json"
# Files a card reads that the other kind of object wrote: a pushed model keeps the repo's processor settings in its
# card, a pushed processor the repo's model config and conversion record. A model push never keeps an old record:
# new weights are not the converted ones (converted weights carry their licence in their config).
CARD_SOURCES_OF_MODELS = (FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME)
CARD_SOURCES_OF_PROCESSORS = (CONFIG_NAME, PROVENANCE_NAME)
# Stands for the Hub id in a generated card's loading snippet until `push_to_hub` knows it.
REPO_ID_PLACEHOLDER = "path/to/folder-or-hub-id"
# `from_pretrained` keywords that say where the files are; reused to find the safetensors files a model loaded.
FILE_LOCATION_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
# safetensors dtype names of tensors that are not floating point.
NON_FLOAT_SAFETENSORS_DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
                                "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64"}  # fmt: skip


def is_generated_card(text: str) -> bool:
    return GENERATED_CARD_MARKER in text


class BrainHarmonixHubMixin:
    """Mix in before `PreTrainedModel` / `ProcessorMixin` / `FeatureExtractionMixin`."""

    # Called as `hook(obj, save_directory, overwrite_card)` after every `save_pretrained`, in registration order.
    save_hooks: ClassVar[list[Callable]] = []
    # Inference models (the encoders, the Harmonizer, the assembled model) refuse a checkpoint that lacks any of their
    # weights: they would embed with random ones. Pretraining and task models keep transformers' notice for the parts
    # they add (a decoder, a classifier head).
    # Weights such a model may start fresh when a checkpoint lacks them are declared the transformers way, as
    # `_keys_to_ignore_on_load_missing` patterns: transformers initialises them and leaves them out of `missing_keys`.
    _refuses_missing_weights: ClassVar[bool] = False

    @classmethod
    def register_save_hook(cls, hook: Callable) -> None:
        if hook not in cls.save_hooks:
            cls.save_hooks.append(hook)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, overwrite_card: bool = False, **kwargs):
        """`save_pretrained` of the base class, then the package's save hooks (model card, self-contained code).

        Args:
            overwrite_card (`bool`, *optional*, defaults to `False`): replace a `README.md` in `save_directory` that
                the package did not write. A card the package wrote is always brought up to date.
        """
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):  # in distributed training only the main process writes the extras
            for hook in self.save_hooks:
                hook(self, save_directory, overwrite_card)
        return result

    def to_dict(self) -> dict:
        """Processor settings without the `auto_map` a saved folder carries: it describes where the code lies, not
        the settings (transformers' own remote-code saving, `_auto_class` set, keeps it)."""
        settings = super().to_dict()
        if getattr(self, "_auto_class", None) is None:
            settings.pop("auto_map", None)
        return settings

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        overwrite_card: bool = False,
    ):
        """Upload what `save_pretrained` writes (weights or processor config, model card, code) to `repo_id`.

        Same arguments as transformers' `push_to_hub`, plus `overwrite_card`: a README already in the repo that the
        package did not generate is kept unless it is `True`. `tags` are added to the card's metadata.

        Returns:
            The `huggingface_hub.CommitInfo` of the upload.
        """
        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as work_dir:
            sources = CARD_SOURCES_OF_MODELS if _is_model(self) else CARD_SOURCES_OF_PROCESSORS
            _copy_card_sources(api, repo_id, revision, work_dir, sources)
            save_kwargs = {"max_shard_size": max_shard_size} if _is_model(self) else {}
            self.save_pretrained(work_dir, overwrite_card=True, **save_kwargs)
            card_path = os.path.join(work_dir, "README.md")
            card = _hub_card(api, repo_id, revision) if not overwrite_card else None
            if card is None or is_generated_card(card.text):
                card = ModelCard.load(card_path) if os.path.isfile(card_path) else card
            if card is not None:
                card.text = card.text.replace(REPO_ID_PLACEHOLDER, repo_id)
                card.data.tags = list(dict.fromkeys((card.data.tags or []) + (tags or [])))
                card.save(card_path)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=work_dir,
                commit_message=commit_message or f"Upload {type(self).__name__}",
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
            )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' `from_pretrained`, safetensors only unless `use_safetensors=False` is passed, with the checks
        of `check_loaded_weights` and a warning naming every weight that holds NaN or Inf.

        Raises:
            OSError: the folder or repo has no safetensors weights (e.g. only a pickled `pytorch_model.bin`), or a
                local folder has no `config.json` and no `config=` is given.
            ValueError: the checkpoint does not fit the model (see `check_loaded_weights`).
        """
        if not _is_model(cls):
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        _require_config(pretrained_model_name_or_path, args, kwargs)
        want_info = kwargs.pop("output_loading_info", False)
        pickle_allowed = kwargs.get("use_safetensors") is False
        if kwargs.get("use_safetensors") is None:
            kwargs["use_safetensors"] = True
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except OSError as error:
            if pickle_allowed or "safetensors" not in str(error):
                raise
            raise OSError(
                f"{pretrained_model_name_or_path} has no safetensors weights (model.safetensors). brainharmonix_hf "
                "never unpickles weights by default: a pickled pytorch_model.bin can run arbitrary code when loaded. "
                "If you trust its source, convert it once: `model = "
                f"{cls.__name__}.from_pretrained(path, use_safetensors=False)` then `model.save_pretrained(new_path)`; "
                "reference .pth checkpoints go through `brainharmonix convert`."
            ) from error
        location = {key: kwargs[key] for key in FILE_LOCATION_KWARGS if key in kwargs}
        cls.check_loaded_weights(model, info, pretrained_model_name_or_path, location)
        warn_non_finite_weights(model, pretrained_model_name_or_path)
        return (model, info) if want_info else model

    @classmethod
    def check_loaded_weights(cls, model: torch.nn.Module, info: dict, source, location: dict) -> None:
        """Refuse a loaded checkpoint that does not fit `model`: integer tensors for floating-point weights
        (transformers would cast them) and, for inference models, weights the checkpoint lacks (they would stay
        random).

        Args:
            model: the loaded model.
            info: transformers' loading info (`missing_keys`, `unexpected_keys`, ...).
            source: the folder or Hub id loaded from (`None` with an explicit `state_dict`: nothing is checked).
            location: the file-location keywords it was loaded with (`revision`, `subfolder`, ...).
        """
        if source is None:  # `from_pretrained(None, state_dict=...)`: the caller chose the weights
            return
        refuse_non_float_weights(model, safetensors_files(source, location), source)
        if cls._refuses_missing_weights and info["missing_keys"]:
            raise ValueError(missing_weights_message(model, sorted(info["missing_keys"]), source))


def warn_non_finite_weights(model: torch.nn.Module, source) -> list[str]:
    """Warn (naming the tensors) when any floating-point parameter or buffer of `model` holds NaN or Inf.

    Returns:
        The names of those tensors, in state-dict order.
    """
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        warn_at_caller(
            f"weights loaded from {source} hold NaN or Inf values in {len(bad)} tensor(s): {shown}. Outputs will be "
            "NaN; the checkpoint is probably corrupt or came from a diverged run."
        )
    return bad


def _require_config(source, args: tuple, kwargs: dict) -> None:
    """Refuse a local model folder without `config.json` when no config is given: transformers would build the default
    (published) sizes and fail on the first weight of another size."""
    if args or kwargs.get("config") is not None or not os.path.isdir(source):
        return
    folder = os.path.join(source, kwargs.get("subfolder") or "")
    if not os.path.isfile(os.path.join(folder, CONFIG_NAME)):
        raise OSError(
            f"{folder} has no {CONFIG_NAME}: a model folder holds config.json (the model's sizes) beside its weights. "
            "Save model and config together with `model.save_pretrained(folder)`, or pass the config the weights "
            "were saved with: `from_pretrained(folder, config=...)`."
        )


def safetensors_files(source, location: dict) -> list[str]:
    """The local paths of the safetensors weights a model was loaded from (one file, or the shards of an index)."""
    options = {**location, "_raise_exceptions_for_missing_entries": False}
    single = cached_file(source, SAFE_WEIGHTS_NAME, **options)
    if single is not None:
        return [single]
    index = cached_file(source, SAFE_WEIGHTS_INDEX_NAME, **options)
    if index is None:
        return []
    with open(index) as handle:
        shards = sorted(set(json.load(handle)["weight_map"].values()))
    return [cached_file(source, shard, **options) for shard in shards]


def refuse_non_float_weights(model: torch.nn.Module, files: list[str], source) -> None:
    """Raise naming every tensor stored with an integer or boolean dtype in `files` whose weight in `model` is
    floating point (under its own name or with the base-model prefix added or removed)."""
    state = model.state_dict()
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    wrong = []
    for path in files:
        with safe_open(path, framework="pt") as weights:
            for key in weights.keys():
                dtype = NON_FLOAT_SAFETENSORS_DTYPES.get(weights.get_slice(key).get_dtype())
                names = (key, key.removeprefix(prefix), prefix + key)
                if dtype and any(name in state and state[name].is_floating_point() for name in names):
                    wrong.append(f"{key} ({dtype})")
    if wrong:
        raise ValueError(
            f"{source} stores {len(wrong)} floating-point weight(s) of {type(model).__name__} as integers: "
            f"{', '.join(wrong[:10])}{' ...' if len(wrong) > 10 else ''}. Loading would cast them silently. The file "
            "was not written by save_pretrained of this model (or was altered): re-save or re-convert it."
        )


def missing_weights_message(model: torch.nn.Module, missing: list[str], source) -> str:
    """Name the weights a checkpoint lacks, whole layers as `layers.N.*`, and say when the config describes more
    layers than the weights hold."""
    state_keys = list(model.state_dict())
    layer_of = re.compile(r"^(.*?\blayers)\.(\d+)\.")
    stacks: dict[str, dict[int, list[str]]] = {}
    for key in state_keys:
        match = layer_of.match(key)
        if match:
            stacks.setdefault(match[1], {}).setdefault(int(match[2]), []).append(key)
    missing_set, shown, whole = set(missing), [], {}
    for stack, layers in stacks.items():
        gone = sorted(index for index, keys in layers.items() if missing_set.issuperset(keys))
        if gone:
            whole[stack] = (gone, len(layers))
            shown += [f"{stack}.{index}.*" for index in gone]
            missing_set -= {key for index in gone for key in layers[index]}
    shown += sorted(missing_set)
    lines = [
        f"{source} lacks {len(missing)} weight(s) of {type(model).__name__}, which would run with random values: "
        f"{', '.join(shown[:12])}{' ...' if len(shown) > 12 else ''}."
    ]
    for stack, (gone, total) in whole.items():
        if gone == list(range(total - len(gone), total)):
            lines.append(
                f"For `{stack}`, the config describes {total} layers but the weights hold {total - len(gone)}: load "
                "with the config saved beside these weights."
            )
    lines.append("An inference model loads only a complete checkpoint: re-save it with save_pretrained, or convert it.")
    return " ".join(lines)


def _is_model(obj) -> bool:
    return issubclass(obj if isinstance(obj, type) else type(obj), torch.nn.Module)


def _copy_card_sources(api: HfApi, repo_id: str, revision: str | None, folder: str, names: tuple[str, ...]) -> None:
    """Copy the repo's files that a card reads into `folder`, so that pushing a processor into a model repo (or the
    reverse) yields a card that describes both. `save_pretrained` then overwrites the pushed object's own files."""
    for name in names:
        try:
            shutil.copyfile(api.hf_hub_download(repo_id, name, revision=revision), os.path.join(folder, name))
        except (EntryNotFoundError, RevisionNotFoundError):
            continue


def _hub_card(api: HfApi, repo_id: str, revision: str | None) -> ModelCard | None:
    """The card in `repo_id` at `revision`, `None` when there is none yet."""
    try:
        return ModelCard.load(api.hf_hub_download(repo_id, "README.md", revision=revision))
    except (EntryNotFoundError, RevisionNotFoundError):
        return None
