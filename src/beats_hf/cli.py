# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""`beats-hf`: the command line for daily use. Each subcommand is a thin layer over a library call or a script.

Examples:
    beats-hf demo                                        # the whole pipeline on built-in synthetic data
    beats-hf classify dog.wav street.flac --model runs/demo/finetune/final --top-k 3
    beats-hf embed *.wav --model converted/beats-iter3 --output-dir embeddings/ --layers all
    beats-hf tokenize clip.wav --model converted/beats-tokenizer-iter3 --format json
    beats-hf convert --checkpoint BEATs_iter3.pt --output-dir converted/beats-iter3
    beats-hf pretrain --config training/configs/pretrain_iter1.yaml

`beats-hf COMMAND --help` describes each command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import runpy
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .console import quiet_transformers

REPO_ROOT = Path(__file__).resolve().parents[2]

# Subcommands that hand every argument after their name to a script, untouched (the script's own --help applies):
# name -> (script, description, example).
SCRIPT_COMMANDS = {
    "convert": (
        "convert/convert_original_beats.py",
        "Convert official BEATs .pt checkpoints (pre-trained, fine-tuned, tokenizer) into Hugging Face folders.",
        "beats-hf convert --checkpoint BEATs_iter3.pt --output-dir converted/beats-iter3",
    ),
    "pretrain": (
        "training/pretrain.py",
        "Masked audio modelling pre-training (one BEATs iteration).",
        "beats-hf pretrain --config training/configs/pretrain_tiny.yaml",
    ),
    "train-tokenizer": (
        "training/train_tokenizer.py",
        "Train a self-distilled acoustic tokenizer from a teacher.",
        "beats-hf train-tokenizer --config training/configs/tokenizer_tiny.yaml --teacher_path runs/iter1/final",
    ),
    "finetune": (
        "training/finetune.py",
        "Fine-tune a BEATs encoder for audio classification.",
        "beats-hf finetune --config training/recipes/synthetic.yaml --model runs/tiny/encoder",
    ),
    "evaluate": (
        "training/evaluate.py",
        "Evaluate a classifier on a dataset; JSON report and plot.",
        "beats-hf evaluate --model runs/demo/finetune/final --data data/synthetic/test.csv --output-dir eval/demo",
    ),
    "iterate": (
        "training/run_iterations.py",
        "Run the whole iterative pre-training chain from one config.",
        "beats-hf iterate --config training/configs/chain_tiny.yaml",
    ),
    "demo": (
        "training/demo.py",
        "Run the whole pipeline on built-in synthetic data (3-6 min on 2 CPU cores).",
        "beats-hf demo",
    ),
}


class UserError(Exception):
    """An error caused by the command's input; printed as one line, without a traceback."""


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps paragraphs, keeps indented lines (examples) as written, shows defaults except None and False."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        paragraph: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.strip() and not line.startswith(" "):
                paragraph.append(line.strip())
                continue
            if paragraph:
                lines.append(
                    textwrap.fill(" ".join(paragraph), width, initial_indent=indent, subsequent_indent=indent)
                )
                paragraph.clear()
            lines.append(indent + line if line.strip() else "")
        return "\n".join(lines).strip("\n")

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        uninformative = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if uninformative or "%(default)" in help_text or not action.option_strings:
            return help_text
        return f"{help_text} (default: %(default)s)".lstrip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    from .inference import MAX_CHUNK_SECONDS

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    if value > MAX_CHUNK_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CHUNK_SECONDS:g} s, got {text}")
    return value


def _add_inference_arguments(parser: argparse.ArgumentParser, model_help: str) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg; mp3 where supported)")
    parser.add_argument("--model", required=True, type=Path, help=model_help)
    parser.add_argument(
        "--chunk-seconds",
        type=_positive_seconds,
        default=10.0,
        help="longer files are encoded in consecutive chunks of this length, rounded to whole 0.16 s patch rows "
        "(at least one, at most 1e6 s); each chunk has its own attention context",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=4, help="chunks per forward pass")
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="go on past files that cannot be decoded or are shorter than one patch: each is named on stderr, "
        "the other files' results are written, and the exit code is 1 (default: stop at the first, exit code 2)",
    )
    # Also accepted after the command (argparse would otherwise refuse `classify ... -v`); default: the global flag.
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log at INFO level")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beats-hf",
        description="BEATs audio models: conversion, inference and training.",
        epilog="examples:" + __doc__.split("Examples:", 1)[1],
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (inference commands)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify",
        help="top-k labels of audio files with a fine-tuned classifier",
        description="Top-k labels of each file with their scores: softmax over the labels for single-label models, "
        "sigmoid of each label for multi-label models (config.problem_type). A long file is scored by the mean of "
        "its per-patch logits over all chunks.",
        epilog="example:\n  beats-hf classify a.wav b.flac --model runs/demo/finetune/final --top-k 3 --format json",
        formatter_class=_HelpFormatter,
    )
    _add_inference_arguments(classify, "a fine-tuned classifier folder (BeatsForAudioClassification)")
    classify.add_argument("--top-k", type=_positive_int, default=5, help="labels per file (at most all labels)")
    classify.add_argument(
        "--format", choices=("table", "json"), default="table", help="a readable table, or JSON on stdout"
    )

    embed = commands.add_parser(
        "embed",
        help="pooled or per-patch embeddings of audio files",
        description="Embeddings of each file, saved in OUTPUT_DIR as <file stem>.safetensors (tensors `pooled` and "
        "`patches`) or <file stem>.pooled.npy and <file stem>.patches.npy. `patches` holds one vector per 16x16 "
        "patch, time-major; `pooled` is their mean. Shapes: (hidden,) and (patches, hidden) with --layers last; "
        "(layers + 1, hidden) and (layers + 1, patches, hidden) with --layers all (embedding output first).",
        epilog="example:\n  beats-hf embed a.wav b.wav --model converted/beats-iter3 --output-dir emb --layers all "
        "--format npy",
        formatter_class=_HelpFormatter,
    )
    _add_inference_arguments(
        embed, "a BEATs folder with an encoder (encoder, classifier, masked-audio-modelling model or tokenizer)"
    )
    embed.add_argument("--output-dir", required=True, type=Path, help="folder for the embedding files")
    embed.add_argument(
        "--layers",
        choices=("last", "all"),
        default="last",
        help="the last layer, or every hidden state (the embedding output and each layer's, as hidden_states; "
        "for a pre-LN model the last of them precedes the final LayerNorm, which --layers last includes)",
    )
    embed.add_argument("--format", choices=("safetensors", "npy"), default="safetensors", help="file format")
    embed.add_argument("--pooled-only", action="store_true", help="do not save the per-patch vectors")

    tokenize = commands.add_parser(
        "tokenize",
        help="discrete acoustic tokens of audio files",
        description="One token per 16x16 patch, as a (time patches, mel patches) grid per file; long files are "
        "tokenized chunk by chunk and the grids concatenated along time. Prints a JSON list (file, shape, "
        "unencoded_seconds: the audio beyond the last whole 0.16 s patch row, which no token covers, and, with "
        "--format json, token_ids); --format npy writes "
        "OUTPUT_DIR/<file stem>.tokens.npy instead of the token ids.",
        epilog="examples:\n  beats-hf tokenize a.wav --model converted/beats-tokenizer-iter3 --format json\n"
        "  beats-hf tokenize *.wav --model runs/iter1/tokenizer --format npy --output-dir tokens",
        formatter_class=_HelpFormatter,
    )
    _add_inference_arguments(tokenize, "a tokenizer folder (BeatsTokenizerModel or BeatsRandomProjectionTokenizer)")
    tokenize.add_argument("--format", choices=("json", "npy"), default="json", help="token ids in the JSON or npy")
    tokenize.add_argument("--output-dir", type=Path, default=None, help="folder for the .npy files (--format npy)")

    # Listed for the overview; main() hands their arguments to the script before argparse sees them.
    for name, (script, description, _example) in SCRIPT_COMMANDS.items():
        sub = commands.add_parser(name, help=description.rstrip("."), description=description, add_help=False)
        sub.add_argument("args", nargs=argparse.REMAINDER, help=f"arguments of {script} (try --help)")
    return parser


def _run_script(command: str, args: Sequence[str]) -> int:
    relative_path, description, example = SCRIPT_COMMANDS[command]
    script = REPO_ROOT / relative_path
    if not script.is_file():
        raise UserError(
            f"{relative_path} is not available: the scripts ship with the repository, so run beats-hf from a clone "
            "installed with `pip install -e .`."
        )
    if "-h" in args or "--help" in args:
        print(
            f"beats-hf {command}: {description}\nRuns {relative_path} with the arguments given; its options "
            f"follow.\n\nexample:\n  {example}\n"
        )
    saved_argv = sys.argv
    sys.argv = [f"beats-hf {command}", *args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return int(exit_.code or 0)
        print(exit_.code, file=sys.stderr)  # sys.exit("message"): print it, as the interpreter would
        return 2
    finally:
        sys.argv = saved_argv
    return 0


def _script_command(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(command, its arguments) when `argv` runs a script command, after the global -v/--verbose."""
    for index, token in enumerate(argv):
        if token in ("-v", "--verbose"):
            continue
        return (token, list(argv[index + 1 :])) if token in SCRIPT_COMMANDS else None
    return None


def _check_files(files: Sequence[Path]) -> None:
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise UserError(f"no such audio file(s): {', '.join(missing)}")
    not_files = [str(f) for f in files if not f.is_file()]
    if not_files:
        raise UserError(f"not a file (give audio files, not folders): {', '.join(not_files)}")


def _check_output_dir(output_dir: Path, files: Sequence[Path]) -> None:
    """Refuse an output folder that is a file, and inputs whose outputs would overwrite each other."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output-dir {output_dir} exists and is not a folder")
    stems: dict[str, Path] = {}
    for path in files:
        first = stems.setdefault(path.stem, path)
        if first.resolve() != path.resolve():
            raise UserError(
                f"{first} and {path} would both be saved as {path.stem}.*; rename one or run them separately"
            )


def _file_results(
    args: argparse.Namespace, model: Any, feature_extractor: Any, task: str
) -> Iterator[tuple[Path, Any]]:
    """`(path, FileResult)` of every input file in order; with --skip-errors a file whose audio cannot be used is
    named on stderr and recorded in `args.skipped_files` instead of ending the command."""
    from .inference import run_file

    args.skipped_files = []
    layers = getattr(args, "layers", "last")  # embed only
    # --pooled-only: the per-patch vectors are not kept, so a long file needs no memory for them.
    keep_patches = not getattr(args, "pooled_only", False)
    for path in args.files:
        try:
            yield (
                path,
                run_file(
                    model, feature_extractor, path, task, args.chunk_seconds, args.batch_size, layers, keep_patches
                ),
            )
        except ValueError as error:  # undecodable (AudioDecodeError) or too short: a problem of this file only
            if not args.skip_errors:
                raise
            print(f"beats-hf {args.command}: skipped {path}: {_one_line(error)}", file=sys.stderr)
            args.skipped_files.append(path)


def _exit_code(args: argparse.Namespace) -> int:
    return 1 if args.skipped_files else 0


def _classify(args: argparse.Namespace) -> int:
    from .inference import label_scores, load_model

    _check_files(args.files)
    model, feature_extractor = load_model(args.model, "classify")
    report = []
    for path, result in _file_results(args, model, feature_extractor, "classify"):
        scores = label_scores(model, result.outputs["logits"])
        top = scores.topk(min(args.top_k, scores.numel()))
        labels = [
            # Full precision: AudioSet's sigmoid scores go far below 1e-6, and rounding would tie and zero them.
            {"label": model.config.id2label[int(i)], "score": float(s)}
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
    return _exit_code(args)


def _embed(args: argparse.Namespace) -> int:
    from .inference import load_model

    _check_files(args.files)
    _check_output_dir(args.output_dir, args.files)
    model, feature_extractor = load_model(args.model, "embed")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for path, result in _file_results(args, model, feature_extractor, "embed"):
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
            print(f"{path} -> " + ", ".join(f"{stem}.{key}.npy" for key in tensors))
    return _exit_code(args)


def _tokenize(args: argparse.Namespace) -> int:
    from .inference import load_model

    _check_files(args.files)
    if args.format == "npy":
        if args.output_dir is None:
            raise UserError("--format npy writes one file per input: give --output-dir")
        _check_output_dir(args.output_dir, args.files)
    elif args.output_dir is not None:
        raise UserError("--output-dir is only used with --format npy (the JSON goes to stdout); add --format npy")
    model, feature_extractor = load_model(args.model, "tokenize")
    report = []
    for path, result in _file_results(args, model, feature_extractor, "tokenize"):
        grid = result.outputs["token_ids"]
        entry = {"file": str(path), "shape": list(grid.shape), "unencoded_seconds": result.unencoded_seconds}
        if args.format == "npy":
            import numpy as np

            args.output_dir.mkdir(parents=True, exist_ok=True)
            target = args.output_dir / f"{path.stem}.tokens.npy"
            np.save(target, grid.numpy())
            entry["tokens_file"] = str(target)
        else:
            entry["token_ids"] = grid.tolist()
        report.append(entry)
    print(json.dumps(report))
    return _exit_code(args)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    script_command = _script_command(argv)
    if script_command is not None:
        # Scripts get their arguments untouched (argparse would claim --help, --config, ... for itself) and set up
        # their own logging.
        command, script_args = script_command
        try:
            return _run_script(command, script_args)
        except UserError as error:
            print(f"beats-hf {command}: error: {error}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    handler = {"classify": _classify, "embed": _embed, "tokenize": _tokenize}[args.command]
    try:
        with contextlib.nullcontext() if args.verbose else quiet_transformers():
            return handler(args)
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): not an input error. Silence the flush at exit as well.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (UserError, OSError, ValueError) as error:
        # Missing or unreadable files, a model folder of the wrong kind, invalid options: one line, no traceback.
        # (AudioDecodeError, ModelKindError and FileNotFoundError are among these.)
        print(f"beats-hf {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"beats-hf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
