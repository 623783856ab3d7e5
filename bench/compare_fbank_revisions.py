"""A/B timing of the filter bank (`compute_beats_fbank`) across git revisions of feature_extraction_beats.py.

Command (from the repository root; ~1 min with the defaults):

    PYTHONPATH=src .venv/bin/python bench/compare_fbank_revisions.py [--revisions 6db66be HEAD worktree]
        [--mode fast|exact] [--batch 8] [--seconds 10] [--repeats 60]

Each revision's `src/beats_hf/feature_extraction_beats.py` is read with `git show REV:PATH` (`worktree` = the file as
it is on disk) and imported as its own module, so all of them run in this process on the same input, timed
round-robin (the machine's speed drifts by up to 30% within minutes, so only interleaved ratios are meaningful).
Reports, per revision, the median time per call, the speed-up over the first revision (median of per-round
ratios) and the max |difference| of its features from the first revision's (0 = bit-identical). This is how the
per-change gains in bench/README.md were measured. Writes bench/results/compare_fbank_revisions.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODULE_PATH = "src/beats_hf/feature_extraction_beats.py"


def load_revision(revision: str, index: int, scratch: Path):
    """The feature-extraction module as of `revision` (`worktree`: the file on disk), imported under its own name."""
    if revision == "worktree":
        path = REPO / MODULE_PATH
    else:
        shown = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{revision}:{MODULE_PATH}"], capture_output=True, text=True
        )
        if shown.returncode != 0:
            raise SystemExit(f"git show {revision}:{MODULE_PATH} failed: {shown.stderr.strip()}")
        path = scratch / f"fbank_revision_{index}.py"
        path.write_text(shown.stdout)
    name = f"_fbank_revision_{index}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is being built
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", nargs="+", default=["HEAD~1", "worktree"])
    parser.add_argument("--mode", choices=["fast", "exact"], default="fast")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    C.setup_threads(2)
    waveforms = C.make_waveforms(args.batch, args.seconds)
    exact = args.mode == "exact"
    with tempfile.TemporaryDirectory() as scratch:
        modules = {revision: load_revision(revision, i, Path(scratch)) for i, revision in enumerate(args.revisions)}
        variants = {
            revision: (lambda module=module: module.compute_beats_fbank(waveforms, exact=exact))
            for revision, module in modules.items()
        }
        comparison = C.compare_variants(variants, warmup=3, repeats=args.repeats)
    print(
        f"\ncompute_beats_fbank(exact={exact}) on {args.batch} x {args.seconds:g} s clips, 2 threads, "
        f"{args.repeats} round-robin rounds; speed-up and diff vs {args.revisions[0]}\n"
    )
    C.print_comparison(comparison)
    path = C.write_results(
        "compare_fbank_revisions", {"args": vars(args), "system": C.system_info(), "comparison": comparison}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
