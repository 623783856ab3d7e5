"""Feature extraction for 8 x 10 s clips: our batched Kaldi fbank vs the official per-clip torchaudio loop.

Command (from the repository root; ~1 min with the defaults). It needs torchaudio (the `.venv` of `.ci/run` has it):

    PYTHONPATH=src .venv/bin/python bench/bench_feature_extraction.py [--repeats 20] [--warmup 3]
        [--batch 8] [--seconds 10] [--ours-python /work/main/.venv/bin/python]

Timed (torch.set_num_threads(2), warm-up runs, then the median of --repeats runs, implementations round-robin):

- official: `BEATs.preprocess` of microsoft/unilm `beats/` (imported from /tmp/official_beats; when that code is
  absent, the same loop written out): for each clip `torchaudio.compliance.kaldi.fbank(clip * 2**15,
  num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10)`, stack, `(x - 15.41663) / (2 * 6.55582)`.
- ours, function: `beats_hf.feature_extraction_beats.compute_beats_fbank(waveforms)` on the (8, 160000) tensor.
- ours, extractor: `BeatsFeatureExtractor()(waveforms, sampling_rate=16000, return_tensors="pt")`, the full
  Hugging Face call (input checks, padding, attention mask).
- the same two with the fast filter bank (`exact=False` / `exact_fbank=False`: power as re^2 + im^2 instead of |X|
  rounded and squared, one multiply-add normalisation; within ~3e-7 of the official features instead of
  bit-identical).

Speed-up = official / ours (median of per-round ratios); goal >= 3x. Max |ours - official| over all features
(0 means bit-identical). With --ours-python, ours is also timed under that interpreter (the project's torch), in a
subprocess, for reference; the speed-up is only computed within one interpreter.

Writes bench/results/bench_feature_extraction.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def official_preprocess():
    """The official preprocessing function, or the documented loop if the official code is not available."""
    try:
        BEATs, _ = C.import_official()

        def run(waveforms):
            return BEATs.preprocess(None, waveforms)  # `self` is unused by preprocess

        return run, "BEATs.preprocess (official code)"
    except SystemExit:
        import torchaudio.compliance.kaldi as ta_kaldi

        def run(waveforms):
            fbanks = [
                ta_kaldi.fbank(
                    w.unsqueeze(0) * 2**15, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10
                )
                for w in waveforms
            ]
            return (torch.stack(fbanks) - 15.41663) / (2 * 6.55582)

        return run, "per-clip torchaudio kaldi.fbank loop"


def our_functions():
    from beats_hf import BeatsFeatureExtractor
    from beats_hf.feature_extraction_beats import compute_beats_fbank

    extractor = BeatsFeatureExtractor()
    fast_extractor = BeatsFeatureExtractor(exact_fbank=False)
    return {
        "ours: compute_beats_fbank": compute_beats_fbank,
        "ours: BeatsFeatureExtractor()": lambda w: extractor(w, sampling_rate=C.SAMPLE_RATE, return_tensors="pt")[
            "input_values"
        ],
        "ours: compute_beats_fbank(exact=False)": lambda w: compute_beats_fbank(w, exact=False),
        "ours: BeatsFeatureExtractor(exact_fbank=False)": lambda w: fast_extractor(
            w, sampling_rate=C.SAMPLE_RATE, return_tensors="pt"
        )["input_values"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ours-python", default="/work/main/.venv/bin/python", help="'' to skip")
    C.add_quiet_flags(parser)
    parser.add_argument("--ours-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    C.setup_threads(2)
    C.configure_quiet(args)
    waveforms = C.make_waveforms(args.batch, args.seconds)

    if args.ours_only:
        timings = C.time_interleaved(
            {name: (lambda f=f: f(waveforms)) for name, f in our_functions().items()}, args.warmup, args.repeats
        )
        print("RESULT " + json.dumps({"timings": timings, "system": C.system_info()}))
        return

    if not C.has_torchaudio():
        raise SystemExit("needs torchaudio: run with an interpreter that has it, e.g. the .venv of .ci/run")
    system = C.system_info()
    official, official_name = official_preprocess()
    fns = {"official: " + official_name: official, **our_functions()}
    outputs = {name: f(waveforms) for name, f in fns.items()}
    timings = C.time_interleaved(
        {name: (lambda f=f: f(waveforms)) for name, f in fns.items()}, args.warmup, args.repeats
    )
    official_key = next(iter(fns))
    reference = outputs[official_key]
    rows = []
    for name, stats in timings.items():
        rows.append(
            {
                "impl": name,
                "torch": torch.__version__,
                "median_ms": 1e3 * stats["median_s"],
                "min_ms": 1e3 * stats["min_s"],
                "speedup": statistics.median(a / b for a, b in zip(timings[official_key]["runs_s"], stats["runs_s"])),
                "max_abs_diff": float((outputs[name] - reference).abs().max()),
                "bit_identical": bool(torch.equal(outputs[name], reference)),
                "other_load": statistics.median(stats["other_load_cores"]),
                "runs_s": stats["runs_s"],
            }
        )
    if args.ours_python:
        cmd = [args.ours_python, __file__, "--ours-only", "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
        cmd += ["--batch", str(args.batch), "--seconds", str(args.seconds), "--quiet-wait", str(args.quiet_wait)]
        cmd += ["--quiet-retries", str(args.quiet_retries)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode == 0 and line:
            other = json.loads(line[-1][len("RESULT ") :])
            for name, stats in other["timings"].items():
                rows.append(
                    {
                        "impl": name + " (other interpreter)",
                        "torch": other["system"]["torch"],
                        "median_ms": 1e3 * stats["median_s"],
                        "min_ms": 1e3 * stats["min_s"],
                        "other_load": statistics.median(stats["other_load_cores"]),
                        "runs_s": stats["runs_s"],
                    }
                )
        else:
            print(f"(skipped --ours-python: {proc.stderr.strip().splitlines()[-1:]})")

    print(f"\nFeature extraction, {args.batch} x {args.seconds:g} s clips -> {tuple(reference.shape)}, 2 threads\n")
    C.print_table(
        rows,
        [
            ("impl", "implementation", ""),
            ("torch", "torch", ""),
            ("median_ms", "median ms", ".1f"),
            ("min_ms", "min ms", ".1f"),
            ("speedup", "speed-up", ".2f"),
            ("max_abs_diff", "max|diff|", ".1e"),
            ("bit_identical", "identical", ""),
            ("other_load", "other load", ".2f"),
        ],
    )
    for exact in (True, False):
        candidates = [r for r in rows if r.get("speedup") and r["impl"].startswith("ours")]
        candidates = [r for r in candidates if ("exact" not in r["impl"]) == exact]
        best = max(candidates, key=lambda r: r["speedup"])
        print(
            f"best speed-up of ours ({'bit-exact' if exact else 'exact=False'}) over the official loop: "
            f"{best['speedup']:.2f}x, max abs diff {best['max_abs_diff']:.1e} (goal >= 3x, <= 1e-5)"
        )
    path = C.write_results("bench_feature_extraction", {"args": vars(args), "system": system, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
