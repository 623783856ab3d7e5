"""Which grouping of the mel filters makes the filter bank's band products cheapest on this machine.

Command (from the repository root; ~30 s):

    PYTHONPATH=src .venv/bin/python bench/profile_mel_bands.py [--unit 16] [--rows 4096] [--repeats 150]

Both modes multiply the power spectra by the mel matrix group by group: each group of consecutive filters takes the
FFT bins where any of them is nonzero (the exact mode also cuts a group where BLAS cuts the dense sum, at bin 128 here;
this times the groups uncut). This times the product of every contiguous
range of `--unit`-filter units on its own ((rows x bins) @ (bins x filters), 2 threads, 25th percentile of
--repeats), finds the partition with the smallest total by dynamic programming, and compares it with the groups
`beats_hf.feature_extraction_beats._mel_bands` uses. Each product has a fixed cost besides its arithmetic, and BLAS
is fastest with multiples of 16 filters, which is why neither one group per filter nor equal FLOP shares win.
The DP's choice moves from run to run with the machine's noise; compare the totals, not the partitions.
Writes bench/results/profile_mel_bands.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def product_time(power: torch.Tensor, mel: torch.Tensor, first: int, end: int, repeats: int) -> tuple[float, tuple]:
    """25th-percentile seconds of one band product for filters first..end, and its bin span."""
    bins = (mel[first:end] != 0).any(dim=0).nonzero().flatten()
    low, high = int(bins.min()), int(bins.max()) + 1
    weights = mel[first:end, low:high].t().contiguous()
    out = torch.empty(power.shape[0], end - first)
    for _ in range(20):
        torch.matmul(power[:, low:high], weights, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(power[:, low:high], weights, out=out)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 4], (low, high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unit", type=int, default=16, help="filters per unit of the partitions searched")
    parser.add_argument("--rows", type=int, default=4096, help="frames per product (the fast mode's chunk: 4096)")
    parser.add_argument("--repeats", type=int, default=150)
    args = parser.parse_args()
    C.setup_threads(2)
    from beats_hf.feature_extraction_beats import _cached_constants, _mel_bands

    cpu = torch.device("cpu")
    mel, _ = _cached_constants(128, 16000.0, cpu, torch.float32)
    power = torch.rand(args.rows, mel.shape[1]) * 1e6
    units = mel.shape[0] // args.unit
    cost = {}
    for i in range(units):
        for j in range(i + 1, units + 1):
            cost[(i, j)], _ = product_time(power, mel, i * args.unit, j * args.unit, args.repeats)
    best, split = [0.0] + [float("inf")] * units, [0] * (units + 1)
    for j in range(1, units + 1):
        best[j], split[j] = min((best[i] + cost[(i, j)], i) for i in range(j))
    partition, j = [], units
    while j:
        partition.append((split[j] * args.unit, j * args.unit))
        j = split[j]
    partition.reverse()
    used = [(band.first, band.end) for band in _mel_bands(128, 16000.0, cpu, torch.float32)]
    used_s = sum(product_time(power, mel, first, end, args.repeats)[0] for first, end in used)
    equal_s = sum(cost[(i, i + 1)] for i in range(units))
    print(f"\nBand products for {args.rows} frames, 128 filters, units of {args.unit} filters, 2 threads\n")
    print(f"best partition found: {partition}  {best[units] * 1e6:.1f} us")
    print(f"groups of _mel_bands:  {used}  {used_s * 1e6:.1f} us")
    print(f"equal groups of {args.unit}:    {equal_s * 1e6:.1f} us")
    path = C.write_results(
        "profile_mel_bands",
        {
            "args": vars(args),
            "system": C.system_info(),
            "best_partition": partition,
            "best_us": best[units] * 1e6,
            "used_groups": used,
            "used_us": used_s * 1e6,
            "equal_us": equal_s * 1e6,
            "range_costs_us": {f"{i}-{j}": t * 1e6 for (i, j), t in cost.items()},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
