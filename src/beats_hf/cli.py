# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""`beats-hf`: the command line for daily use. Each subcommand is a thin layer over a library call or a training script.

Examples:
    beats-hf demo                                        # the whole pipeline on built-in synthetic data
    beats-hf classify dog.wav street.flac --model runs/demo/finetune/final --top-k 3
    beats-hf embed *.wav --model converted/beats-iter3 --output-dir embeddings/ --layers all
    beats-hf tokenize clip.wav --model converted/beats-tokenizer-iter3 --format json
    beats-hf convert --checkpoint BEATs_iter3.pt --output-dir converted/beats-iter3
    beats-hf pretrain --config training/configs/pretrain_iter1.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Subcommands that run a training script with the remaining arguments (the script's own --help applies).
SCRIPT_COMMANDS = {
    "pretrain": ("training/pretrain.py", "Masked audio modelling pre-training (one BEATs iteration)."),
    "train-tokenizer": ("training/train_tokenizer.py", "Train a self-distilled acoustic tokenizer from a teacher."),
    "finetune": ("training/finetune.py", "Fine-tune a BEATs encoder for audio classification."),
    "evaluate": ("training/evaluate.py", "Evaluate a classifier on a dataset; JSON report and plot."),
    "iterate": ("training/run_iterations.py", "Run the whole iterative pre-training chain from one config."),
    "demo": ("training/demo.py", "Run the whole pipeline on built-in synthetic data (about 20 min on 2 CPU cores)."),
}


class UserError(Exception):
    """An error caused by the command's input; printed as one line, without a traceback."""


def _add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg; mp3 where supported)")
    parser.add_argument("--model", required=True, type=Path, help="a saved BEATs model folder")
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=10.0,
        help="long files are encoded in consecutive chunks of this length (see beats_hf.inference)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="chunks per forward pass")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beats-hf",
        description="BEATs audio models: conversion, inference and training.",
        epilog=__doc__.split("Examples:", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify",
        help="top-k labels of audio files with a fine-tuned classifier",
        description="Top-k labels with scores (sigmoid for multi-label models, softmax otherwise).",
        epilog="Example: beats-hf classify a.wav b.flac --model runs/demo/finetune/final --top-k 3 --format json",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_inference_arguments(classify)
    classify.add_argument("--top-k", type=int, default=5)
    classify.add_argument("--format", choices=("table", "json"), default="table")

    embed = commands.add_parser(
        "embed",
        help="pooled or per-patch embeddings of audio files",
        description="Embeddings of each file, saved as <output-dir>/<file stem>.<format>: `pooled` (mean over "
        "patches) and `patches` (one vector per 16x16 patch), for the last layer or every layer.",
        epilog="Example: beats-hf embed a.wav --model converted/beats-iter3 --output-dir emb --layers all --format npy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_inference_arguments(embed)
    embed.add_argument("--output-dir", required=True, type=Path)
    embed.add_argument("--layers", choices=("last", "all"), default="last")
    embed.add_argument("--format", choices=("safetensors", "npy"), default="safetensors")
    embed.add_argument("--pooled-only", action="store_true", help="do not save per-patch vectors")

    tokenize = commands.add_parser(
        "tokenize",
        help="discrete acoustic tokens of audio files",
        description="One token per 16x16 patch, as a (time patches, mel patches) grid per file.",
        epilog="Example: beats-hf tokenize a.wav --model converted/beats-tokenizer-iter3 --format json",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_inference_arguments(tokenize)
    tokenize.add_argument("--format", choices=("json", "npy"), default="json")
    tokenize.add_argument("--output-dir", type=Path, default=None, help="required for --format npy")

    convert = commands.add_parser(
        "convert",
        help="convert official BEATs .pt checkpoints into Hugging Face folders",
        description="Runs convert/convert_original_beats.py; all its options apply (see --help there).",
        add_help=False,
    )
    convert.add_argument("args", nargs=argparse.REMAINDER)

    for name, (script, description) in SCRIPT_COMMANDS.items():
        sub = commands.add_parser(name, help=description.rstrip("."), description=description, add_help=False)
        sub.add_argument("args", nargs=argparse.REMAINDER, help=f"arguments of {script} (try --help)")
    return parser


def _run_script(relative_path: str, args: Sequence[str], prog: str) -> int:
    script = REPO_ROOT / relative_path
    if not script.is_file():
        raise UserError(
            f"{relative_path} is not available: the training scripts ship with the repository, so run beats-hf "
            "from a clone installed with `pip install -e .`."
        )
    saved_argv = sys.argv
    sys.argv = [f"beats-hf {prog}", *args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    finally:
        sys.argv = saved_argv
    return 0


def _check_files(files: Sequence[Path]) -> None:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"no such audio file(s): {', '.join(missing)}")


def _classify(args: argparse.Namespace) -> int:
    from .inference import label_scores, load_model, run_file

    _check_files(args.files)
    model, feature_extractor = load_model(args.model, "classify")
    report = []
    for path in args.files:
        result = run_file(model, feature_extractor, path, "classify", args.chunk_seconds, args.batch_size)
        scores = label_scores(model, result.outputs["logits"])
        top = scores.topk(min(args.top_k, scores.numel()))
        labels = [
            {"label": model.config.id2label[int(i)], "score": round(float(s), 6)}
            for s, i in zip(top.values, top.indices)
        ]
        report.append({"file": str(path), "duration": round(result.duration, 3), "labels": labels})
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        for entry in report:
            print(f"{entry['file']} ({entry['duration']:.2f} s)")
            for rank, item in enumerate(entry["labels"], 1):
                print(f"  {rank}. {item['label']:<40} {item['score']:.4f}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from .inference import load_model, run_file

    _check_files(args.files)
    model, feature_extractor = load_model(args.model, "embed")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        result = run_file(model, feature_extractor, path, "embed", args.chunk_seconds, args.batch_size, args.layers)
        tensors = {"pooled": result.outputs["pooled"].contiguous()}
        if not args.pooled_only:
            tensors["patches"] = result.outputs["patches"].contiguous()
        stem = args.output_dir / path.stem
        if args.format == "safetensors":
            from safetensors.torch import save_file

            save_file(tensors, f"{stem}.safetensors", metadata={"source": str(path), "layers": args.layers})
            print(f"{path} -> {stem}.safetensors " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))
        else:
            import numpy as np

            for key, value in tensors.items():
                np.save(f"{stem}.{key}.npy", value.numpy())
            print(f"{path} -> {stem}.{{{','.join(tensors)}}}.npy")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from .inference import load_model, run_file

    _check_files(args.files)
    if args.format == "npy" and args.output_dir is None:
        raise UserError("--format npy writes one file per input: give --output-dir")
    model, feature_extractor = load_model(args.model, "tokenize")
    report = []
    for path in args.files:
        result = run_file(model, feature_extractor, path, "tokenize", args.chunk_seconds, args.batch_size)
        grid = result.outputs["token_ids"]
        if args.format == "npy":
            import numpy as np

            args.output_dir.mkdir(parents=True, exist_ok=True)
            np.save(args.output_dir / f"{path.stem}.tokens.npy", grid.numpy())
        report.append(
            {
                "file": str(path),
                "shape": list(grid.shape),
                "unencoded_seconds": result.unencoded_seconds,
                **({"token_ids": grid.tolist()} if args.format == "json" else {}),
            }
        )
    print(json.dumps(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command == "convert":
            return _run_script("convert/convert_original_beats.py", args.args, "convert")
        if args.command in SCRIPT_COMMANDS:
            return _run_script(SCRIPT_COMMANDS[args.command][0], args.args, args.command)
        handler = {"classify": _classify, "embed": _embed, "tokenize": _tokenize}[args.command]
        return handler(args)
    except UserError as error:
        print(f"beats-hf {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, OSError) as error:
        # Bad paths, unreadable audio, a model folder of the wrong kind, invalid options: one line, no traceback.
        print(f"beats-hf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
