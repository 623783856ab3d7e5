"""Prototype: two bit-exact savings in the batched Kaldi fbank kernel, vs the current `compute_beats_fbank`.

Command (from the repository root; ~1 min). With torchaudio the official loop is also compared:

    PYTHONPATH=src .venv/bin/python bench/proto_fbank.py [--repeats 30] [--batch 8] [--seconds 10]
    PYTHONPATH=src .venv/bin/python bench/proto_fbank.py

Changes, each keeping every output bit (checked below against the current function and torchaudio):

A. No separate `waveform * 2**15` pass. Multiplying by a power of two is exact in binary floating point and
   commutes with every rounding step that follows (mean, DC removal, pre-emphasis, window: each result is just the
   unscaled result times 2**15, barring overflow/subnormals, far away for audio). So the scale is folded into the
   window (`povey * 2**15`, itself exact) and the (batch, samples) scaled copy disappears (today: one full pass over
   the audio and a fresh 5 MB allocation per call for 8 x 10 s).
B. |X| via `hypot` on the strided real/imaginary views of the spectrum instead of two `.contiguous()` copies of
   them first. Same function, same correctly rounded values; two passes over the (rows, 257) spectrum saved.

Reports time per call (interleaved, median and paired speed-up vs current), bit-identity vs current and vs the
official per-clip torchaudio loop. Writes bench/results/proto_fbank.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

WINDOW, HOP, N_FFT = 400, 160, 512


def make_proto(prescaled_window: bool, strided_hypot: bool):
    from beats_hf.feature_extraction_beats import _FBANK_MEAN, _FBANK_STD, _cached_constants

    def fbank(waveforms: torch.Tensor) -> torch.Tensor:
        """Equal-length clips only (the benchmark case); same blocking as the current CPU kernel (whole clips)."""
        batch, num_samples = waveforms.shape
        frames_per_clip = 1 + (num_samples - WINDOW) // HOP
        mel, povey = _cached_constants(128, 16000.0, waveforms.device, waveforms.dtype)
        if prescaled_window:
            window_weights = povey * 2**15
        else:
            window_weights = povey
            waveforms = waveforms * 2**15
        out = torch.empty(batch, frames_per_clip, 128)
        frames = waveforms.unfold(-1, WINDOW, HOP)
        fft_in = torch.zeros(frames_per_clip, N_FFT)
        for b in range(batch):
            block = frames[b]
            centred = block - block.mean(dim=-1, keepdim=True)
            body = fft_in[:, :WINDOW]
            torch.mul(centred[:, :-1], 0.97, out=body[:, 1:])
            torch.mul(centred[:, :1], 0.97, out=body[:, :1])
            torch.sub(centred, body, out=body)
            body.mul_(window_weights)
            spectrum = torch.fft.rfft(fft_in)
            parts = torch.view_as_real(spectrum)
            if strided_hypot:
                power = torch.hypot(parts[..., 0], parts[..., 1])
            else:
                real = parts[..., 0].contiguous()
                power = torch.hypot(real, parts[..., 1].contiguous(), out=real)
            power.pow_(2)
            energies = out[b]
            torch.matmul(power, mel.t(), out=energies)
            energies.clamp_min_(1.1920928955078125e-07).log_()
            energies.sub_(_FBANK_MEAN).div_(2 * _FBANK_STD)
        return out

    return fbank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    C.add_quiet_flags(parser)
    args = parser.parse_args()
    C.setup_threads(2)
    C.configure_quiet(args)
    from beats_hf.feature_extraction_beats import compute_beats_fbank

    waveforms = C.make_waveforms(args.batch, args.seconds)
    variants = {
        "current compute_beats_fbank": lambda: compute_beats_fbank(waveforms),
        "A: scale folded into window": (lambda f: lambda: f(waveforms))(make_proto(True, False)),
        "B: strided hypot": (lambda f: lambda: f(waveforms))(make_proto(False, True)),
        "A + B": (lambda f: lambda: f(waveforms))(make_proto(True, True)),
    }
    official_identical = {}
    if C.has_torchaudio():
        import torchaudio.compliance.kaldi as ta_kaldi

        def official():
            fbanks = [
                ta_kaldi.fbank(
                    w.unsqueeze(0) * 2**15, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10
                )
                for w in waveforms
            ]
            return (torch.stack(fbanks) - 15.41663) / (2 * 6.55582)

        reference = official()
        official_identical = {name: bool(torch.equal(fn(), reference)) for name, fn in variants.items()}
        variants = {"official torchaudio loop": official, **variants}
    comparison = C.compare_variants(variants, args.warmup, args.repeats, reference="current compute_beats_fbank")
    for name, same in official_identical.items():
        comparison["variants"][name]["bit_identical_to_official"] = same
    print(
        f"\nFilter banks of {args.batch} x {args.seconds:g} s clips (torch {torch.__version__}); reference = current\n"
    )
    C.print_comparison(comparison)
    if official_identical:
        print(
            "\nbit-identical to the official torchaudio loop: "
            + ", ".join(f"{k}: {v}" for k, v in official_identical.items())
        )
    path = C.write_results("proto_fbank", {"args": vars(args), "system": C.system_info(), "comparison": comparison})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
