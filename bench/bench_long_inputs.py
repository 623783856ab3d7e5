"""Single long clips (10 s, 30 s, 60 s): time and peak memory of ours (sdpa, eager) and the official code.

Command (from the repository root; ~8 min with the defaults on 2 cores):

    PYTHONPATH=src .venv/bin/python bench/bench_long_inputs.py [--repeats 3] [--seconds 10 30 60]
        [--impls ours-sdpa ours-eager official] [--no-tensor-peak]

Every (implementation, length) pair runs in a fresh subprocess, so that memory held by earlier runs (model
copies, the allocator's cached pages, a previous longer clip) cannot hide or inflate the peak. In that process:

1. Build the model from the shared random release-size checkpoint (`bench/_common.py make-checkpoint`), make the
   waveform (1, seconds * 16000), drop the checkpoint dict.
2. Memory, method 1 (what the OS sees): `malloc_trim(0)`, then reset the kernel's peak-RSS counter (write 5 to
   /proc/self/clear_refs; this also resets `getrusage().ru_maxrss`), read VmRSS as the baseline, run the first
   forward, read the peak (VmHWM). `peak_extra_mib` = peak - baseline: the extra resident memory the forward
   needed on top of the loaded model and its input.
3. Memory, method 2 (allocator-independent, `--no-tensor-peak` skips it): a second forward under a
   TorchDispatchMode that adds up the bytes of every tensor storage created by an aten op while it is alive
   (`tensor_peak_mib`). It excludes kernel-internal scratch (SDPA/MKL buffers) and allocator caching, so it is a
   lower bound; method 1 is the upper bound.
4. Time: `--repeats` timed forwards after those two warm runs; median reported.

The cost ratio of the goal is measured separately, because this machine's speed drifts by 10-20% over minutes
(other tenants), which makes ratios of times taken minutes apart in different processes unreliable: one process
per implementation builds the model once and times all lengths round-robin (10 s, 30 s, 60 s, 10 s, ...) for
`--paired-rounds` rounds; the reported cost is the median of the per-round ratios (`paired_cost_vs_shortest`).

End to end from the waveform for all three: the official `BEATs.extract_features` (per-clip torchaudio fbank +
encoder; needs torchaudio, runs in `_common.OFFICIAL_PYTHON`) and ours (`compute_beats_fbank` +
`BeatsModel`, in the interpreter running this script). fp32, torch.set_num_threads(2), no padding.

Goals (ours): a 60 s clip costs <= 10x a 10 s clip and needs <= 0.8 GiB more peak memory than a 10 s clip.
Analytic FLOPs grow 8.8x from 10 s (496 patches) to 60 s (2992 patches), see `_common.beats_forward_flops`.

Writes bench/results/bench_long_inputs.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

IMPLS = ("ours-sdpa", "ours-eager", "official")


def forward_builder(impl: str, checkpoint: dict) -> Callable[[torch.Tensor], Callable[[], torch.Tensor]]:
    """Build the model of `impl` once; the result turns a waveform into a no-argument forward (waveform -> output)."""
    if impl == "official":
        model = C.build_official_model(checkpoint)

        def make(waveform: torch.Tensor) -> Callable[[], torch.Tensor]:
            def forward():
                with torch.inference_mode():
                    return model.extract_features(waveform)[0]

            return forward

        return make

    from beats_hf.feature_extraction_beats import compute_beats_fbank

    model = C.build_our_model(checkpoint, impl.split("-", 1)[1])

    def make(waveform: torch.Tensor) -> Callable[[], torch.Tensor]:
        def forward():
            with torch.inference_mode():
                return model(compute_beats_fbank(waveform)).last_hidden_state

        return forward

    return make


def child(impl: str, seconds: float, repeats: int, tensor_peak: bool) -> dict:
    C.setup_threads(2)
    checkpoint = C.load_checkpoint()
    forward = forward_builder(impl, checkpoint)(C.make_waveforms(1, seconds))
    del checkpoint
    reset_ok = C.reset_peak_rss()
    baseline = C.rss_kib()["VmRSS"]
    first = C.time_fn(forward, 0, 1)["median_s"]
    peak = C.rss_kib()["VmHWM"]
    result = {
        "impl": impl,
        "seconds": seconds,
        "num_patches": int(forward().shape[1]),
        "first_run_s": first,
        "baseline_rss_mib": baseline / 1024,
        "peak_rss_mib": peak / 1024,
        "peak_extra_mib": (peak - baseline) / 1024,
        "peak_reset_ok": reset_ok,
    }
    if tensor_peak:
        tracker = C.LiveTensorPeak()
        with tracker:
            forward()
        result["tensor_peak_mib"] = tracker.peak / 2**20
    stats = C.time_fn(forward, 0, repeats)
    result.update(
        median_s=stats["median_s"],
        min_s=stats["min_s"],
        runs_s=stats["runs_s"],
        other_load_cores=statistics.median(stats["other_load_cores"]),
    )
    result["system"] = C.system_info()
    return result


def child_paired(impl: str, lengths: list[float], rounds: int) -> dict:
    """All lengths timed round-robin in one process: per-round cost ratios immune to slow drifts of the machine."""
    C.setup_threads(2)
    checkpoint = C.load_checkpoint()
    make = forward_builder(impl, checkpoint)
    del checkpoint
    fns = {str(seconds): make(C.make_waveforms(1, seconds)) for seconds in lengths}
    timings = C.time_interleaved(fns, 1, rounds)
    shortest = str(min(lengths))
    ratios = {
        key: statistics.median(a / b for a, b in zip(timings[key]["runs_s"], timings[shortest]["runs_s"]))
        for key in fns
    }
    return {"impl": impl, "timings": timings, "paired_cost_vs_shortest": ratios, "system": C.system_info()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--no-tensor-peak", action="store_true", help="skip the tensor-level memory measurement")
    C.add_quiet_flags(parser)
    parser.add_argument("--paired-rounds", type=int, default=5, help="rounds of the round-robin cost measurement")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--child-paired", metavar="IMPL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    C.configure_quiet(args)

    if args.child:
        result = child(args.child[0], float(args.child[1]), args.repeats, not args.no_tensor_peak)
        print("RESULT " + json.dumps(result))
        return
    if args.child_paired:
        result = child_paired(args.child_paired, args.seconds, args.paired_rounds)
        print("RESULT " + json.dumps(result))
        return

    C.setup_threads(2)
    system = C.system_info()
    C.load_checkpoint()  # create it once, before the children race for it
    results = []
    for impl in args.impls:
        python = C.OFFICIAL_PYTHON if impl == "official" else sys.executable
        for seconds in args.seconds:
            cmd = [python, __file__, "--child", impl, str(seconds), "--repeats", str(args.repeats)]
            cmd += ["--quiet-wait", str(args.quiet_wait), "--quiet-retries", str(args.quiet_retries)]
            if args.no_tensor_peak:
                cmd.append("--no-tensor-peak")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                raise SystemExit(f"child {impl} {seconds}s failed")
            row = json.loads(lines[-1][len("RESULT ") :])
            print(
                f"{impl:>10} {seconds:>4.0f} s: {row['median_s']:.2f} s, +{row['peak_extra_mib']:.0f} MiB peak RSS",
                flush=True,
            )
            results.append(row)

    paired = {}
    for impl in args.impls:
        python = C.OFFICIAL_PYTHON if impl == "official" else sys.executable
        cmd = [python, __file__, "--child-paired", impl, "--seconds", *map(str, args.seconds)]
        cmd += ["--paired-rounds", str(args.paired_rounds)]
        cmd += ["--quiet-wait", str(args.quiet_wait), "--quiet-retries", str(args.quiet_retries)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            raise SystemExit(f"paired child {impl} failed")
        paired[impl] = json.loads(lines[-1][len("RESULT ") :])
        costs = ", ".join(f"{float(k):.0f} s {v:.2f}x" for k, v in paired[impl]["paired_cost_vs_shortest"].items())
        print(f"{impl:>10} round-robin cost: {costs}", flush=True)

    shortest = min(args.seconds)
    for row in results:
        base = next(r for r in results if r["impl"] == row["impl"] and r["seconds"] == shortest)
        row["cost_vs_shortest"] = row["median_s"] / base["median_s"]
        row["extra_peak_vs_shortest_mib"] = row["peak_extra_mib"] - base["peak_extra_mib"]
        if "tensor_peak_mib" in row:
            row["extra_tensor_peak_vs_shortest_mib"] = row["tensor_peak_mib"] - base["tensor_peak_mib"]
        row["torch"] = row["system"]["torch"]
        row["paired_cost_vs_shortest"] = paired[row["impl"]]["paired_cost_vs_shortest"][str(row["seconds"])]

    print("\nSingle clip, waveform -> last hidden state, fp32, 2 threads; memory = extra over the loaded model\n")
    C.print_table(
        results,
        [
            ("impl", "impl", ""),
            ("torch", "torch", ""),
            ("seconds", "clip s", ".0f"),
            ("num_patches", "patches", "d"),
            ("median_s", "median s", ".2f"),
            ("cost_vs_shortest", f"x {shortest:.0f} s", ".1f"),
            ("paired_cost_vs_shortest", f"x {shortest:.0f} s paired", ".2f"),
            ("peak_extra_mib", "peak RSS +MiB", ".0f"),
            ("extra_peak_vs_shortest_mib", f"vs {shortest:.0f} s MiB", "+.0f"),
            ("tensor_peak_mib", "tensor peak MiB", ".0f"),
            ("other_load_cores", "other load", ".2f"),
        ],
    )
    goals = {}
    for impl in ("ours-sdpa", "ours-eager"):
        rows = {r["seconds"]: r for r in results if r["impl"] == impl}
        if 60.0 in rows and 10.0 in rows:
            cost = paired[impl]["paired_cost_vs_shortest"]["60.0"] / paired[impl]["paired_cost_vs_shortest"]["10.0"]
            mem = (rows[60.0]["peak_extra_mib"] - rows[10.0]["peak_extra_mib"]) / 1024
            goals[impl] = {
                "cost_60_vs_10": cost,
                "cost_60_vs_10_separate_processes": rows[60.0]["median_s"] / rows[10.0]["median_s"],
                "cost_ok": cost <= 10,
                "extra_gib_60_vs_10": mem,
                "mem_ok": mem <= 0.8,
            }
            print(
                f"{impl}: 60 s = {cost:.2f}x 10 s, round-robin (goal <= 10x: {'met' if cost <= 10 else 'NOT met'}), "
                f"+{mem:.2f} GiB over 10 s (goal <= 0.8 GiB: {'met' if mem <= 0.8 else 'NOT met'})"
            )
    path = C.write_results(
        "bench_long_inputs",
        {"args": vars(args), "system": system, "rows": results, "paired": paired, "goals": goals},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
