# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Saving, publishing and safe loading shared by every model and processor of the package.

- `save_pretrained` runs the save hooks that the installed package registers (`brainharmonix_hf/__init__.py`: the
  model card and the code that loads the folder without the package). Saved as remote code beside a checkpoint, this
  module has no hooks registered and saves plain folders.
- `push_to_hub` uploads exactly what `save_pretrained` writes, card included; a card already on the Hub that the
  package did not generate (a user-written README) is kept unless `overwrite_card=True`.
- `from_pretrained` (models) never unpickles: it loads safetensors only, refuses a folder or repo that only holds
  pickled `pytorch_model.bin` weights with a message saying how to convert it, and warns about NaN/Inf weights.

This file imports only the standard library, torch, transformers and huggingface_hub, so it travels with the model
code as a sibling module.
"""

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from typing import ClassVar

import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError
from transformers.utils import CONFIG_NAME, FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME

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


def is_generated_card(text: str) -> bool:
    return GENERATED_CARD_MARKER in text


class BrainHarmonixHubMixin:
    """Mix in before `PreTrainedModel` / `ProcessorMixin` / `FeatureExtractionMixin`."""

    # Called as `hook(obj, save_directory, overwrite_card)` after every `save_pretrained`, in registration order.
    save_hooks: ClassVar[list[Callable]] = []

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
        """transformers' `from_pretrained`, safetensors only unless `use_safetensors=False` is passed, and a warning
        naming every weight that holds NaN or Inf.

        Raises:
            OSError: the folder or repo has no safetensors weights (e.g. only a pickled `pytorch_model.bin`).
        """
        if not _is_model(cls):
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        pickle_allowed = kwargs.get("use_safetensors") is False
        if kwargs.get("use_safetensors") is None:
            kwargs["use_safetensors"] = True
        try:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
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
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        warn_non_finite_weights(model, pretrained_model_name_or_path)
        return loaded


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
        warnings.warn(
            f"weights loaded from {source} hold NaN or Inf values in {len(bad)} tensor(s): {shown}. Outputs will be "
            "NaN; the checkpoint is probably corrupt or came from a diverged run.",
            stacklevel=3,
        )
    return bad


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
