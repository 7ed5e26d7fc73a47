# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""BrainHarmonix end to end: T1 volume and/or fMRI series -> frozen encoders -> Harmonizer hub tokens.

Either modality may be missing for some subjects of a batch (`has_t1` / `has_fmri`): their encoder is not run for
those subjects and the Harmonizer masks that modality's tokens.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput

from ._compat import TransformersKwargs, Unpack, can_return_tuple
from .configuration_brainharmonix import BrainHarmonixConfig
from .hub_mixin import BrainHarmonixHubMixin
from .hub_token_head import HubTokenClassifier, init_hub_token_classifier_output
from .modeling_function_jepa import FunctionJEPAModel, RoiTablesRequiredOnLoad, check_fmri_inputs
from .modeling_harmonizer import HarmonizerModel
from .modeling_structure_mae import StructureMAEModel


@dataclass
class ModalityLatents(ModelOutput):
    """Frozen-encoder outputs of a batch, as the Harmonizer reads them (zeros where a subject lacks the modality).

    Attributes:
        fmri_latents: `(batch, num_rois * num_time_patches, latent_size)` or `None` when no fMRI was given.
        fmri_token_mask: `(batch, num_rois * num_time_patches)`, 1 for valid tokens of subjects with fMRI.
        t1_latents: `(batch, num_t1_tokens, latent_size)` or `None` when no T1 was given.
        t1_token_mask: `(batch, num_t1_tokens)`, 1 for subjects with a T1.
    """

    fmri_latents: torch.Tensor | None = None
    fmri_token_mask: torch.Tensor | None = None
    t1_latents: torch.Tensor | None = None
    t1_token_mask: torch.Tensor | None = None


@dataclass
class BrainHarmonixModelOutput(ModelOutput):
    """Hub tokens of a batch of subjects.

    Attributes:
        last_hidden_state: `(batch, 1 + num_hub_tokens, hidden_size)`, `[CLS, hub tokens]`.
        pooler_output: `(batch, hidden_size)`, mean of the hub tokens: the subject embedding.
        hidden_states, attentions: the Harmonizer's, when asked for.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class BrainHarmonixPreTrainedModel(RoiTablesRequiredOnLoad, BrainHarmonixHubMixin, PreTrainedModel):
    config: BrainHarmonixConfig
    base_model_prefix = "brainharmonix"
    main_input_name = "pixel_values"
    input_modalities = ("image", "time")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # The three stages are PreTrainedModels and initialise themselves; only the task head is ours.
        super()._init_weights(module)
        init_hub_token_classifier_output(self, module)

    def initialize_weights(self) -> None:
        """Initialise as usual, then freeze the encoders of every `BrainHarmonixModel` inside whose config asks.

        transformers calls `initialize_weights` of the outermost model only, both at construction and after
        `from_pretrained` has put fresh (trainable) parameters in place, so freezing here holds for a task head
        wrapping the composite as well as for the composite alone.
        """
        super().initialize_weights()
        for module in self.modules():
            if isinstance(module, BrainHarmonixModel) and module.config.freeze_encoders:
                module.structure.requires_grad_(False)
                module.function.requires_grad_(False)


class BrainHarmonixModel(BrainHarmonixPreTrainedModel):
    """StructureMAE + FunctionJEPA encoders (frozen by default) feeding the Harmonizer.

    Args:
        config: the composite config.
        add_final_layernorm: passed to the Harmonizer; task heads drop the final LayerNorm.

    Example:

    ```python
    >>> import torch
    >>> from brainharmonix_hf import BrainHarmonixConfig, BrainHarmonixModel

    >>> config = BrainHarmonixConfig(
    ...     structure_config={"num_hidden_layers": 1},
    ...     function_config={"num_hidden_layers": 1},
    ...     harmonizer_config={"num_hidden_layers": 1},
    ... )
    >>> model = BrainHarmonixModel(config).eval()
    >>> with torch.no_grad():
    ...     outputs = model(
    ...         pixel_values=torch.randn(1, 1, 160, 192, 160),
    ...         fmri_values=torch.randn(1, 400, 150),
    ...         repetition_time=torch.tensor([2.0]),
    ...     )
    >>> outputs.last_hidden_state.shape, outputs.pooler_output.shape
    (torch.Size([1, 129, 768]), torch.Size([1, 768]))
    ```
    """

    _refuses_missing_weights = True

    def __init__(self, config: BrainHarmonixConfig, add_final_layernorm: bool = True):
        super().__init__(config)
        self.structure = StructureMAEModel(config.structure_config)
        self.function = FunctionJEPAModel(config.function_config)
        self.harmonizer = HarmonizerModel(config.harmonizer_config, add_final_layernorm=add_final_layernorm)
        self.post_init()

    @classmethod
    def from_stages(
        cls,
        structure: StructureMAEModel,
        function: FunctionJEPAModel,
        harmonizer: HarmonizerModel,
        freeze_encoders: bool = True,
    ) -> "BrainHarmonixModel":
        """Assemble the composite from three separately trained (or loaded) stages; their weights are copied.

        Example: `BrainHarmonixModel.from_stages(StructureMAEModel.from_pretrained(s),
        FunctionJEPAModel.from_pretrained(f), HarmonizerModel.from_pretrained(h))`.
        """
        config = BrainHarmonixConfig(
            structure_config=structure.config.to_dict(),
            function_config=function.config.to_dict(),
            harmonizer_config=harmonizer.config.to_dict(),
            freeze_encoders=freeze_encoders,
        )
        model = cls(config, add_final_layernorm=harmonizer.layernorm is not None)
        for name, stage in (("structure", structure), ("function", function), ("harmonizer", harmonizer)):
            getattr(model, name).load_state_dict(stage.state_dict())
        return model

    def train(self, mode: bool = True) -> "BrainHarmonixModel":
        """Frozen encoders stay in eval mode (no dropout or stochastic depth) while the Harmonizer trains."""
        super().train(mode)
        if self.config.freeze_encoders:
            self.structure.eval()
            self.function.eval()
        return self

    def encode_modalities(
        self,
        pixel_values: torch.Tensor | None = None,
        fmri_values: torch.Tensor | None = None,
        repetition_time: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        has_t1: torch.Tensor | None = None,
        has_fmri: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
    ) -> ModalityLatents:
        """Run each encoder on the subjects that have its modality (see `forward` for the arguments)."""
        latents = ModalityLatents()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoders):
            present = _presence(has_t1, pixel_values)
            if present is not None:
                t1_latents = self.structure(pixel_values[present]).last_hidden_state
                latents.t1_latents = _scatter_subjects(t1_latents, present)
                latents.t1_token_mask = present.long().unsqueeze(1).expand(-1, t1_latents.shape[1])
            present = _presence(has_fmri, fmri_values)
            if present is not None:
                check_fmri_inputs(fmri_values, repetition_time, self.config.function_config.num_rois)
                if repetition_time is None:
                    raise ValueError("fmri_values need repetition_time: the TR in seconds of each subject's series.")
                frame_mask = attention_mask[present] if attention_mask is not None else None
                patch_size = patch_size[present] if patch_size is not None else None
                outputs = self.function(fmri_values[present], repetition_time[present], frame_mask, patch_size)
                latents.fmri_latents = _scatter_subjects(outputs.last_hidden_state, present)
                latents.fmri_token_mask = _scatter_subjects(outputs.token_mask, present)
        return latents

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        fmri_values: torch.Tensor | None = None,
        repetition_time: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        has_t1: torch.Tensor | None = None,
        has_fmri: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BrainHarmonixModelOutput:
        r"""
        Args:
            pixel_values: `(batch, 1, 160, 192, 160)` T1 volumes (see `T1VolumeFeatureExtractor`), or `None` when
                no subject has a T1.
            fmri_values: `(batch, num_rois, num_timepoints)` ROI series (see `FMRIFeatureExtractor`), or `None` when
                no subject has fMRI.
            repetition_time: `(batch,)` TR in seconds of each series; a batch may mix TRs.
            attention_mask: `(batch, num_timepoints)` fMRI frame mask, 1 for a real frame (see
                [`FunctionJEPAModel`]).
            has_t1: `(batch,)` bool, which subjects have a T1 (all when `None`).
            has_fmri: `(batch,)` bool, which subjects have fMRI (all when `None`).
            patch_size: `(batch,)` frames per time patch of each series, as the processor returns it; derived from
                `repetition_time` when `None`.

        Returns:
            [`BrainHarmonixModelOutput`] with the hub tokens and the pooled subject embedding.
        """
        latents = self.encode_modalities(
            pixel_values, fmri_values, repetition_time, attention_mask, has_t1, has_fmri, patch_size
        )
        outputs = self.harmonizer(**latents, **kwargs)
        return BrainHarmonixModelOutput(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class BrainHarmonixForSequenceClassification(BrainHarmonixPreTrainedModel):
    """BrainHarmonix with a classification or regression head on the hub tokens.

    The Harmonizer's final LayerNorm is dropped; the mean of the hub tokens goes through LayerNorm and Linear, as in
    [`HarmonizerForSequenceClassification`]. `config.num_labels` / `config.problem_type` select the loss.
    """

    accepts_loss_kwargs = False

    def __init__(self, config: BrainHarmonixConfig):
        super().__init__(config)
        self.brainharmonix = BrainHarmonixModel(config, add_final_layernorm=False)
        self.classifier = HubTokenClassifier.from_config(config.harmonizer_config, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        fmri_values: torch.Tensor | None = None,
        repetition_time: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        has_t1: torch.Tensor | None = None,
        has_fmri: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        Args:
            pixel_values, fmri_values, repetition_time, attention_mask, has_t1, has_fmri, patch_size: as in
                [`BrainHarmonixModel.forward`].
            labels: `(batch,)` class indices, `(batch, num_labels)` multi-hot floats, or regression targets.

        Returns:
            `SequenceClassifierOutput` with `logits` `(batch, num_labels)`.
        """
        outputs = self.brainharmonix(
            pixel_values, fmri_values, repetition_time, attention_mask, has_t1, has_fmri, patch_size, **kwargs
        )
        return self.classifier.classify(outputs, labels, self.loss_function, self.config)


def _presence(flags: torch.Tensor | None, inputs: torch.Tensor | None) -> torch.Tensor | None:
    """`(batch,)` bool of the subjects whose `inputs` rows are real (all when `flags` is `None`); `None` when no
    subject has the modality, so its encoder is skipped."""
    if inputs is None:
        return None
    batch_size = inputs.shape[0]
    if flags is None:
        return torch.ones(batch_size, dtype=torch.bool, device=inputs.device)
    flags = flags.to(device=inputs.device, dtype=torch.bool)
    if flags.shape != (batch_size,):
        raise ValueError(
            f"has_t1 / has_fmri must hold one flag per subject, shape ({batch_size},); got {tuple(flags.shape)}."
        )
    return flags if bool(flags.any()) else None


def _scatter_subjects(values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Put `values` of the present subjects `(num_present, ...)` back at their rows `(batch, ...)`, zeros elsewhere."""
    out = values.new_zeros(present.shape[0], *values.shape[1:])
    out[present] = values
    return out


__all__ = [
    "BrainHarmonixForSequenceClassification",
    "BrainHarmonixModel",
    "BrainHarmonixModelOutput",
    "BrainHarmonixPreTrainedModel",
    "ModalityLatents",
]
