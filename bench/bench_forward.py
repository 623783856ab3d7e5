"""Release-size BEATs forward on 8 x 10 s clips: time, analytic FLOPs, fraction of GEMM peak; official vs ours.

Command (from the repository root; ~6-8 min with the defaults on 2 cores):

    PYTHONPATH=src .venv/bin/python bench/bench_forward.py [--repeats 3] [--warmup 1] [--gemm-n 2048 4096]
        [--quiet-wait 60 --quiet-retries 2] [--compile] [--part model]

What it measures (torch.set_num_threads(2), `warmup` untimed runs, then the median of `repeats` timed runs; the
configurations are timed round-robin so that other jobs on the shared machine slow all of them alike):

1. Machine ceiling: large square `torch.matmul`s (n = --gemm-n, 10 runs each) in fp32 and bf16; the ceiling is
   the best single run (other jobs on this shared machine can only slow runs down). Also one model-shaped linear
   (3968 x 768 -> 3072, the FFN's fc1) for reference.
2. `BeatsModel` (random release-size weights, `bench/_common.py make-checkpoint`) on a normalised filter bank of
   shape (8, 998, 128), i.e. 8 x 10 s clips -> 62 x 8 = 496 patches per clip, for attention eager vs sdpa and
   fp32 vs `torch.autocast("cpu", torch.bfloat16)`. Achieved GFLOP/s = analytic FLOPs / median time, and that as
   a fraction of the measured fp32 GEMM throughput. Max |difference| of every variant vs eager fp32.
3. End to end from waveforms (8, 160000): the official code (`BEATs.extract_features`: per-clip
   torchaudio Kaldi fbank + encoder, microsoft/unilm `beats/`, imported from /tmp/official_beats) vs ours
   (`BeatsFeatureExtractor` + `BeatsModel`, sdpa, fp32) on the same weights and input; ratio = official / ours
   (median of the per-round ratios) and max |difference| of the outputs. The official code needs torchaudio, so
   this part runs in `_common.OFFICIAL_PYTHON` (an interpreter with torchaudio), both implementations in that one
   process. If the current interpreter has no torchaudio the script re-runs itself there with `--part official`.
4. With `--compile`: `torch.compile(model, fullgraph=True)` (inductor, sdpa, fp32) in the same round-robin; the
   compilation and first call are timed apart.

Analytic FLOPs (2 per multiply-add; elementwise ops not counted), B clips, P patches per clip, E = 512 patch
embedding dim, C = 768 hidden, G = 16 pos-conv groups, K = 128 pos-conv kernel, H = 12 heads, Ff = 3072 FFN dim,
N = 12 layers, p = 16 patch size:

    patch conv 2 B P E p^2 + projection 2 B P E C + pos conv 2 B P C (C/G) K
    + N * [ q,k,v,out 8 B P C^2 + scores & weighted sum 4 B P^2 C + FFN 4 B P C Ff + gate linear 16 B P C ]

For B = 8, P = 496: 788.8 GFLOP (FFN 449.4, q/k/v/out 224.7, attention 72.6, pos conv 37.4, rest 4.8).

Writes bench/results/bench_forward.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

BATCH = 8
SECONDS = 10.0


def _ratios(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def run_model_part(args) -> dict:
    from beats_hf import BeatsFeatureExtractor
    from beats_hf.feature_extraction_beats import compute_beats_fbank

    checkpoint = C.load_checkpoint()
    model = C.build_our_model(checkpoint, "sdpa")
    del checkpoint
    waveforms = C.make_waveforms(BATCH, SECONDS)
    fbank = compute_beats_fbank(waveforms)
    num_patches = model.num_patches(fbank.shape[1])
    flops = C.beats_forward_flops(BATCH, num_patches)

    gemm = {
        "fp32": C.gemm_ceiling(torch.float32, tuple(args.gemm_n)),
        "bf16": C.gemm_ceiling(torch.bfloat16, tuple(args.gemm_n)),
        "fc1_shaped_fp32": C.measure_linear(BATCH * num_patches, 768, 3072),
    }

    def forward(impl: str, bf16: bool):
        def fn():
            model.set_attn_implementation(impl)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(fbank).last_hidden_state

        return fn

    extractor = BeatsFeatureExtractor()

    def end_to_end():
        model.set_attn_implementation("sdpa")
        with torch.inference_mode():
            inputs = extractor(waveforms, sampling_rate=C.SAMPLE_RATE, return_tensors="pt")
            return model(**inputs).last_hidden_state

    configs = {
        "eager fp32": forward("eager", False),
        "sdpa fp32": forward("sdpa", False),
        "eager bf16-autocast": forward("eager", True),
        "sdpa bf16-autocast": forward("sdpa", True),
        "e2e: extractor + sdpa fp32": end_to_end,
    }
    compile_seconds = None
    if args.compile:
        compiled = torch.compile(model, fullgraph=True)

        def compiled_forward():
            model.set_attn_implementation("sdpa")
            with torch.inference_mode():
                return compiled(fbank).last_hidden_state

        start = time.perf_counter()
        compiled_forward()
        compile_seconds = time.perf_counter() - start
        configs["sdpa fp32 torch.compile"] = compiled_forward
    outputs = {name: fn().float() for name, fn in configs.items()}  # also serves as one warm-up round
    timings = C.time_interleaved(configs, max(args.warmup - 1, 0), args.repeats)
    reference = outputs["eager fp32"]
    rows = []
    for name, stats in timings.items():
        gflops = flops["total"] / stats["median_s"] / 1e9
        rows.append(
            {
                "config": name,
                "median_s": stats["median_s"],
                "min_s": stats["min_s"],
                "runs_s": stats["runs_s"],
                "gflops": gflops,
                "frac_fp32_gemm": gflops / gemm["fp32"]["gflops"],
                "frac_bf16_gemm": gflops / gemm["bf16"]["gflops"] if "bf16" in name else None,
                "max_abs_diff_vs_eager_fp32": float((outputs[name] - reference).abs().max()),
                "mean_abs_diff_vs_eager_fp32": float((outputs[name] - reference).abs().mean()),
                "other_load_cores": statistics.median(stats["other_load_cores"]),
            }
        )
    return {
        "input_shape": list(fbank.shape),
        "num_patches": num_patches,
        "flops": flops,
        "gemm": gemm,
        "rows": rows,
        "output_abs_max": float(reference.abs().max()),
        "compile_and_first_call_s": compile_seconds,
    }


def run_official_part(args) -> dict:
    from beats_hf import BeatsFeatureExtractor

    checkpoint = C.load_checkpoint()
    official = C.build_official_model(checkpoint)
    ours = C.build_our_model(checkpoint, "sdpa")
    del checkpoint
    extractor = BeatsFeatureExtractor()
    waveforms = C.make_waveforms(BATCH, SECONDS)

    def run_official():
        with torch.inference_mode():
            return official.extract_features(waveforms)[0]

    def run_ours():
        with torch.inference_mode():
            inputs = extractor(waveforms, sampling_rate=C.SAMPLE_RATE, return_tensors="pt")
            return ours(**inputs).last_hidden_state

    ours_out, official_out = run_ours(), run_official()
    timings = C.time_interleaved(
        {"official e2e": run_official, "ours e2e (sdpa fp32)": run_ours}, max(args.warmup - 1, 0), args.repeats
    )
    ratio = _ratios(timings["official e2e"]["runs_s"], timings["ours e2e (sdpa fp32)"]["runs_s"])
    return {
        "timings": timings,
        "speedup_ours_vs_official": ratio,
        "speedup_of_medians": timings["official e2e"]["median_s"] / timings["ours e2e (sdpa fp32)"]["median_s"],
        "max_abs_diff": float((ours_out - official_out).abs().max()),
        "output_abs_max": float(official_out.abs().max()),
        "gemm_fp32": C.gemm_ceiling(torch.float32, tuple(args.gemm_n)),
        "system": C.system_info(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per configuration first")
    parser.add_argument(
        "--gemm-n", type=int, nargs="+", default=[2048, 4096], help="sizes of the square GEMMs giving the ceiling"
    )
    C.add_quiet_flags(parser)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile(model, fullgraph=True) (inductor; its compile time is reported apart)",
    )
    parser.add_argument("--part", choices=["all", "model", "official"], default="all")
    parser.add_argument("--json-out", help="(internal) write this part's result here instead of printing tables")
    args = parser.parse_args()
    C.setup_threads(2)
    C.configure_quiet(args)

    if args.part == "official":
        result = run_official_part(args)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, default=str))
            return
        print(json.dumps(result, indent=2, default=str))
        return

    system = C.system_info()
    model_part = run_model_part(args)
    official_part = None
    if args.part == "all":
        if C.has_torchaudio():
            official_part = run_official_part(args)
        else:
            tmp = C.RESULTS_DIR / ".bench_forward_official.tmp.json"
            C.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            cmd = [C.OFFICIAL_PYTHON, __file__, "--part", "official", "--json-out", str(tmp)]
            cmd += ["--repeats", str(args.repeats), "--warmup", str(args.warmup), "--gemm-n", *map(str, args.gemm_n)]
            cmd += ["--quiet-wait", str(args.quiet_wait), "--quiet-retries", str(args.quiet_retries)]
            subprocess.run(cmd, check=True)
            official_part = json.loads(tmp.read_text())
            tmp.unlink()

    gemm = model_part["gemm"]
    print(
        f"\nGEMM ceiling (best run, square n in {args.gemm_n}): fp32 {gemm['fp32']['gflops']:.1f} GFLOP/s, "
        f"bf16 {gemm['bf16']['gflops']:.1f} GFLOP/s; model-shaped fc1 linear {gemm['fc1_shaped_fp32']['gflops']:.1f} "
        f"GFLOP/s fp32  ({system['torch']}, {system['torch_threads']} threads)"
    )
    print(
        f"BeatsModel forward, input {tuple(model_part['input_shape'])} -> {model_part['num_patches']} patches, "
        f"{model_part['flops']['total'] / 1e9:.1f} GFLOP analytic\n"
    )
    C.print_table(
        model_part["rows"],
        [
            ("config", "config", ""),
            ("median_s", "median s", ".2f"),
            ("min_s", "min s", ".2f"),
            ("gflops", "GFLOP/s", ".1f"),
            ("frac_fp32_gemm", "of fp32 GEMM", ".0%"),
            ("frac_bf16_gemm", "of bf16 GEMM", ".0%"),
            ("max_abs_diff_vs_eager_fp32", "max|diff| vs eager fp32", ".2e"),
            ("mean_abs_diff_vs_eager_fp32", "mean|diff|", ".1e"),
            ("other_load_cores", "other load", ".2f"),
        ],
    )
    if model_part["compile_and_first_call_s"] is not None:
        print(f"torch.compile: compilation and first call {model_part['compile_and_first_call_s']:.1f} s")
    if official_part is not None:
        t = official_part["timings"]
        print(
            f"\nEnd to end, waveforms ({BATCH}, {int(SECONDS * C.SAMPLE_RATE)}) -> last hidden state "
            f"[{official_part['system']['python']}, torch {official_part['system']['torch']}]\n"
        )
        C.print_table(
            [{"impl": k, **v, "other": statistics.median(v["other_load_cores"])} for k, v in t.items()],
            [
                ("impl", "implementation", ""),
                ("median_s", "median s", ".2f"),
                ("min_s", "min s", ".2f"),
                ("other", "other load", ".2f"),
            ],
        )
        print(
            f"\nspeed-up ours vs official: {official_part['speedup_ours_vs_official']:.2f}x (median of per-round "
            f"ratios; goal >= 1.3x), max |ours - official| = {official_part['max_abs_diff']:.2e} "
            f"(outputs up to {official_part['output_abs_max']:.2f})"
        )
    path = C.write_results(
        "bench_forward",
        {"args": vars(args), "system": system, "model": model_part, "official_vs_ours": official_part},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
