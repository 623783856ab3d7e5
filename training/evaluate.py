# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Evaluate a saved BEATs classifier on a labelled dataset: report.json plus a plot.

    python training/evaluate.py --model runs/esc50_fold1/final --data data/esc50/fold1.csv --output-dir eval/esc50_1
    python training/evaluate.py --model runs/as20k/final --data data/audioset/eval.csv --output-dir eval/as20k

The metric follows the model's `problem_type`: mAP with per-class AP for multi-label models (`per_class_ap.png`),
accuracy with a confusion matrix for single-label models (`confusion_matrix.png`). The data is anything
`beats_hf.data.read_audio_records` reads; its label names must be among the model's `label2id`. Clips longer than
`--max-seconds` are evaluated on their first `--max-seconds`: the first one cut is named in a warning, and the report
and the summary line give how many were cut (`num_truncated_clips`); raise `--max-seconds` to use whole clips.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from beats_hf.collators import DataCollatorForAudio, is_empty_batch
from beats_hf.data import AudioClipDataset, read_audio_records
from beats_hf.inference import load_model
from beats_hf.metrics import classification_metrics, plot_confusion_matrix, plot_per_class_ap
from beats_hf.sampling import record_label_sets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder of a saved BeatsForAudioClassification")
    parser.add_argument("--data", required=True, help="folder, .csv/.jsonl manifest, saved dataset or hf:<name>")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", required=True)
    parser.add_argument("--split", default=None, help="split of a dataset with several")
    parser.add_argument("--path-column", "--path_column", dest="path_column", default="path")
    parser.add_argument("--label-column", "--label_column", dest="label_column", default="label")
    parser.add_argument("--audio-column", "--audio_column", dest="audio_column", default="audio")
    parser.add_argument(
        "--max-seconds",
        "--max_seconds",
        dest="max_seconds",
        type=float,
        default=10.0,
        help="longer clips are evaluated on their first max-seconds (counted and reported)",
    )
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=16)
    parser.add_argument("--num-workers", "--num_workers", dest="num_workers", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Evaluate and write `report.json` and the plot into `--output-dir`; returns the report."""
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # load_model refuses what from_pretrained would load with a randomly initialised head (an encoder folder, or a
    # classifier config over encoder weights) and a missing folder (which from_pretrained would look up on the Hub),
    # and computes in float32 whatever dtype the folder stores.
    model, feature_extractor = load_model(args.model, "classify")
    model = model.to(device)
    label2id = {label: int(index) for label, index in model.config.label2id.items()}
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    multi_label = model.config.problem_type == "multi_label_classification"

    records = read_audio_records(
        args.data,
        split=args.split,
        labels_from_folders=True,
        path_column=args.path_column,
        label_column=args.label_column,
        audio_column=args.audio_column,
    )
    label_sets = record_label_sets(records)
    unknown = sorted({label for labels in label_sets for label in labels} - set(label2id))
    if unknown:
        raise ValueError(
            f"{args.data} has {len(unknown)} label(s) the model does not know, e.g. {unknown[:5]}; the model's "
            f"labels are {names[:10]}{'...' if len(names) > 10 else ''}"
        )
    # Checked before any clip is scored: the collator would stop at the first such clip's batch, with advice (set
    # multi_label) that does not apply here, where the model's problem_type decides the task.
    wrong = [index for index, labels in enumerate(label_sets) if len(labels) != 1]
    if not multi_label and wrong:
        examples = ", ".join(f"{records[i].id!r} ({len(label_sets[i])} labels)" for i in wrong[:3])
        raise ValueError(
            f"{len(wrong)} of {len(label_sets)} clips of {args.data} do not have exactly one label (e.g. {examples}), "
            f"but {args.model} is a single-label classifier, which scores one label per clip; label or remove them "
            f"(check --label-column, {args.label_column!r})."
        )
    dataset = AudioClipDataset(records, args.max_seconds, crop="start", label2id=label2id)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        collate_fn=DataCollatorForAudio(feature_extractor, len(label2id), multi_label),
        num_workers=args.num_workers,
    )

    # Counted from the batches, not from dataset.num_truncated: with num_workers > 0 the clips are read (and cut) by
    # the workers' copies of the dataset, whose counters never reach this process.
    all_logits, all_labels, skipped, truncated = [], [], 0, 0
    with torch.no_grad():
        for batch in loader:
            skipped += batch["num_skipped_clips"]
            if is_empty_batch(batch):
                continue
            truncated += batch["num_truncated_clips"]
            logits = model(
                input_values=batch["input_values"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits
            all_logits.append(logits.float().cpu())
            all_labels.append(batch["labels"])
    if not all_logits:
        raise ValueError(f"{args.data}: no clip could be read")
    metrics = classification_metrics(torch.cat(all_logits), torch.cat(all_labels), multi_label)
    if multi_label and metrics["num_classes_evaluated"] == 0:
        # AP needs a positive clip: without any, the mAP would be NaN (and report.json invalid JSON).
        raise ValueError(
            f"{args.data}: none of its clips has a label, so there is no mAP to compute; check that "
            f"--label-column ({args.label_column!r}) holds the labels (several separated by ';')."
        )

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "model": str(args.model),
        "data": str(args.data),
        "num_clips": int(sum(len(labels) for labels in all_labels)),
        "num_skipped_clips": skipped,
        "num_truncated_clips": truncated,
        "max_seconds": args.max_seconds,
        "multi_label": multi_label,
        "labels": names,
    }
    if multi_label:
        report["mAP"] = metrics["mAP"]
        report["num_classes_evaluated"] = metrics["num_classes_evaluated"]
        report["classes_without_positives"] = [names[i] for i in metrics["skipped_classes"]]
        report["per_class_ap"] = dict(zip(names, metrics["per_class_ap"]))
        report["plot"] = str(plot_per_class_ap(metrics["per_class_ap"], names, output_dir / "per_class_ap.png"))
    else:
        report["accuracy"] = metrics["accuracy"]
        report["confusion_matrix"] = metrics["confusion_matrix"]
        report["plot"] = str(
            plot_confusion_matrix(metrics["confusion_matrix"], names, output_dir / "confusion_matrix.png")
        )
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    headline = f"mAP {report['mAP']:.4f}" if multi_label else f"accuracy {report['accuracy']:.4f}"
    cut = f"{truncated} cut to their first {args.max_seconds:g} s"
    if truncated:
        cut += " (raise --max-seconds to evaluate whole clips)"
    print(
        f"{headline} on {report['num_clips']} clips ({skipped} unreadable, {cut}); "
        f"report in {output_dir / 'report.json'}"
    )
    return report


if __name__ == "__main__":
    main()
