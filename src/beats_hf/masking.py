# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Patch masks for masked audio modelling (MAM).

Every mask here is a `(batch, num_patches)` bool tensor, `True` = masked, over the encoder's time-major patch order
(patch `p` sits at time step `p // num_freq_patches` and mel band `p % num_freq_patches`). All of them mask exactly
`round(mask_ratio * real_patches)` real patches of each clip (at most all but one), and never mask padding: the
masked count does not depend on the mask type, so losses and speeds of the mask types compare like for like.

- [`random_patch_mask`]: uniform random masking, the paper's MAM mask (section 3.3.2: 75% of the patches).
- [`inverse_block_patch_mask`]: EAT's inverse block masking: the *visible* patches form a few contiguous
  time-frequency blocks, the rest is masked.
- [`multi_mask`]: `K` independent masks per clip (EAT's multi-mask), for one tokenizer pass shared by `K` views.

Masks are meant to be drawn on the CPU in the data collator with a seeded `torch.Generator`.
"""

from __future__ import annotations

import torch

from .modeling_beats import compute_random_patch_mask

MASK_TYPES = ("random", "inverse_block")


def _num_masked(patch_attention_mask: torch.BoolTensor, mask_ratio: float) -> torch.LongTensor:
    """The masked count per clip, the same rule as `compute_random_patch_mask`."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}.")
    num_real = patch_attention_mask.sum(dim=1)
    if bool((num_real == 0).any()):
        empty = torch.nonzero(num_real == 0).flatten().tolist()
        raise ValueError(f"clip(s) {empty} have no real patch; every clip needs at least 0.175 s of audio.")
    return torch.clamp(torch.round(num_real.float() * mask_ratio).long(), max=num_real - 1)


def random_patch_mask(
    patch_attention_mask: torch.BoolTensor,
    mask_ratio: float = 0.75,
    generator: torch.Generator | None = None,
) -> torch.BoolTensor:
    """
    Uniform random MAM mask (paper section 3.3.2): `round(mask_ratio * real patches)` real patches of every clip
    are masked, chosen uniformly; padding patches are never masked.

    Args:
        patch_attention_mask (`torch.BoolTensor` of shape `(batch, num_patches)`): `True` for real patches.
        mask_ratio (`float`, defaults to 0.75): fraction of real patches to mask.
        generator (`torch.Generator`, *optional*): source of randomness (on the mask's device).

    Returns:
        `torch.BoolTensor` of shape `(batch, num_patches)`, `True` = masked.
    """
    _num_masked(patch_attention_mask, mask_ratio)  # same validation as the other mask types
    return compute_random_patch_mask(patch_attention_mask, mask_ratio, generator)


def inverse_block_patch_mask(
    patch_attention_mask: torch.BoolTensor,
    num_freq_patches: int,
    mask_ratio: float = 0.75,
    block_time: int = 5,
    block_freq: int = 5,
    generator: torch.Generator | None = None,
) -> torch.BoolTensor:
    """
    Inverse block mask (EAT, after data2vec 2.0): the patches that stay *visible* are grown as contiguous
    time-frequency blocks on the `(time, mel)` patch grid, and everything else is masked. Large masked regions make
    the prediction task harder than scattered single-patch holes, which EAT found to give better representations.

    Blocks are `block_time` x `block_freq` patches (clipped at the edges of the grid), centred on a random real time
    step and mel band. Blocks are added one after the other until the clip has exactly
    `real - round(mask_ratio * real)` visible patches; of the block that would overshoot, a random subset of its new
    patches is kept, so the masked count per clip equals the random mask's exactly. Padding is never masked (and
    never counted as visible). With the default 5 x 5 blocks on BEATs' 8 mel patches, a visible block spans 5 of
    the 8 bands (80 of 128 mel bins) and 5 time steps (0.8 s).

    Args:
        patch_attention_mask (`torch.BoolTensor` of shape `(batch, num_patches)`):
            `True` for real patches; right padding along time, `num_patches = time_steps * num_freq_patches`.
        num_freq_patches (`int`): patches along the mel axis (`BeatsConfig.num_freq_patches`, 8 for BEATs).
        mask_ratio (`float`, defaults to 0.75): fraction of real patches to mask.
        block_time (`int`, defaults to 5): block length in time patches (16 frames = 0.16 s each).
        block_freq (`int`, defaults to 5): block height in mel patches (clipped to `num_freq_patches`).
        generator (`torch.Generator`, *optional*): source of randomness (on the mask's device).

    Returns:
        `torch.BoolTensor` of shape `(batch, num_patches)`, `True` = masked.
    """
    if block_time < 1 or block_freq < 1:
        raise ValueError(f"block_time and block_freq must be >= 1, got {block_time} and {block_freq}.")
    batch_size, num_patches = patch_attention_mask.shape
    if num_freq_patches < 1 or num_patches % num_freq_patches != 0:
        raise ValueError(
            f"num_patches ({num_patches}) must be a multiple of num_freq_patches ({num_freq_patches}); pass "
            "config.num_freq_patches of the model the mask is for."
        )
    num_masked = _num_masked(patch_attention_mask, mask_ratio)
    num_visible = patch_attention_mask.sum(dim=1) - num_masked
    device = patch_attention_mask.device
    num_time = num_patches // num_freq_patches
    real_time_steps = patch_attention_mask.view(batch_size, num_time, num_freq_patches)[:, :, 0].sum(dim=1)

    # Enough block centres that the visible target is reached with overwhelming probability even with heavy overlap;
    # patches no block reaches still get a (random) place in the order, so the count is exact in any case.
    block_area = block_time * min(block_freq, num_freq_patches)
    num_blocks = 4 * int(-(-int(num_visible.max()) // block_area)) + 4
    centre_time = torch.rand(batch_size, num_blocks, generator=generator, device=device) * real_time_steps[:, None]
    centre_freq = torch.randint(num_freq_patches, (batch_size, num_blocks), generator=generator, device=device)
    # Offset of every grid row / column from each block's first one: (batch, blocks, time) and (batch, blocks, freq).
    time_offset = torch.arange(num_time, device=device) - (centre_time.long() - block_time // 2)[..., None]
    freq_offset = torch.arange(num_freq_patches, device=device) - (centre_freq - block_freq // 2)[..., None]
    in_time = (time_offset >= 0) & (time_offset < block_time)
    in_freq = (freq_offset >= 0) & (freq_offset < block_freq)
    covered = (in_time[..., :, None] & in_freq[..., None, :]).view(batch_size, num_blocks, num_patches)

    # Order patches by the first block that covers them (random order inside a block); the first `num_visible`
    # real patches in that order stay visible. That is "add whole blocks until the last one overshoots, then keep a
    # random part of it", computed for every clip at once.
    block_order = torch.arange(num_blocks, device=device, dtype=torch.float32)[None, :, None]
    first_block = torch.where(covered, block_order, float(num_blocks)).amin(dim=1)
    key = first_block + torch.rand(batch_size, num_patches, generator=generator, device=device)
    key = key.masked_fill(~patch_attention_mask, float("inf"))
    ranks = key.argsort(dim=1).argsort(dim=1)
    visible = ranks < num_visible[:, None]
    return patch_attention_mask & ~visible


def multi_mask(
    patch_attention_mask: torch.BoolTensor,
    num_views: int,
    mask_ratio: float = 0.75,
    mask_type: str = "random",
    num_freq_patches: int | None = None,
    block_time: int = 5,
    block_freq: int = 5,
    generator: torch.Generator | None = None,
) -> tuple[torch.BoolTensor, torch.LongTensor]:
    """
    `num_views` independent masks for every clip (EAT's multi-mask): the clip's tokenizer labels are computed once
    and shared by its `num_views` masked views, so each view costs one encoder pass but no tokenizer pass.

    Rows are **clip-major**: row `r` is view `r % num_views` of clip `r // num_views`, i.e. the views of clip 0
    first, then those of clip 1, and so on. The returned `clip_index` (`arange(batch).repeat_interleave(num_views)`)
    maps each row to its clip, so `input_values[clip_index]` and `labels[clip_index]` line up with the masks.

    Args:
        patch_attention_mask (`torch.BoolTensor` of shape `(batch, num_patches)`): `True` for real patches.
        num_views (`int`): masks per clip, `K >= 1`.
        mask_ratio (`float`, defaults to 0.75): fraction of real patches masked in every view.
        mask_type (`str`, defaults to `"random"`): `"random"` ([`random_patch_mask`]) or `"inverse_block"`
            ([`inverse_block_patch_mask`], which needs `num_freq_patches`).
        num_freq_patches, block_time, block_freq: see [`inverse_block_patch_mask`].
        generator (`torch.Generator`, *optional*): source of randomness.

    Returns:
        `(bool_masked_pos, clip_index)`: `(batch * num_views, num_patches)` masks and `(batch * num_views,)` clip
        indices.
    """
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}.")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}.")
    clip_index = torch.arange(patch_attention_mask.shape[0], device=patch_attention_mask.device)
    clip_index = clip_index.repeat_interleave(num_views)
    repeated = patch_attention_mask[clip_index]
    if mask_type == "random":
        return random_patch_mask(repeated, mask_ratio, generator), clip_index
    if num_freq_patches is None:
        raise ValueError("mask_type='inverse_block' needs num_freq_patches (config.num_freq_patches).")
    mask = inverse_block_patch_mask(repeated, num_freq_patches, mask_ratio, block_time, block_freq, generator)
    return mask, clip_index


__all__ = ["MASK_TYPES", "inverse_block_patch_mask", "multi_mask", "random_patch_mask"]
