"""Random checkpoints in the reference release's key layout, written from the
documented names and shapes, plus the tiny BrainHarmonix config they fit.

Sizes: two encoder layers per stage (so block indices are exercised), width 24; the fMRI grid is the real one
(400 ROIs, 200 eigenmodes, 30 gradients, 18 time patches; the pretraining tables on 11 time patches) and the T1
volume 32³ (8 tokens).
"""

import math

import numpy as np
import torch

from brainharmonix_hf import BrainHarmonixConfig, HarmonizerConfig

WIDTH, HEADS, MLP, LAYERS = 24, 2, 48, 2
IMAGE, PATCH = (32, 32, 32), 16
GRID = tuple(size // PATCH for size in IMAGE)
NUM_T1 = math.prod(GRID)
ROIS, MODES, GRADIENTS, TIME_PATCHES, PRETRAIN_TIME_PATCHES = 400, 200, 30, 18, 11
PREDICTOR = {"width": 16, "heads": 2, "mlp": 32, "layers": 1}
MAE_DECODER = {"width": 24, "heads": 2, "mlp": 48, "layers": 1}
HUBS = 4
HARMONIZER_DECODER = {"width": 16, "heads": 2, "mlp": 32, "layers": 1}


LAYER = {"hidden_size": WIDTH, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": MLP}


def tiny_harmonizer_config(num_fmri_tokens: int = ROIS * TIME_PATCHES) -> HarmonizerConfig:
    return HarmonizerConfig(
        **LAYER,
        num_fmri_tokens=num_fmri_tokens,
        num_t1_tokens=NUM_T1,
        latent_size=WIDTH,
        num_hub_tokens=HUBS,
        decoder_hidden_size=HARMONIZER_DECODER["width"],
        decoder_num_hidden_layers=HARMONIZER_DECODER["layers"],
        decoder_num_attention_heads=HARMONIZER_DECODER["heads"],
        decoder_intermediate_size=HARMONIZER_DECODER["mlp"],
    )


def tiny_config() -> BrainHarmonixConfig:
    structure = LAYER | {
        "image_size": list(IMAGE),
        "decoder_hidden_size": MAE_DECODER["width"],
        "decoder_num_hidden_layers": MAE_DECODER["layers"],
        "decoder_num_attention_heads": MAE_DECODER["heads"],
        "decoder_intermediate_size": MAE_DECODER["mlp"],
    }
    function = LAYER | {
        "predictor_hidden_size": PREDICTOR["width"],
        "predictor_num_hidden_layers": PREDICTOR["layers"],
        "predictor_num_attention_heads": PREDICTOR["heads"],
        "predictor_intermediate_size": PREDICTOR["mlp"],
    }
    return BrainHarmonixConfig(
        structure_config=structure, function_config=function, harmonizer_config=tiny_harmonizer_config().to_dict()
    )


# --- fixed tables, written from the description (not from the package) -------------------------------------------


def sincos(width: int, positions) -> np.ndarray:
    """Half sines then half cosines, ω_k = 1 / 10000^(2k / width)."""
    omega = 1.0 / 10000 ** (np.arange(width // 2, dtype=np.float64) / (width / 2))
    angles = np.asarray(positions, dtype=np.float64)[:, None] * omega[None]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def t1_position_table(width: int) -> torch.Tensor:
    """(1, 1 + N, width): CLS row zero, then thirds encoding the axis-1, axis-0 and axis-2 patch index."""
    i, j, k = np.meshgrid(*(np.arange(size) for size in GRID), indexing="ij")
    third = width // 3
    table = np.concatenate([sincos(third, j.ravel()), sincos(third, i.ravel()), sincos(third, k.ravel())], axis=1)
    return torch.from_numpy(np.concatenate([np.zeros((1, width)), table])[None]).float()


def time_table(width: int, num_time_patches: int) -> torch.Tensor:
    """(R · W, width): row n = roi · W + t holds sincos(t)."""
    return torch.from_numpy(sincos(width, np.tile(np.arange(num_time_patches), ROIS))).float()


def sequence_position_table(width: int, num_positions: int) -> torch.Tensor:
    """(1, 1 + num_positions, width): CLS row zero, then sincos(0..num_positions-1)."""
    table = np.concatenate([np.zeros((1, width)), sincos(width, np.arange(num_positions))])
    return torch.from_numpy(table[None]).float()


# --- random weights -----------------------------------------------------------------------------------------------


class Weights:
    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int, std: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator) * std

    def linear(self, state: dict, name: str, out_features: int, in_features: int) -> None:
        state[f"{name}.weight"] = self.normal(out_features, in_features, std=in_features**-0.5)
        state[f"{name}.bias"] = self.normal(out_features, std=0.1)

    def norm(self, state: dict, name: str, width: int) -> None:
        state[f"{name}.weight"] = 1 + self.normal(width, std=0.1)
        state[f"{name}.bias"] = self.normal(width, std=0.1)

    def blocks(self, state: dict, prefix: str, depth: int, width: int, mlp: int) -> None:
        for index in range(depth):
            block = f"{prefix}.{index}"
            self.norm(state, f"{block}.norm1", width)
            self.linear(state, f"{block}.attn.qkv", 3 * width, width)
            self.linear(state, f"{block}.attn.proj", width, width)
            self.norm(state, f"{block}.norm2", width)
            self.linear(state, f"{block}.mlp.fc1", mlp, width)
            self.linear(state, f"{block}.mlp.fc2", width, mlp)


def structure_reference(seed: int = 0, with_decoder: bool = True) -> dict:
    """harmonix-s `["model"]`: MAE encoder (and decoder)."""
    weights, state = Weights(seed), {}
    state["cls_token"] = weights.normal(1, 1, WIDTH, std=0.02)
    state["pos_embed"] = t1_position_table(WIDTH)
    state["patch_embed.proj.weight"] = weights.normal(WIDTH, 1, PATCH, PATCH, PATCH, std=PATCH**-1.5)
    state["patch_embed.proj.bias"] = weights.normal(WIDTH, std=0.1)
    weights.blocks(state, "blocks", LAYERS, WIDTH, MLP)
    weights.norm(state, "norm", WIDTH)
    if with_decoder:
        width = MAE_DECODER["width"]
        state["mask_token"] = weights.normal(1, 1, width, std=0.02)
        weights.linear(state, "decoder_embed", width, WIDTH)
        state["decoder_pos_embed"] = t1_position_table(width)
        weights.blocks(state, "decoder_blocks", MAE_DECODER["layers"], width, MAE_DECODER["mlp"])
        weights.norm(state, "decoder_norm", width)
        weights.linear(state, "decoder_pred", PATCH**3, width)
    return state


def _fmri_encoder(weights: Weights, state: dict, prefix: str, width: int, layers: int, mlp: int, predictor: dict):
    state[f"{prefix}.patch_embed.proj.weight"] = weights.normal(width, 1, 1, 48, std=48**-0.5)
    state[f"{prefix}.patch_embed.proj.bias"] = weights.normal(width, std=0.1)
    _position_module(weights, state, f"{prefix}.pos_embed", width, predictor["width"])
    weights.blocks(state, f"{prefix}.blocks", layers, width, mlp)
    weights.norm(state, f"{prefix}.norm", width)


def _position_module(weights: Weights, state: dict, prefix: str, width: int, predictor_width: int) -> None:
    state[f"{prefix}.emb_h_encoder"] = time_table(width // 2, PRETRAIN_TIME_PATCHES)
    state[f"{prefix}.emb_h_decoder"] = time_table(predictor_width // 2, PRETRAIN_TIME_PATCHES)
    weights.linear(state, f"{prefix}.geo_harm_proj", width // 2, MODES)
    weights.linear(state, f"{prefix}.grad_proj", width // 2, GRADIENTS)
    weights.linear(state, f"{prefix}.decoder_pos_embed_proj", predictor_width // 2, width // 2)


def function_reference(
    seed: int = 1, width: int = WIDTH, layers: int = LAYERS, mlp: int = MLP, predictor: dict = PREDICTOR
) -> dict:
    """harmonix-f: flat `encoder.` / `decoder.` / `encoder_ema.`; encoder and predictor share one position module.

    `predictor` gives `width`, `layers` and `mlp` of the predictor (heads are not stored in weights).
    """
    weights, state = Weights(seed), {}
    _fmri_encoder(weights, state, "encoder", width, layers, mlp, predictor)
    state["decoder.mask_token"] = weights.normal(1, 1, predictor["width"], std=0.02)
    weights.linear(state, "decoder.predictor_embed", predictor["width"], width)
    for key in [key for key in state if key.startswith("encoder.pos_embed.")]:
        state[key.replace("encoder.pos_embed.", "decoder.predictor_pos_embed.")] = state[key]
    weights.blocks(state, "decoder.predictor_blocks", predictor["layers"], predictor["width"], predictor["mlp"])
    weights.norm(state, "decoder.predictor_norm", predictor["width"])
    weights.linear(state, "decoder.predictor_proj", width, predictor["width"])
    _fmri_encoder(weights, state, "encoder_ema", width, layers, mlp, predictor)
    return state


def _harmonizer_encoder(weights: Weights, state: dict, num_fmri_tokens: int) -> None:
    state["cls_token"] = weights.normal(1, 1, WIDTH, std=0.02)
    state["pos_embed"] = sequence_position_table(WIDTH, num_fmri_tokens + NUM_T1)
    state["latent_tokens"] = weights.normal(HUBS, WIDTH)
    state["enc_latent_token_positional_embedding"] = weights.normal(HUBS, WIDTH)
    weights.blocks(state, "blocks", LAYERS, WIDTH, MLP)


def harmonizer_reference(seed: int = 2, num_fmri_tokens: int = ROIS * TIME_PATCHES) -> dict:
    """harmonizer `["model"]` (`OneTokRegViT`): encoder and the reconstruction decoder."""
    weights, state = Weights(seed), {}
    _harmonizer_encoder(weights, state, num_fmri_tokens)
    weights.norm(state, "norm", WIDTH)
    width = HARMONIZER_DECODER["width"]
    weights.linear(state, "decoder_embed", width, WIDTH)
    state["mask_token"] = weights.normal(1, 1, width, std=0.02)
    state["decoder_pos_embed"] = sequence_position_table(width, num_fmri_tokens + NUM_T1)
    state["dec_latent_token_positional_embedding"] = weights.normal(1, HUBS, width)
    weights.blocks(state, "decoder_blocks", HARMONIZER_DECODER["layers"], width, HARMONIZER_DECODER["mlp"])
    weights.norm(state, "decoder_norm", width)
    weights.linear(state, "decoder_pred", WIDTH, width)
    return state


def classifier_reference(seed: int = 3, num_labels: int = 3) -> dict:
    """stage-2 `["model"]` with global pooling: encoder without final norm, `fc_norm`, `head`."""
    weights, state = Weights(seed), {}
    _harmonizer_encoder(weights, state, ROIS * TIME_PATCHES)
    weights.norm(state, "fc_norm", WIDTH)
    weights.linear(state, "head", num_labels, WIDTH)
    return state


def write_table_csvs(folder, seed: int = 4) -> tuple:
    """The two ROI tables as the reference ships them: eigenmodes with header and ROI labels, gradients bare."""
    generator = np.random.default_rng(seed)
    harmonics, gradients = generator.normal(0, 0.01, (ROIS, MODES)), generator.normal(0, 1, (ROIS, GRADIENTS))
    harmonics_path, gradients_path = folder / "schaefer400_roi_eigenmodes.csv", folder / "gradient_mapping_400.csv"
    with open(harmonics_path, "w") as handle:
        handle.write("," + ",".join(f"Mode_{index + 1}" for index in range(MODES)) + "\n")
        for roi, row in enumerate(harmonics, start=1):
            handle.write(f"ROI_{roi}," + ",".join(repr(float(value)) for value in row) + "\n")
    with open(gradients_path, "w") as handle:
        for row in gradients:
            handle.write(",".join(repr(float(value)) for value in row) + "\n")
    return harmonics_path, gradients_path, torch.from_numpy(harmonics).float(), torch.from_numpy(gradients).float()
