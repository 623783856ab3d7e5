"""Prototype: |X| of the FFT bins from float64 `sqrt(re^2 + im^2)` instead of torch's float32 `hypot`.

Command (from the repository root; ~30 s):

    PYTHONPATH=src .venv/bin/python bench/proto_hypot_float64.py [--blocks 25] [--rows 8000]

The exact filter bank takes |X| from `torch.hypot` (Sleef's `hypotf`, what torch's complex `abs`, and so torchaudio,
computes). Squares of float32 values are exact in float64 and their sum rounds once, so `sqrt` in float64 rounded to
float32 is correctly rounded almost everywhere; Sleef's `hypotf` is within 0.5001 ulp, not always correctly rounded.
This counts the bins where the two differ, on the spectra of random frames over six decades of level, and times both
on one block of frames. Prints the mismatch count and the two times; writes nothing.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=25, help="blocks of random frames compared")
    parser.add_argument("--rows", type=int, default=8000, help="frames (512-point FFTs) per block")
    args = parser.parse_args()
    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(0)

    def float64_magnitude(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        return (real.double().square() + imag.double().square()).sqrt().float()

    mismatches = total = 0
    for block in range(args.blocks):
        frames = torch.randn(args.rows, 512, generator=generator) * 10.0 ** (block % 6)
        parts = torch.view_as_real(torch.fft.rfft(frames))
        real, imag = parts[..., 0].contiguous(), parts[..., 1].contiguous()
        mismatches += int((torch.hypot(real, imag) != float64_magnitude(real, imag)).sum())
        total += real.numel()

    def best_ms(fn, runs: int = 20) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    hypot_ms = best_ms(lambda: torch.hypot(real, imag))
    float64_ms = best_ms(lambda: float64_magnitude(real, imag))
    print(f"bins where float64 sqrt(re^2 + im^2) != torch.hypot: {mismatches} of {total}")
    print(f"one block of {args.rows} frames: torch.hypot {hypot_ms:.2f} ms, float64 path {float64_ms:.2f} ms")


if __name__ == "__main__":
    main()
