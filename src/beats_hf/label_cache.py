# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""A disk cache of tokenizer labels, so that a frozen acoustic tokenizer runs once per clip instead of once per epoch.

In MAM pre-training the targets of a clip are the discrete labels its frozen tokenizer gives (paper eq. 4). Without
augmentation they never change, so they can be computed once (EAT's "cheap targets"): a release-size tokenizer
costs about a third of a training step.

**What a cache entry is.** One entry per clip *crop*: the key is `clip id | crop start | crop length | digest` (start
and length in samples, the digest a BLAKE2b hash of the crop's float32 samples) and the value the labels of the
crop's real patches, in time-major order. Keying on the crop keeps entries exact
for any tokenizer (a Transformer tokenizer's labels depend on the whole crop, so they cannot be cut out of a longer
clip's labels). It also means random crops of clips longer than the crop length would miss on every epoch, so
training with the cache uses deterministic start crops (`crop='start'`; `training/pretrain.py` refuses anything
else); for 10 s AudioSet clips and a 10 s crop that loses nothing.

**Staleness.** The cache is keyed by the tokenizer's identity: a SHA-256 over the tokenizer's class, its config,
every tensor of its state dict, and the feature extractor's config ([`tokenizer_fingerprint`]). It is stored in
`metadata.json` and in every shard; opening the cache with another tokenizer (retrained, re-seeded, other fbank
statistics) raises [`StaleLabelCacheError`] instead of feeding old labels. The audio is covered by the digest in
every key: a file replaced or re-encoded under the same name, or a dataset row that now holds another clip, misses
the cache and is tokenized again (hashing a 10 s crop takes well under a millisecond, a tokenizer pass far more).

**Storage.** `cache_dir/metadata.json` plus shards `labels-<process>-<random>.safetensors`, each holding the labels
of many clips concatenated (`token_ids`, int16 for codebooks up to 32768 codes), their `offsets`, and the clip keys
and fingerprint in the safetensors metadata. Shards are written atomically (temporary file, then rename) and never
modified, so an interrupted run loses at most the entries not yet flushed, and several processes can add shards to
the same cache. A shard that cannot be read (e.g. cut short when the machine went down) is skipped with a warning and
its clips are tokenized again; an unreadable `metadata.json` is rewritten (every shard is checked against the
fingerprint it carries itself, so neither can bring in labels of another tokenizer).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

# 2: keys carry a digest of the crop's samples.
FORMAT_VERSION = 2
_METADATA_FILE = "metadata.json"
# Config entries that say where or with what a model was saved, not what it computes.
_VOLATILE_CONFIG_KEYS = {"transformers_version", "architectures", "auto_map", "dtype", "torch_dtype"}


class StaleLabelCacheError(ValueError):
    """The label cache was built by another tokenizer (or feature extractor) than the one in use."""


def _canonical_config(values: dict[str, Any]) -> str:
    kept = {k: v for k, v in values.items() if not k.startswith("_") and k not in _VOLATILE_CONFIG_KEYS}
    return json.dumps(kept, sort_keys=True, default=str)


def tokenizer_fingerprint(tokenizer: torch.nn.Module, feature_extractor: Any) -> str:
    """
    SHA-256 hex digest of everything that decides a tokenizer's labels: its class name, its config (without
    bookkeeping entries such as `_name_or_path` or `transformers_version`), the name, dtype, shape and bytes of every
    state-dict tensor, and the feature extractor's config (fbank statistics, mel bins, sampling rate).
    """
    digest = hashlib.sha256()
    digest.update(type(tokenizer).__name__.encode())
    digest.update(_canonical_config(tokenizer.config.to_dict()).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(_canonical_config(feature_extractor.to_dict()).encode())
    return digest.hexdigest()


def clip_key(clip_id: str, crop_start: int, waveform: np.ndarray | torch.Tensor) -> str:
    """
    The cache key of a crop (`waveform`, 1-D, the samples the tokenizer sees): `clip id | first sample | number of
    samples | BLAKE2b-128 hex digest of the samples as float32`.
    """
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().to("cpu").numpy()
    samples = np.ascontiguousarray(waveform, dtype=np.float32)
    digest = hashlib.blake2b(samples.reshape(-1).view(np.uint8), digest_size=16).hexdigest()
    return f"{clip_id}|{int(crop_start)}|{samples.shape[0]}|{digest}"


def _write_json_atomic(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _read_metadata(path: Path) -> dict | None:
    """The cache's `metadata.json`, or None when there is none or it cannot be read (then it is written anew)."""
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        stored = error
    if not isinstance(stored, dict):
        logger.warning("%s cannot be read (%s); writing it again.", path, stored)
        return None
    return stored


class TokenizerLabelCache:
    """
    Labels of one frozen tokenizer, per clip crop, stored in `cache_dir` (see the module docstring for the format).

    Use [`labels_for_batch`] in a training step: it returns the `(batch, num_patches)` labels of a batch, taking the
    cached ones and running `tokenize` only on the clips not cached yet (which are then added). Call [`flush`]
    from time to time and at the end to write the new entries to disk.

    Args:
        cache_dir: folder of the cache (created if needed).
        tokenizer: the frozen tokenizer ([`BeatsTokenizerModel`] or [`BeatsRandomProjectionTokenizer`]).
        feature_extractor: the [`BeatsFeatureExtractor`] that makes the tokenizer's input.
        process_index: written into shard names, so that data-parallel processes never write the same file.
        flush_every: write a shard automatically once this many new entries are pending (0 = only on `flush`).

    Raises:
        StaleLabelCacheError: `cache_dir` holds labels of another tokenizer or feature extractor.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        tokenizer: torch.nn.Module,
        feature_extractor: Any,
        process_index: int = 0,
        flush_every: int = 4096,
    ):
        self.cache_dir = Path(cache_dir)
        self.fingerprint = tokenizer_fingerprint(tokenizer, feature_extractor)
        self.codebook_size = int(tokenizer.config.codebook_size)
        self.patch_size = int(tokenizer.config.patch_size)
        self.num_freq_patches = int(tokenizer.config.num_freq_patches)
        self.process_index = process_index
        self.flush_every = flush_every
        self.storage_dtype = torch.int16 if self.codebook_size <= 2**15 else torch.int32
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, torch.Tensor] = {}
        self._pending: dict[str, torch.Tensor] = {}

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        metadata_path = self.cache_dir / _METADATA_FILE
        metadata = {
            "format_version": FORMAT_VERSION,
            "tokenizer_fingerprint": self.fingerprint,
            "tokenizer_class": type(tokenizer).__name__,
            "codebook_size": self.codebook_size,
            "feature_extractor": json.loads(_canonical_config(feature_extractor.to_dict())),
        }
        stored = _read_metadata(metadata_path)
        if stored is not None:
            if stored.get("format_version") != FORMAT_VERSION:
                raise StaleLabelCacheError(
                    f"{metadata_path} is format {stored.get('format_version')}, this code reads format "
                    f"{FORMAT_VERSION}; delete the cache folder to rebuild it."
                )
            self._check_fingerprint(stored.get("tokenizer_fingerprint"), metadata_path)
        else:
            _write_json_atomic(metadata_path, metadata)
        for shard in sorted(self.cache_dir.glob("labels-*.safetensors")):
            self._load_shard(shard)

    def _check_fingerprint(self, stored: str | None, where: Path) -> None:
        if stored != self.fingerprint:
            raise StaleLabelCacheError(
                f"The label cache {self.cache_dir} was built by a different tokenizer or feature extractor "
                f"({where.name} has fingerprint {str(stored)[:12]}..., the current tokenizer {self.fingerprint[:12]}...). "
                "Its labels would be wrong for this tokenizer. Use a new cache folder, or delete this one to rebuild it."
            )

    def _load_shard(self, shard: Path) -> None:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(shard), framework="pt") as handle:
                metadata = handle.metadata() or {}
                token_ids = handle.get_tensor("token_ids")
                offsets = handle.get_tensor("offsets").tolist()
            keys = json.loads(metadata["clip_keys"])
            if len(offsets) != len(keys) + 1 or offsets[-1] != token_ids.numel():
                raise ValueError(f"{len(keys)} clip keys, {len(offsets)} offsets, {token_ids.numel()} labels")
        except (SafetensorError, OSError, KeyError, TypeError, ValueError) as error:
            # A cache may lose entries, never stop training: the clips of this shard are simply tokenized again.
            logger.warning(
                "Label cache shard %s cannot be read (%s); its clips will be tokenized again. Delete the file to "
                "silence this warning.",
                shard,
                " ".join(str(error).split()) or type(error).__name__,
            )
            return
        self._check_fingerprint(metadata.get("tokenizer_fingerprint"), shard)
        for index, key in enumerate(keys):
            self._entries[key] = token_ids[offsets[index] : offsets[index + 1]]

    def __len__(self) -> int:
        return len(self._entries) + len(self._pending)

    def __contains__(self, key: str) -> bool:
        return key in self._entries or key in self._pending

    def get(self, key: str) -> torch.LongTensor | None:
        """The labels of a crop's real patches, or None when it is not cached."""
        value = self._entries.get(key, self._pending.get(key))
        return None if value is None else value.long()

    def put(self, key: str, token_ids: torch.Tensor) -> None:
        """Store the labels of a crop's real patches (1-D, values in `[0, codebook_size)`)."""
        token_ids = token_ids.detach().reshape(-1).to("cpu")
        if token_ids.numel() and (int(token_ids.min()) < 0 or int(token_ids.max()) >= self.codebook_size):
            raise ValueError(f"labels of {key!r} must lie in [0, {self.codebook_size}); pass real patches only.")
        self._pending[key] = token_ids.to(self.storage_dtype)
        if self.flush_every and len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> Path | None:
        """Write pending entries to a new shard; returns its path (None when nothing was pending)."""
        if not self._pending:
            return None
        from safetensors.torch import save_file

        keys = list(self._pending)
        lengths = torch.tensor([0] + [self._pending[key].numel() for key in keys])
        tensors = {
            "token_ids": torch.cat([self._pending[key] for key in keys]).contiguous(),
            "offsets": torch.cumsum(lengths, dim=0),
        }
        metadata = {"tokenizer_fingerprint": self.fingerprint, "clip_keys": json.dumps(keys)}
        name = f"labels-{self.process_index}-{uuid.uuid4().hex[:12]}.safetensors"
        path = self.cache_dir / name
        temporary = self.cache_dir / f".{name}.tmp"
        save_file(tensors, str(temporary), metadata=metadata)
        os.replace(temporary, path)
        self._entries.update(self._pending)
        self._pending = {}
        return path

    def real_patch_counts(self, attention_mask: torch.Tensor | None, batch_size: int, num_frames: int) -> list[int]:
        """Real patches per clip of a padded batch (frame-level `attention_mask`, 1 = real frame)."""
        if attention_mask is None:
            return [(num_frames // self.patch_size) * self.num_freq_patches] * batch_size
        frames = attention_mask.sum(dim=-1).tolist()
        return [(int(count) // self.patch_size) * self.num_freq_patches for count in frames]

    def labels_for_batch(
        self,
        keys: Sequence[str],
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None,
        tokenize: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    ) -> torch.LongTensor:
        """
        `(batch, num_patches)` labels of a batch (`-100` on padding patches), on `input_values.device`.

        Args:
            keys: [`clip_key`] of every clip of the batch (the collators return them as `clip_keys`).
            input_values, attention_mask: the batch's features, `(batch, frames, mel)` and `(batch, frames)`.
            tokenize: called as `tokenize(input_values, attention_mask)` on the clips that are not cached yet; must
                return their `(n, num_patches)` labels with `-100` on padding (a tokenizer's `token_ids`).
        """
        batch_size, num_frames = input_values.shape[:2]
        if len(keys) != batch_size:
            raise ValueError(f"got {len(keys)} clip keys for a batch of {batch_size} clips.")
        num_patches = (num_frames // self.patch_size) * self.num_freq_patches
        counts = self.real_patch_counts(attention_mask, batch_size, num_frames)
        labels = torch.full((batch_size, num_patches), -100, dtype=torch.long)
        missing = [row for row, key in enumerate(keys) if key not in self]
        self.hits += batch_size - len(missing)
        self.misses += len(missing)
        if missing:
            index = torch.tensor(missing, device=input_values.device)
            mask = attention_mask[index] if attention_mask is not None else None
            computed = tokenize(input_values[index], mask).to("cpu")
            for position, row in enumerate(missing):
                self.put(keys[row], computed[position, : counts[row]])
        for row, key in enumerate(keys):
            cached = self.get(key)
            if cached.numel() != counts[row]:
                raise StaleLabelCacheError(
                    f"The cached labels of {key!r} cover {cached.numel()} patches but the clip in this batch has "
                    f"{counts[row]} real patches. Pass the batch's attention_mask (the key's digest covers the audio "
                    "itself)."
                )
            labels[row, : counts[row]] = cached
        return labels.to(input_values.device)


__all__ = ["StaleLabelCacheError", "TokenizerLabelCache", "clip_key", "tokenizer_fingerprint"]
