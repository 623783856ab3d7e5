"""Shared helpers for the `bench/` scripts (timing, GEMM roofline, memory probes, official-code access).

Not a benchmark itself. Two command-line uses:

    # create the shared random release-size checkpoint (official format) used by every benchmark
    PYTHONPATH=src .venv/bin/python bench/_common.py make-checkpoint

    # print this machine's measured fp32 / bf16 GEMM throughput
    PYTHONPATH=src .venv/bin/python bench/_common.py gemm

The official BEATs code (microsoft/unilm `beats/`) is never stored in this repository: the scripts import it from
`$BEATS_OFFICIAL_DIR` (default `/tmp/official_beats`). It needs torchaudio, so it runs in `OFFICIAL_PYTHON` (below):
`$BEATS_OFFICIAL_PYTHON`, else `/work/venv-ta/bin/python` if it exists, else the running interpreter (`.venv` of
`.ci/run` has torchaudio).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
OFFICIAL_DIR = Path(os.environ.get("BEATS_OFFICIAL_DIR", "/tmp/official_beats"))
# The interpreter for the official code (it needs torchaudio): $BEATS_OFFICIAL_PYTHON, else /work/venv-ta if it exists
# (a separate torch 2.9.1 + torchaudio venv), else the running one (CI's venv has torchaudio).
_SEPARATE_OFFICIAL_PYTHON = "/work/venv-ta/bin/python"
OFFICIAL_PYTHON = os.environ.get(
    "BEATS_OFFICIAL_PYTHON", _SEPARATE_OFFICIAL_PYTHON if os.path.exists(_SEPARATE_OFFICIAL_PYTHON) else sys.executable
)
CHECKPOINT_PATH = Path(os.environ.get("BEATS_BENCH_CHECKPOINT", "/tmp/beats_bench/official_release_random_seed0.pt"))
SAMPLE_RATE = 16000

# The released BEATs architecture, as an official `cfg` dict (pre-trained model, no classification head).
RELEASE_CFG = {
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 0.6,
    "layer_norm_first": False,
    "deep_norm": True,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "finetuned_model": False,
}


# ----------------------------------------------------------------------------------------------------------------
# environment


def setup_threads(num_threads: int = 2) -> None:
    torch.set_num_threads(num_threads)


def system_info() -> dict:
    """What produced a result: library versions, CPU, threads, machine load (other jobs share these 2 cores)."""
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers

    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": sys.executable,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": list(os.getloadavg()),
        "source_sha256": _source_hashes(),
    }
    try:
        import torchaudio

        info["torchaudio"] = torchaudio.__version__
    except Exception:
        info["torchaudio"] = None
    return info


def _source_hashes() -> dict[str, str]:
    """Short content hashes of the model sources measured (they change while the project is developed)."""
    import hashlib

    hashes = {}
    for name in ("modeling_beats.py", "feature_extraction_beats.py"):
        path = REPO_DIR / "src" / "beats_hf" / name
        if path.is_file():
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return hashes


def has_torchaudio() -> bool:
    try:
        import torchaudio.compliance.kaldi  # noqa: F401
    except Exception:
        return False
    return True


def write_results(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload.setdefault("system", {})["loadavg_end"] = list(os.getloadavg())
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """`columns`: (key, header, format) triples; missing values print as '-'."""
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        line = []
        for key, _, fmt in columns:
            value = row.get(key)
            line.append("-" if value is None else (format(value, fmt) if fmt else str(value)))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) if k else c.ljust(w) for c, w in zip(r, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


# ----------------------------------------------------------------------------------------------------------------
# timing


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / _CLOCK_TICKS


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


class OtherLoad:
    """Cores kept busy by *other* processes while the block ran (machine busy time minus this process's)."""

    def __enter__(self):
        self._t, self._busy, self._own = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t
        other = (_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        self.cores = max(other, 0.0) / max(wall, 1e-9)


def wait_for_quiet(timeout_s: float, threshold_cores: float = 0.3, probe_s: float = 1.0) -> float:
    """
    This machine is shared: wait (at most `timeout_s`) until other processes use fewer than `threshold_cores`
    cores over a `probe_s` window. Returns the seconds waited. No-op when `timeout_s` <= 0.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        with OtherLoad() as load:
            time.sleep(probe_s)
        if load.cores < threshold_cores:
            break
    return time.perf_counter() - start


# Seconds to wait for a quiet machine before every timed run (set from the scripts' --quiet-wait), and how many
# times a run during which other processes used more than QUIET_THRESHOLD_CORES is repeated (--quiet-retries).
QUIET_WAIT_S = 0.0
QUIET_RETRIES = 0
QUIET_THRESHOLD_CORES = 0.3


def configure_quiet(args) -> None:
    """Apply the common --quiet-wait / --quiet-retries flags."""
    global QUIET_WAIT_S, QUIET_RETRIES
    QUIET_WAIT_S = getattr(args, "quiet_wait", 0.0) or 0.0
    QUIET_RETRIES = getattr(args, "quiet_retries", 0) or 0


def add_quiet_flags(parser) -> None:
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each timed run, wait up to this many seconds for other processes to go idle (shared machine)",
    )
    parser.add_argument(
        "--quiet-retries",
        type=int,
        default=0,
        help=f"repeat a timed run up to this many times while other processes used > {QUIET_THRESHOLD_CORES} cores",
    )


def _timed(fn: Callable[[], object]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds of this process (all threads), cores used by other processes meanwhile."""
    for _attempt in range(QUIET_RETRIES + 1):
        wait_for_quiet(QUIET_WAIT_S, QUIET_THRESHOLD_CORES)
        with OtherLoad() as load:
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - c0
        if load.cores <= QUIET_THRESHOLD_CORES:
            break
    return elapsed, cpu, load.cores


def _summary(times: list[float], cpus: list[float], loads: list[float]) -> dict:
    quiet = [t for t, load in zip(times, loads) if load <= QUIET_THRESHOLD_CORES]
    return {
        "quiet_runs": len(quiet),
        "quiet_median_s": statistics.median(quiet) if quiet else None,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs_s": times,
        "cpu_median_s": statistics.median(cpus),
        "cpu_runs_s": cpus,
        "other_load_cores": loads,
    }


def time_fn(fn: Callable[[], object], warmup: int, repeats: int) -> dict:
    """
    Run `fn` `warmup` times untimed, then `repeats` times timed. Returns wall seconds (median, min, max, all runs),
    this process's CPU seconds per run (`cpu_runs_s`: less sensitive to time-slicing by other jobs, but includes
    OpenMP spin-waiting) and, per run, the cores other processes kept busy meanwhile (`other_load_cores`).
    """
    for _ in range(warmup):
        fn()
    times, cpus, loads = [], [], []
    for _ in range(repeats):
        elapsed, cpu, load = _timed(fn)
        times.append(elapsed)
        cpus.append(cpu)
        loads.append(load)
    return _summary(times, cpus, loads)


def time_interleaved(fns: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, dict]:
    """
    Time several functions round-robin (A B C A B C ...), so that load from other processes on this shared
    machine hits all of them alike. Per-round times are kept (`runs_s`) so callers can form paired ratios.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    cpus: dict[str, list[float]] = {name: [] for name in fns}
    loads: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            elapsed, cpu, load = _timed(fn)
            times[name].append(elapsed)
            cpus[name].append(cpu)
            loads[name].append(load)
    return {name: _summary(times[name], cpus[name], loads[name]) for name in fns}


def measure_gemm(n: int = 2048, dtype: torch.dtype = torch.float32, warmup: int = 2, repeats: int = 10) -> dict:
    """Throughput of one large square `torch.matmul` (2 n^3 FLOP), the machine's practical compute ceiling."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    stats = time_fn(lambda: torch.matmul(a, b, out=out), warmup, repeats)
    flops = 2.0 * n**3
    return {
        "n": n,
        "dtype": str(dtype).replace("torch.", ""),
        "median_s": stats["median_s"],
        "gflops_median": flops / stats["median_s"] / 1e9,
        "gflops_best": flops / stats["min_s"] / 1e9,
    }


def gemm_ceiling(dtype: torch.dtype = torch.float32, sizes: tuple[int, ...] = (2048, 4096)) -> dict:
    """
    The machine's practical GEMM ceiling: the best single-run throughput of large square matmuls (several sizes,
    10 runs each). The best run rather than the median, because short bursts of other jobs on this shared machine
    only ever slow a run down; the ceiling should not be underestimated.
    """
    runs = [measure_gemm(n, dtype) for n in sizes]
    best = max(runs, key=lambda r: r["gflops_best"])
    return {"gflops": best["gflops_best"], "n": best["n"], "dtype": best["dtype"], "runs": runs}


def measure_linear(tokens: int, in_features: int, out_features: int, repeats: int = 10) -> dict:
    """Throughput of one model-shaped `F.linear` (e.g. the FFN's fc1), best run, GFLOP/s."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, in_features, generator=gen)
    w = torch.randn(out_features, in_features, generator=gen)
    b = torch.randn(out_features, generator=gen)
    stats = time_fn(lambda: torch.nn.functional.linear(x, w, b), 2, repeats)
    return {
        "shape": [tokens, in_features, out_features],
        "gflops": 2.0 * tokens * in_features * out_features / stats["min_s"] / 1e9,
    }


# ----------------------------------------------------------------------------------------------------------------
# memory


def rss_kib() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process, KiB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0])
    return values


def reset_peak_rss() -> bool:
    """
    Return freed heap pages to the OS (glibc `malloc_trim`) and reset the kernel's peak-RSS counter (Linux >= 4.0:
    writing 5 to /proc/self/clear_refs resets VmHWM, which `getrusage().ru_maxrss` also reads). After this, VmHWM
    is the peak of whatever runs next. Returns False if the counter could not be reset.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class LiveTensorPeak(torch.utils._python_dispatch.TorchDispatchMode):
    """
    Peak bytes of tensor storages allocated by aten ops while the mode is active (and still alive). This is the
    allocator-independent view of memory: every op output's storage counts from creation until it is freed
    (weakref on the storage). Kernel-internal scratch buffers (e.g. inside the SDPA CPU kernel or MKL) and
    allocator caching/fragmentation are not visible here; the process's peak RSS is the other view.

    With `snapshot=True`, the live storages at the moment of the peak are kept as (bytes, op, shape, dtype) in
    `at_peak`, largest first: where the memory goes.
    """

    # Higher-order ops (e.g. compiled flex_attention) then pass through __torch_dispatch__ and are counted like others.
    supports_higher_order_operators = True

    def __init__(self, snapshot: bool = False):
        super().__init__()
        self.live = 0
        self.peak = 0
        self.snapshot = snapshot
        self.at_peak: list[tuple[int, str, tuple, str]] = []
        self._info: dict[int, tuple[int, str, tuple, str]] = {}

    def _release(self, key: int, nbytes: int) -> None:
        self._info.pop(key, None)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        grew = False
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = id(storage)
                if key in self._info:
                    continue
                nbytes = storage.nbytes()
                op = str(getattr(func, "__name__", func))
                self._info[key] = (nbytes, op, tuple(t.shape), str(t.dtype).replace("torch.", ""))
                self.live += nbytes
                weakref.finalize(storage, self._release, key, nbytes)
                grew = True
        if grew and self.live > self.peak:
            self.peak = self.live
            if self.snapshot:
                self.at_peak = sorted(self._info.values(), key=lambda x: -x[0])
        return out


# ----------------------------------------------------------------------------------------------------------------
# weights, inputs, official code


def make_waveforms(batch: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """Deterministic noisy test audio in [-1, 1): a few tones plus noise (fbank of pure noise is too uniform)."""
    gen = torch.Generator().manual_seed(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = torch.arange(n, dtype=torch.float64) / SAMPLE_RATE
    rows = []
    for b in range(batch):
        freqs = 100.0 + 3000.0 * torch.rand(3, generator=gen, dtype=torch.float64)
        x = sum(torch.sin(2 * torch.pi * f * t + b) for f in freqs) / 6.0
        x = x * (0.5 + 0.5 * torch.sin(2 * torch.pi * 0.5 * t))
        x = x + 0.05 * torch.randn(n, generator=gen, dtype=torch.float64)
        rows.append(x.clamp(-1, 1 - 2**-15))
    return torch.stack(rows).float()


def import_official():
    """The official `BEATs`, `BEATsConfig` from OFFICIAL_DIR (needs torchaudio)."""
    if not (OFFICIAL_DIR / "BEATs.py").is_file():
        raise SystemExit(
            f"Official BEATs code not found in {OFFICIAL_DIR}. Extract microsoft/unilm beats/{{BEATs,backbone,modules}}.py "
            "there (never into this repository), or set BEATS_OFFICIAL_DIR."
        )
    if str(OFFICIAL_DIR) not in sys.path:
        sys.path.insert(0, str(OFFICIAL_DIR))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from BEATs import BEATs, BEATsConfig  # type: ignore[import-not-found]
    return BEATs, BEATsConfig


def build_official_model(checkpoint: dict):
    import warnings

    BEATs, BEATsConfig = import_official()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BEATs(BEATsConfig(checkpoint["cfg"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def make_checkpoint(path: Path = CHECKPOINT_PATH, seed: int = 0) -> Path:
    """
    Random release-size weights in the official format: the official model's own initialisation (seeded), plus a
    perturbation of the parts that initialise to constants (gate constant `grep_a` = 1, zero biases) or to very
    small values (relative-position table), so that every parameter influences the output. Must run with the
    official code (torchaudio interpreter).
    """
    torch.manual_seed(seed)
    BEATs, BEATsConfig = import_official()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BEATs(BEATsConfig(dict(RELEASE_CFG)))
    state = model.state_dict()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        table = state["encoder.layers.0.self_attn.relative_attention_bias.weight"]
        table.copy_(torch.randn(table.shape, generator=gen))  # shared storage: all layers see it
        for name, tensor in state.items():
            if name.endswith("grep_a"):
                tensor.copy_(1.0 + 0.3 * torch.randn(tensor.shape, generator=gen))
            elif name.endswith(".bias") and "relative_attention_bias" not in name:
                tensor.add_(0.02 * torch.randn(tensor.shape, generator=gen))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"cfg": dict(RELEASE_CFG), "model": model.state_dict()}, path)
    return path


def load_checkpoint() -> dict:
    """The shared random checkpoint; created with the official interpreter on first use."""
    if not CHECKPOINT_PATH.is_file():
        if has_torchaudio() and (OFFICIAL_DIR / "BEATs.py").is_file():
            make_checkpoint()
        else:
            subprocess.run([OFFICIAL_PYTHON, str(Path(__file__).resolve()), "make-checkpoint"], check=True)
    return torch.load(CHECKPOINT_PATH, weights_only=True)


def build_our_model(checkpoint: dict, attn_implementation: str = "sdpa"):
    from beats_hf.conversion import model_from_official_checkpoint

    model = model_from_official_checkpoint(checkpoint)
    model.config._attn_implementation = attn_implementation
    try:
        model.set_attn_implementation(attn_implementation)
    except Exception:
        pass
    return model.eval()


def beats_forward_flops(batch: int, num_patches: int, cfg: dict = RELEASE_CFG) -> dict[str, float]:
    """
    Analytic FLOPs (multiply and add counted separately: 2 per MAC) of one BEATs encoder forward. Elementwise ops
    (LayerNorm, GELU, softmax, bias gating, residuals) are excluded. With B clips, P patches, E patch-embedding
    dim, C hidden, G pos-conv groups, K pos-conv kernel, H heads, d = C/H, Ff FFN dim, N layers, p patch size:

        patch conv   2 B P E p^2
        projection   2 B P E C                       (only when E != C)
        pos conv     2 B P C (C/G) K                 (grouped conv, output length P)
        per layer    q,k,v,out: 4 * 2 B P C^2
                     scores q.k^T + weights.v: 2 * 2 B H P^2 d = 4 B P^2 C
                     FFN: 2 * 2 B P C Ff
                     rel-pos gate linear (d -> 8 per head): 2 B H P d 8 = 16 B P C
        total = patch + proj + posconv + N * per layer
    """
    B, P = batch, num_patches
    E, C = cfg["embed_dim"], cfg["encoder_embed_dim"]
    G, K = cfg["conv_pos_groups"], cfg["conv_pos"]
    Ff, N, p = cfg["encoder_ffn_embed_dim"], cfg["encoder_layers"], cfg["input_patch_size"]
    parts = {
        "patch_conv": 2.0 * B * P * E * p * p,
        "projection": 2.0 * B * P * E * C if E != C else 0.0,
        "pos_conv": 2.0 * B * P * C * (C // G) * K,
        "qkvo_proj": N * 4 * 2.0 * B * P * C * C,
        "attention_scores_and_values": N * 4.0 * B * P * P * C,
        "ffn": N * 2 * 2.0 * B * P * C * Ff,
        "relpos_gate": N * 16.0 * B * P * C if cfg.get("gru_rel_pos") else 0.0,
    }
    parts["total"] = sum(parts.values())
    return parts


@contextlib.contextmanager
def patched(owner, name: str, replacement):
    """Temporarily replace attribute `name` of `owner` (a class or an instance); prototypes use this, src is untouched."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield original
    finally:
        setattr(owner, name, original)


def compare_variants(
    variants: dict[str, Callable[[], torch.Tensor]], warmup: int, repeats: int, reference: str | None = None
) -> dict:
    """
    A/B(/C...) comparison for the prototypes: every variant's output vs the reference (the first one unless named),
    then interleaved timing. Returns, per variant, timing stats, the speed-up over the reference (median of
    per-round ratios) and the max |difference| / bit-identity of its output.
    """
    reference = reference or next(iter(variants))
    outputs = {name: fn().detach().float() for name, fn in variants.items()}
    timings = time_interleaved(variants, max(warmup - 1, 0), repeats)
    ref_out, ref_runs = outputs[reference], timings[reference]["runs_s"]
    result = {}
    for name, stats in timings.items():
        result[name] = {
            **stats,
            "speedup_vs_reference": statistics.median(a / b for a, b in zip(ref_runs, stats["runs_s"])),
            "cpu_speedup_vs_reference": statistics.median(
                a / b for a, b in zip(timings[reference]["cpu_runs_s"], stats["cpu_runs_s"])
            ),
            "max_abs_diff": float((outputs[name] - ref_out).abs().max()),
            "bit_identical": bool(torch.equal(outputs[name], ref_out)),
        }
    return {"reference": reference, "variants": result}


def print_comparison(comparison: dict) -> None:
    rows = [
        {"variant": name, **v, "other": statistics.median(v["other_load_cores"])}
        for name, v in comparison["variants"].items()
    ]
    print_table(
        rows,
        [
            ("variant", "variant", ""),
            ("median_s", "median s", ".3f"),
            ("min_s", "min s", ".3f"),
            ("speedup_vs_reference", "speed-up", ".3f"),
            ("cpu_speedup_vs_reference", "CPU-time speed-up", ".3f"),
            ("max_abs_diff", "max|diff|", ".1e"),
            ("bit_identical", "bit-identical", ""),
            ("other", "other load", ".2f"),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["make-checkpoint", "gemm"])
    args = parser.parse_args()
    setup_threads(2)
    if args.command == "make-checkpoint":
        print(make_checkpoint())
    else:
        for dtype in (torch.float32, torch.bfloat16):
            for n in (1024, 2048, 4096):
                print(measure_gemm(n, dtype))


if __name__ == "__main__":
    main()
