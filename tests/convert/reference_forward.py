"""The reference computation, written from the published architecture, on reference-layout state dicts.

Plain functional torch on the reference key names; nothing from the package. Masked tokens are removed before
attention, as the reference's variable-length attention does (only valid tokens are compared).
"""

import math

import torch
from torch.nn import functional

EPS = 1e-6
WINDOW_SECONDS, BASE_PATCH = 35.28, 48


def linear(x, state, name):
    return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]


def layer_norm(x, state, name):
    return functional.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], EPS)


def block(x, state, name, heads):
    """Pre-norm ViT block on one unmasked sequence (batch, N, D)."""
    batch, length, width = x.shape
    head_dim = width // heads
    qkv = linear(layer_norm(x, state, f"{name}.norm1"), state, f"{name}.attn.qkv")
    q, k, v = qkv.reshape(batch, length, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(head_dim)).softmax(-1)
    x = x + linear((weights @ v).transpose(1, 2).reshape(batch, length, width), state, f"{name}.attn.proj")
    hidden = functional.gelu(linear(layer_norm(x, state, f"{name}.norm2"), state, f"{name}.mlp.fc1"))
    return x + linear(hidden, state, f"{name}.mlp.fc2")


def stack(x, state, prefix, heads, keep=None):
    """Every `{prefix}.N` block; with `keep` (batch, N) bool, each sample runs on its kept tokens only (others 0)."""
    depth = len({key.split(".")[len(prefix.split("."))] for key in state if key.startswith(prefix + ".")})
    if keep is None:
        for index in range(depth):
            x = block(x, state, f"{prefix}.{index}", heads)
        return x
    out = torch.zeros_like(x)
    for sample in range(x.shape[0]):
        tokens = x[sample : sample + 1, keep[sample]]
        for index in range(depth):
            tokens = block(tokens, state, f"{prefix}.{index}", heads)
        out[sample, keep[sample]] = tokens[0]
    return out


def t1_encoder(state, volume, heads):
    """harmonix-s encoder: (B, 1, d0, d1, d2) -> (B, N, D) after the final norm, CLS dropped."""
    weight = state["patch_embed.proj.weight"]
    x = functional.conv3d(volume, weight, state["patch_embed.proj.bias"], stride=weight.shape[-1])
    x = x.flatten(2).transpose(1, 2) + state["pos_embed"][:, 1:]
    cls = (state["cls_token"] + state["pos_embed"][:, :1]).expand(x.shape[0], -1, -1)
    x = stack(torch.cat([cls, x], 1), state, "blocks", heads)
    return layer_norm(x, state, "norm")[:, 1:]


def resized_kernel(weight, patch_length):
    """FlexiViT PI-resize: rows of Bᵀ are the 48 one-hot vectors resized to length p (bicubic, antialias)."""
    if patch_length == BASE_PATCH:
        return weight
    basis = torch.eye(BASE_PATCH, dtype=torch.float64).reshape(BASE_PATCH, 1, 1, BASE_PATCH)
    resize_t = functional.interpolate(basis, size=(1, patch_length), mode="bicubic", antialias=True)
    pinv = torch.linalg.pinv(resize_t.reshape(BASE_PATCH, patch_length))  # (p, 48)
    return (weight.double() @ pinv.T).float()


def sincos(width, positions):
    omega = 1.0 / 10000 ** (torch.arange(width // 2, dtype=torch.float64) / (width / 2))
    angles = positions.double()[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], 1).float()


def fmri_encoder(state, prefix, series, repetition_time, harmonics, gradients, heads, num_time_patches=18):
    """harmonix-f encoder on series of one TR: (B, R, T) real frames -> (B, R·W, D) and the token keep mask."""
    batch, rois, frames = series.shape
    patch = round(WINDOW_SECONDS / repetition_time)
    valid = math.ceil(frames / patch)
    padded = functional.pad(series, (0, num_time_patches * patch - frames))[:, None]
    kernel = resized_kernel(state[f"{prefix}.patch_embed.proj.weight"], patch)
    x = functional.conv2d(padded, kernel, state[f"{prefix}.patch_embed.proj.bias"], stride=(1, patch))
    x = x.flatten(2).transpose(1, 2)  # ROI-major: token roi·W + t
    time_index = torch.arange(num_time_patches).repeat(rois)
    spatial = 0.5 * (
        linear(harmonics, state, f"{prefix}.pos_embed.geo_harm_proj")
        + linear(gradients, state, f"{prefix}.pos_embed.grad_proj")
    )
    spatial = 2 * (spatial - spatial.min()) / (spatial.max() - spatial.min()) - 1
    positions = torch.cat([sincos(x.shape[-1] // 2, time_index), spatial.repeat_interleave(num_time_patches, 0)], 1)
    keep = (time_index < valid).expand(batch, -1)
    x = stack(x + positions, state, f"{prefix}.blocks", heads, keep)
    return layer_norm(x, state, f"{prefix}.norm"), keep


def harmonizer_encoder(state, fmri_tokens, fmri_keep, t1_tokens, heads, final_norm=True):
    """[CLS, fMRI tokens, T1 tokens, hub tokens] -> [CLS, hub tokens] (B, 1 + K, D)."""
    batch = t1_tokens.shape[0]
    positions = state["pos_embed"]
    x = torch.cat([fmri_tokens, t1_tokens], 1) + positions[:, 1:]
    cls = (state["cls_token"] + positions[:, :1]).expand(batch, -1, -1)
    hubs = (state["latent_tokens"] + state["enc_latent_token_positional_embedding"]).expand(batch, -1, -1)
    num_hubs = hubs.shape[1]
    sequence = torch.cat([cls, x, hubs], 1)
    ones = torch.ones(batch, 1, dtype=torch.bool)
    keep = torch.cat([ones, fmri_keep, ones.expand(-1, t1_tokens.shape[1]), ones.expand(-1, num_hubs)], 1)
    sequence = stack(sequence, state, "blocks", heads, keep)
    if final_norm:
        sequence = layer_norm(sequence, state, "norm")
    return torch.cat([sequence[:, :1], sequence[:, -num_hubs:]], 1)


def harmonizer_decoder(state, encoded, num_latent_tokens, heads):
    """Reconstruction from [CLS, hub tokens]: (B, 1 + K, D) -> (B, num_latent_tokens, D)."""
    hidden = linear(encoded, state, "decoder_embed")
    batch = hidden.shape[0]
    masks = state["mask_token"].expand(batch, num_latent_tokens, -1)
    front = torch.cat([hidden[:, :1], masks], 1) + state["decoder_pos_embed"]
    sequence = torch.cat([front, hidden[:, 1:] + state["dec_latent_token_positional_embedding"]], 1)
    sequence = stack(sequence, state, "decoder_blocks", heads)
    return linear(layer_norm(sequence, state, "decoder_norm"), state, "decoder_pred")[:, 1 : 1 + num_latent_tokens]


def finetune_logits(state, fmri_tokens, fmri_keep, t1_tokens, heads):
    """Stage 2: encoder without final norm, mean of the hub tokens, fc_norm, head."""
    tokens = harmonizer_encoder(state, fmri_tokens, fmri_keep, t1_tokens, heads, final_norm=False)
    return linear(layer_norm(tokens[:, 1:].mean(1), state, "fc_norm"), state, "head")
