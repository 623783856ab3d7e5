"""Where the time of our batched Kaldi filter bank goes, stage by stage, for 8 x 10 s clips (7,984 frames).

Command (from the repository root; ~10 s):

    PYTHONPATH=src .venv/bin/python bench/profile_fbank_stages.py [--repeats 30]

Each stage of `beats_hf.feature_extraction_beats._fbank` is timed on its own over the whole batch (best and median
of --repeats runs, 2 threads): DC removal, pre-emphasis + window, the 512-point real FFT, the magnitude (`hypot`, then
squared: the official code squares `|X|`, and that rounding must be kept for identical bits), the mel product (the
dense (frames x 257) @ (257 x 128) GEMM torchaudio runs per clip, here on all 7984 rows at once, and the banded product
the kernel runs where it gives the same bits, see `_dense_equal_band_split`) and log + normalisation; then the fast mode's `re^2 + im^2` and both whole calls.

The sum of the stages that bit-exactness pins (FFT, magnitude, the cheapest mel product with the dense bits) is the
floor of any bit-exact implementation on this machine; compare it with the official per-clip loop's time from
`bench_feature_extraction.py` to see which speed-up is reachable at all. Writes bench/results/profile_fbank_stages.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

WINDOW, HOP, N_FFT = 400, 160, 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    C.setup_threads(2)
    from beats_hf.feature_extraction_beats import (
        _banded_mel_product,
        _cached_constants,
        _dense_equal_band_split,
        _mel_bands,
        compute_beats_fbank,
    )

    audio = C.make_waveforms(args.batch, args.seconds)
    waveforms = audio * 2**15
    mel, povey = _cached_constants(128, 16000.0, waveforms.device, waveforms.dtype)
    frames = waveforms.unfold(-1, WINDOW, HOP)
    num_rows = frames.shape[0] * frames.shape[1]
    # As in the kernel: the DC-free frames one column to the right, column 0 repeating sample 0 (x[-1] := x[0]).
    shifted = torch.empty(num_rows, WINDOW + 1)
    shifted[:, 1:] = (frames - frames.mean(dim=-1, keepdim=True)).reshape(num_rows, WINDOW)
    shifted[:, 0] = shifted[:, 1]
    fft_in = torch.zeros(num_rows, N_FFT)
    body = fft_in[:, :WINDOW]
    unit = torch.ones(())

    def pre_emphasis_and_window():
        torch.addcmul(shifted[:, 1:], shifted[:, :-1], unit, value=-0.97, out=body)
        body.mul_(povey)

    pre_emphasis_and_window()
    spectrum = torch.fft.rfft(fft_in)
    parts = torch.view_as_real(spectrum)

    def magnitude_squared():
        real = parts[..., 0].contiguous()
        return torch.hypot(real, parts[..., 1].contiguous(), out=real).pow_(2)

    def fast_power():
        squares = parts.reshape(num_rows, 2 * (N_FFT // 2 + 1)).square()
        return squares[:, 0::2] + squares[:, 1::2]

    power = magnitude_squared()
    energies = torch.empty(num_rows, 128)
    split_every = _dense_equal_band_split(128, 16000.0, waveforms.device, waveforms.dtype)
    bands = None if split_every is None else _mel_bands(128, 16000.0, waveforms.device, waveforms.dtype, split_every)
    if bands is None:
        print("no banded product gives the dense product's bits here: the exact mode multiplies densely")
    stages = {
        "DC removal": (lambda: frames - frames.mean(dim=-1, keepdim=True), False),
        "pre-emphasis + window": (pre_emphasis_and_window, False),
        "rfft 512": (lambda: torch.fft.rfft(fft_in), True),
        "|X| (hypot) squared": (magnitude_squared, True),
        "mel GEMM, dense": (lambda: torch.matmul(power, mel.t(), out=energies), bands is None),
        "mel product, banded (dense bits)": (lambda: _banded_mel_product(power, bands, energies), True),
        "log + normalise": (lambda: energies.clamp_min(1.1920928955078125e-07).log_().sub_(15.4).div_(13.1), False),
        "fast mode: re^2 + im^2": (fast_power, None),
        "whole compute_beats_fbank": (lambda: compute_beats_fbank(audio), None),
        "whole, exact=False": (lambda: compute_beats_fbank(audio, exact=False), None),
    }
    if bands is None:
        del stages["mel product, banded (dense bits)"]
    rows = []
    for name, (fn, pinned) in stages.items():
        stats = C.time_fn(fn, 3, args.repeats)
        rows.append(
            {"stage": name, "min_ms": stats["min_s"] * 1e3, "median_ms": stats["median_s"] * 1e3, "pinned": pinned}
        )
    floor = sum(row["min_ms"] for row in rows if row["pinned"])
    print(
        f"\nStages of the filter bank for {args.batch} x {args.seconds:.0f} s clips ({num_rows} frames), 2 threads\n"
    )
    C.print_table(
        rows,
        [
            ("stage", "stage", ""),
            ("min_ms", "min ms", ".2f"),
            ("median_ms", "median ms", ".2f"),
            ("pinned", "pinned by bit-exactness", ""),
        ],
    )
    print(f"\nfloor of a bit-exact implementation (sum of the pinned stages' best times): {floor:.2f} ms")
    path = C.write_results(
        "profile_fbank_stages", {"args": vars(args), "system": C.system_info(), "stages": rows, "floor_ms": floor}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
