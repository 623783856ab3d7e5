"""Where the memory goes on a long single clip: the live tensors at the forward's peak, ours and official.

Command (from the repository root; ~3 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/profile_memory.py [--seconds 60] [--impls ours-sdpa ours-eager official]
        [--top 12]

Method: one forward (end to end from the waveform, fp32, no grad) under a TorchDispatchMode that tracks every tensor
storage created by an aten op until it is freed (see `_common.LiveTensorPeak`), and keeps the list of live storages
at the moment the total peaks: their size, the op that created them and the shape. Model weights and the input are
created before the mode and are not counted; kernel-internal scratch (SDPA, MKL) is invisible to this method (the
process peak RSS in bench_long_inputs.py covers it). The official code runs in an interpreter with torchaudio (`_common.OFFICIAL_PYTHON`).

Writes bench/results/profile_memory_<seconds>s.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def measure(impl: str, seconds: float) -> dict:
    checkpoint = C.load_checkpoint()
    waveform = C.make_waveforms(1, seconds)
    if impl == "official":
        model = C.build_official_model(checkpoint)

        def forward():
            return model.extract_features(waveform)[0]

    else:
        from beats_hf.feature_extraction_beats import compute_beats_fbank

        model = C.build_our_model(checkpoint, impl.split("-", 1)[1])

        def forward():
            return model(compute_beats_fbank(waveform)).last_hidden_state

    del checkpoint
    with torch.inference_mode():
        forward()
        tracker = C.LiveTensorPeak(snapshot=True)
        with tracker:
            forward()
    return {
        "impl": impl,
        "seconds": seconds,
        "torch": torch.__version__,
        "tensor_peak_mib": tracker.peak / 2**20,
        "at_peak": [
            {"mib": nbytes / 2**20, "op": op, "shape": list(shape), "dtype": dtype}
            for nbytes, op, shape, dtype in tracker.at_peak
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--impls", nargs="+", default=["ours-sdpa", "ours-eager", "official"])
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    C.setup_threads(2)
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args.seconds)))
        return
    results = []
    for impl in args.impls:
        python = C.OFFICIAL_PYTHON if impl == "official" else sys.executable
        proc = subprocess.run(
            [python, __file__, "--child", impl, "--seconds", str(args.seconds)], capture_output=True, text=True
        )
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{impl} failed")
        result = json.loads(line[-1][len("RESULT ") :])
        results.append(result)
        total = sum(t["mib"] for t in result["at_peak"])
        print(
            f"\n=== {impl} (torch {result['torch']}), {args.seconds:g} s clip: tensor peak "
            f"{result['tensor_peak_mib']:.0f} MiB in {len(result['at_peak'])} live storages ===\n"
        )
        rows = [
            {**t, "share": t["mib"] / total, "shape": str(tuple(t["shape"]))} for t in result["at_peak"][: args.top]
        ]
        C.print_table(
            rows,
            [
                ("mib", "MiB", ".1f"),
                ("share", "share", ".0%"),
                ("op", "created by", ""),
                ("shape", "shape", ""),
                ("dtype", "dtype", ""),
            ],
        )
    path = C.write_results(
        f"profile_memory_{args.seconds:g}s", {"args": vars(args), "system": C.system_info(), "results": results}
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
