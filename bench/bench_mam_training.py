# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Masked-audio-modelling training throughput on the released BEATs architecture, and the cost of a paper-scale run.

Four kinds of training step are timed on the same 8 clips of 10 s (496 patches each), each in its own process
(a step that follows a bigger one in the same process runs up to 2x slower on CPU: the allocator's heap is then
fragmented), the four taking turns round after round so that a change of machine load hits them alike:

- `visible_only` / `all_patches`: the encoder sees only the 25% visible patches (paper section 3.3.2, after MAE)
  versus all patches with the masked ones zeroed but kept in the sequence (a small subclass below, not in the
  library). Labels come from a warm `TokenizerLabelCache`, so the step is encoder + label predictor + optimiser.
- `views_k1` / `views_k4`: labels computed on the fly by a release-size `BeatsTokenizerModel` (12 layers), once
  per clip, shared by K = 1 or 4 masked views per clip (EAT's multi-mask). Compared in masked views per second.
  `views_k4_passes_of_8` runs the 32 views of K = 4 as 4 forward/backward passes of 8 views (the same gradient;
  `mask_views_per_pass` in `training/pretrain.py`), which keeps the activation memory of K = 1.

Every step is forward, backward, gradient clipping and an AdamW update in float32; the filter bank is computed once
beforehand (it is the same for every variant). Goals: visible-only >= 2x faster per step than all patches, and K=4
>= 1.3x more masked views per second than K=1.

FLOPs are counted from the code with `torch.utils.flop_counter.FlopCounterMode` on the forward pass of one clip
(eager attention, whose matmuls the counter sees) for each step and for the tokenizer; training is taken as 3x the
forward pass (encoder on the visible patches, label predictor on all of them; the tokenizer runs forward only).
They are then scaled to one paper-scale iteration, 400K steps of 5.6K s of audio (560 clips of 10 s), at an assumed
A100 bf16 throughput and utilisation.

    python bench/bench_mam_training.py [--rounds 2] [--warmup-steps 1] [--timed-steps 2]

Reported per variant is the fastest timed step (the least disturbed by other load; the median is in the JSON), in
wall time, plus the ratios in CPU time (all threads), which other processes sharing the cores disturb much less.
Runtime: about 30 minutes on 2 CPU cores with the defaults (a K=4 step alone takes about a minute there). Results
are printed and written to `bench/results/mam_training.json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from beats_hf import BeatsConfig, BeatsFeatureExtractor, BeatsForMaskedAudioModeling, BeatsTokenizerModel
from beats_hf.collators import DataCollatorForMaskedAudioModeling
from beats_hf.label_cache import TokenizerLabelCache
from beats_hf.modeling_beats import compute_patch_attention_mask
from beats_hf.training_utils import build_optimizer

NUM_CLIPS, CLIP_SECONDS = 8, 10.0
PAPER_STEPS, PAPER_CLIPS_PER_STEP = 400_000, 560  # 5.6K s of audio per step = 560 clips of 10 s
AUDIOSET_CLIPS = 1_919_153  # AS-2M clips the paper trained on (section 4.1)
GPU_NAME, GPU_PEAK_FLOPS, GPU_UTILISATION = "A100 (bf16 dense)", 312e12, 0.40
ESPNET_GPU_HOURS, PAPER_GPU_HOURS = "about 62 H200-hours", "about 1200 V100-hours"


class AllPatchesMaskedAudioModeling(BeatsForMaskedAudioModeling):
    """The MAM model without the MAE speed-up: masked patches are zeroed but stay in the encoder's sequence."""

    def forward(self, input_values, attention_mask=None, bool_masked_pos=None, labels=None, **kwargs):
        embeddings = self.beats.embeddings(input_values)
        embeddings = embeddings.masked_fill(bool_masked_pos.unsqueeze(-1), 0.0)
        patch_mask = compute_patch_attention_mask(attention_mask, input_values.shape[1], self.config)
        hidden_states, _, _ = self.beats.encoder(embeddings, patch_mask)
        # The label predictor gets zeros at masked positions, as in the visible-only model.
        logits = self.label_predictor(hidden_states.masked_fill(bool_masked_pos.unsqueeze(-1), 0.0), patch_mask)
        targets = labels.masked_fill(~bool_masked_pos, -100)
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)


def release_config() -> BeatsConfig:
    # Pre-training settings of paper Table 4 (dropout 0.1, no layer drop, no layer-wise gradient decay).
    return BeatsConfig(hidden_dropout=0.1, attention_dropout=0.1, layerdrop=0.0, layer_wise_gradient_decay_ratio=1.0)


def mam_loss(model, input_values, attention_mask, masks, views, labels) -> torch.Tensor:
    if isinstance(model, AllPatchesMaskedAudioModeling):
        return model(input_values[views], attention_mask[views], masks, labels[views])
    return model(
        input_values[views], attention_mask=attention_mask[views], bool_masked_pos=masks, labels=labels[views]
    ).loss


def train_step(model, optimizer, input_values, attention_mask, masks, views, labels, views_per_pass=None) -> None:
    # As training/pretrain.py: several passes weighted by their share of masked patches give one pass's gradient.
    per_pass = views_per_pass or len(views)
    for start in range(0, len(views), per_pass):
        part = slice(start, start + per_pass)
        loss = mam_loss(model, input_values, attention_mask, masks[part], views[part], labels)
        (loss * (masks[part].sum() / masks.sum())).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def count_forward_flops(function) -> dict[str, int]:
    """FLOPs of a forward pass, in total and per module (keys are module paths, e.g. `Model.beats`)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        function()
    return {name: sum(counts.values()) for name, counts in counter.get_flop_counts().items()}


def _part(counts: dict[str, int], suffix: str) -> int:
    return sum(value for name, value in counts.items() if name.endswith(suffix))


def forward_flops_per_clip(model, tokenizer, batch, kind: str) -> dict[str, int]:
    """
    Forward FLOPs of one clip's training step (total, encoder, its positional convolution, label predictor) and of
    the tokenizer on one clip. Training costs about 3x the forward pass; torch's counter is not used for the backward
    pass because it overcounts the backward of grouped convolutions (the positional convolution) by the group count.
    """
    one = {key: batch[key][:1] for key in ("input_values", "attention_mask")}
    masks, views = batch["bool_masked_pos"][:1], torch.zeros(1, dtype=torch.long)
    labels = torch.zeros(1, masks.shape[1], dtype=torch.long)
    model.set_attn_implementation("eager")  # the counter sees eager attention's matmuls, not the fused kernels
    tokenizer.set_attn_implementation("eager")
    try:
        step = count_forward_flops(
            lambda: mam_loss(model, one["input_values"], one["attention_mask"], masks, views, labels)
        )
        tokenizer_counts = count_forward_flops(
            lambda: tokenizer(one["input_values"], attention_mask=one["attention_mask"])
        )
    finally:
        model.set_attn_implementation("sdpa")
        tokenizer.set_attn_implementation("sdpa")
    return {
        f"{kind}_forward": step["Global"],
        f"{kind}_forward_encoder": _part(step, ".beats"),
        f"{kind}_forward_encoder_positional_conv": _part(step, ".beats.encoder.pos_conv_embed"),
        f"{kind}_forward_label_predictor": _part(step, ".label_predictor"),
        "tokenizer_forward": tokenizer_counts["Global"],
    }


def gpu_hours(flops: float) -> float:
    return flops / (GPU_PEAK_FLOPS * GPU_UTILISATION) / 3600.0


def paper_scale_estimate(flops: dict[str, int]) -> dict[str, float | str]:
    """GPU-hours of one pre-training iteration (400K steps x 560 clips) from per-clip FLOP counts."""
    clips = PAPER_STEPS * PAPER_CLIPS_PER_STEP
    # Training = forward + backward ~ 3x the forward pass; the frozen tokenizer runs forward only.
    visible, all_patches = 3 * flops["visible_forward"], 3 * flops["all_forward"]
    tokenizer = flops["tokenizer_forward"]
    return {
        "assumption": f"{GPU_NAME} at {GPU_PEAK_FLOPS / 1e12:.0f} TFLOP/s x {GPU_UTILISATION:.0%} utilisation",
        "clips_seen": clips,
        "flops_per_step_visible_only": visible * PAPER_CLIPS_PER_STEP,
        "flops_per_step_tokenizer": tokenizer * PAPER_CLIPS_PER_STEP,
        "gpu_hours_iter1_random_projection": gpu_hours(visible * clips),
        "gpu_hours_iter2_tokenizer_on_the_fly": gpu_hours((visible + tokenizer) * clips),
        "gpu_hours_iter2_label_cache": gpu_hours(visible * clips + tokenizer * AUDIOSET_CLIPS),
        "gpu_hours_iter2_all_patches_on_the_fly": gpu_hours((all_patches + tokenizer) * clips),
        "espnet_reference": ESPNET_GPU_HOURS,
        "paper_reference": PAPER_GPU_HOURS,
    }


VARIANTS = {  # name: (masked views per clip, labels from the warm cache?, all patches in the encoder?, views per pass)
    "visible_only": (1, True, False, None),
    "all_patches": (1, True, True, None),
    "views_k1": (1, False, False, None),
    "views_k4": (4, False, False, None),
    "views_k4_passes_of_8": (4, False, False, NUM_CLIPS),
}


def bench_inputs(config: BeatsConfig) -> tuple[BeatsFeatureExtractor, dict[int, dict]]:
    """The filter banks of 8 clips of 10 s, with their masks for K = 1 and K = 4 views (the same in every process)."""
    extractor = BeatsFeatureExtractor()
    rng = np.random.default_rng(0)
    items = [
        {"waveform": (0.1 * rng.standard_normal(int(CLIP_SECONDS * 16000))).astype(np.float32), "id": f"clip{i}"}
        for i in range(NUM_CLIPS)
    ]
    collators = {k: DataCollatorForMaskedAudioModeling(extractor, config, num_mask_views=k, seed=0) for k in (1, 4)}
    return extractor, {k: collator(items) for k, collator in collators.items()}


def run_variant(name: str, warmup_steps: int, timed_steps: int) -> dict[str, list[float]]:
    """Time one variant's training steps (wall and CPU seconds); the warm-up steps also fill the label cache."""
    num_views, cached, all_patches, views_per_pass = VARIANTS[name]
    torch.manual_seed(0)
    config = release_config()
    extractor, batches = bench_inputs(config)
    batch = batches[num_views]
    input_values, attention_mask = batch["input_values"], batch["attention_mask"]
    model = (AllPatchesMaskedAudioModeling if all_patches else BeatsForMaskedAudioModeling)(config).train()
    optimizer = build_optimizer(model, 5e-4)
    tokenizer = BeatsTokenizerModel(BeatsConfig()).eval().requires_grad_(False)
    cache_dir = tempfile.TemporaryDirectory()
    label_cache = TokenizerLabelCache(cache_dir.name, tokenizer, extractor, flush_every=0)

    def tokenize(values, mask):
        return tokenizer(values, attention_mask=mask).token_ids

    wall, cpu = [], []
    for index in range(warmup_steps + timed_steps):
        began, began_cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            if cached:
                labels = label_cache.labels_for_batch(batch["clip_keys"], input_values, attention_mask, tokenize)
            else:
                labels = tokenize(input_values, attention_mask)
        masks, views = batch["bool_masked_pos"], batch["clip_index"]
        train_step(model, optimizer, input_values, attention_mask, masks, views, labels, views_per_pass)
        if index >= warmup_steps:
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="times each variant is run, in turn")
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--timed-steps", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "mam_training.json")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)  # one worker process
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.warmup_steps, args.timed_steps)))
        return

    # 1. Timing. Every variant runs in a fresh process: a step that follows a larger one in the same process runs
    # up to 2x slower on CPU (the allocator's heap is then fragmented), which would distort the comparisons. The
    # variants take turns, round after round, so that a change in machine load hits them alike.
    start = time.perf_counter()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu_times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_index in range(args.rounds):
        for name in VARIANTS:
            command = [sys.executable, __file__, "--variant", name]
            command += ["--warmup-steps", str(args.warmup_steps), "--timed-steps", str(args.timed_steps)]
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"variant {name} failed:\n{completed.stderr[-3000:]}")
            measured = json.loads(completed.stdout.strip().splitlines()[-1])
            times[name] += measured["wall"]
            cpu_times[name] += measured["cpu"]
            steps = ", ".join(f"{w:.1f} s ({c:.1f} s CPU)" for w, c in zip(measured["wall"], measured["cpu"]))
            print(f"round {round_index} {name:>12}: {steps}", flush=True)

    # 2. FLOPs counted from the code on one clip.
    config = release_config()
    _, batches = bench_inputs(config)
    tokenizer = BeatsTokenizerModel(BeatsConfig()).eval()
    flops = forward_flops_per_clip(BeatsForMaskedAudioModeling(config), tokenizer, batches[1], "visible")
    flops.update(forward_flops_per_clip(AllPatchesMaskedAudioModeling(config), tokenizer, batches[1], "all"))
    wall_seconds = time.perf_counter() - start
    num_patches = batches[1]["bool_masked_pos"].shape[1]

    results: dict[str, dict] = {"variants": {}}
    for name, measured in times.items():
        # The fastest step is the one least disturbed by other load on the machine; the median is kept beside it.
        seconds = min(measured)
        results["variants"][name] = {
            "seconds_per_step": seconds,
            "median_seconds_per_step": statistics.median(measured),
            "all_step_seconds": measured,
            "cpu_seconds_per_step": min(cpu_times[name]),
            "all_step_cpu_seconds": cpu_times[name],
            "clips_per_second": NUM_CLIPS / seconds,
            "patches_per_second": NUM_CLIPS * num_patches / seconds,
            "masked_views_per_second": NUM_CLIPS * VARIANTS[name][0] / seconds,
        }
    variant = results["variants"]
    speedup = variant["all_patches"]["seconds_per_step"] / variant["visible_only"]["seconds_per_step"]
    view_gain = variant["views_k4"]["masked_views_per_second"] / variant["views_k1"]["masked_views_per_second"]
    view_gain_passes = (
        variant["views_k4_passes_of_8"]["masked_views_per_second"] / variant["views_k1"]["masked_views_per_second"]
    )
    results["ratios"] = {
        "visible_only_speedup_per_step": speedup,
        "visible_only_goal_2x_met": speedup >= 2.0,
        "k4_over_k1_masked_views_per_second": view_gain,
        "k4_goal_1_3x_met": view_gain >= 1.3,
        "k4_in_passes_of_8_over_k1_masked_views_per_second": view_gain_passes,
        "k4_in_passes_of_8_goal_1_3x_met": view_gain_passes >= 1.3,
        # CPU time (all threads) is much less sensitive to other processes sharing the cores than wall time.
        "visible_only_speedup_cpu_time": min(cpu_times["all_patches"]) / min(cpu_times["visible_only"]),
        "k4_over_k1_cpu_time": 4 * min(cpu_times["views_k1"]) / min(cpu_times["views_k4"]),
        "k4_in_passes_of_8_over_k1_cpu_time": 4 * min(cpu_times["views_k1"]) / min(cpu_times["views_k4_passes_of_8"]),
    }
    results["flops_per_clip"] = flops
    results["paper_scale_iteration"] = paper_scale_estimate(flops)
    results["setup"] = {
        "clips_per_step": NUM_CLIPS,
        "clip_seconds": CLIP_SECONDS,
        "patches_per_clip": num_patches,
        "visible_patches_per_clip": int((~batches[1]["bool_masked_pos"][0]).sum()),
        "process_per_variant": True,
        "architecture": (
            f"released BEATs ({config.num_hidden_layers} x {config.hidden_size}, label predictor "
            f"{config.label_predictor_num_layers} layer(s), {config.codebook_size} codes); tokenizer 12 x 768"
        ),
        "dtype": "float32",
        "attention": "sdpa (timing), eager (FLOP counting)",
        "rounds": args.rounds,
        "warmup_steps_per_process": args.warmup_steps,
        "timed_steps_per_process": args.timed_steps,
        "wall_seconds": wall_seconds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }

    print("\nMAM training throughput (fastest timed step, 8 x 10 s clips, float32, CPU)")
    for name, row in variant.items():
        print(
            f"  {name:>12}: {row['seconds_per_step']:7.2f} s/step  {row['clips_per_second']:.3f} clips/s  "
            f"{row['patches_per_second']:7.1f} patches/s  {row['masked_views_per_second']:.3f} masked views/s"
        )
    ratios = results["ratios"]
    print(
        f"  visible-only vs all patches: {speedup:.2f}x faster per step (goal >= 2x); "
        f"{ratios['visible_only_speedup_cpu_time']:.2f}x in CPU time"
    )
    print(
        f"  K=4 vs K=1: {view_gain:.2f}x more masked views per second (goal >= 1.3x); "
        f"{ratios['k4_over_k1_cpu_time']:.2f}x in CPU time"
    )
    print(
        f"  K=4 in 4 passes of 8 views vs K=1: {view_gain_passes:.2f}x more masked views per second; "
        f"{ratios['k4_in_passes_of_8_over_k1_cpu_time']:.2f}x in CPU time"
    )
    estimate = results["paper_scale_iteration"]
    print(
        f"\nOne paper-scale iteration ({PAPER_STEPS:,} steps x {PAPER_CLIPS_PER_STEP} clips), {estimate['assumption']}:"
    )
    print(
        f"  FLOPs per clip, forward: visible-only {flops['visible_forward'] / 1e9:.1f} G (encoder "
        f"{flops['visible_forward_encoder'] / 1e9:.1f} G, of which positional conv "
        f"{flops['visible_forward_encoder_positional_conv'] / 1e9:.1f} G; label predictor "
        f"{flops['visible_forward_label_predictor'] / 1e9:.1f} G), all patches {flops['all_forward'] / 1e9:.1f} G, "
        f"tokenizer {flops['tokenizer_forward'] / 1e9:.1f} G"
    )
    step_tflops = estimate["flops_per_step_visible_only"] / 1e12
    print(f"  FLOPs per step (visible-only, 3 x forward): {step_tflops:.1f} TFLOP")
    for key in (
        "gpu_hours_iter1_random_projection",
        "gpu_hours_iter2_tokenizer_on_the_fly",
        "gpu_hours_iter2_label_cache",
        "gpu_hours_iter2_all_patches_on_the_fly",
    ):
        print(f"  {key[10:]:>32}: {estimate[key]:7.0f} GPU-hours")
    print(f"  for comparison: ESPnet {ESPNET_GPU_HOURS}; the paper {PAPER_GPU_HOURS}")
    print(f"\nWall time {wall_seconds / 60:.1f} min.")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
