# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""The iteration chain (training/run_iterations.py) and the demo (training/demo.py), end to end at toy size."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))

import demo  # noqa: E402
import run_iterations  # noqa: E402

from beats_hf import BeatsTokenizerModel  # noqa: E402
from beats_hf.synthetic_sounds import generate_synthetic_dataset  # noqa: E402


@pytest.fixture(autouse=True)
def single_thread_and_fresh_accelerate():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    clips = {"train": 3, "validation": 1, "test": 1}
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"), seed=1, clips_per_class=clips, duration=1.0
    )


def tiny_chain(data_dir: Path, output_dir: Path, **overrides) -> run_iterations.ChainConfig:
    config = yaml.safe_load((REPO / "training" / "configs" / "chain_tiny.yaml").read_text())
    config.update(
        output_dir=str(output_dir),
        train_data=str(data_dir / "train.csv"),
        finetune_train_data=str(data_dir / "train.csv"),
        finetune_validation_data=str(data_dir / "validation.csv"),
        iterations=2,
    )
    for kind in ("pretrain", "tokenizer", "finetune"):
        config[kind].update(max_steps=4, warmup_steps=1, save_steps=2, max_seconds=1.0)
    config["finetune"]["eval_steps"] = 4
    config.update(overrides)
    return run_iterations.ChainConfig(**config)


def test_plan_wires_each_stage_to_the_previous_one(tmp_path):
    config = run_iterations.ChainConfig(
        output_dir=str(tmp_path), train_data="x.csv", iterations=3, iter3_plus=True, finetune_train_data="y.csv"
    )
    stages = {stage.name: stage for stage in run_iterations.plan_stages(config)}
    assert list(stages) == [
        "iter1",
        "tokenizer_iter2",
        "iter2",
        "tokenizer_iter3",
        "iter3",
        "iter2_finetuned",
        "tokenizer_iter3_plus",
        "iter3_plus",
    ]
    assert stages["iter1"].fields["tokenizer"] == "random_projection"
    assert stages["tokenizer_iter2"].fields["teacher_path"] == str(tmp_path / "iter1" / "encoder")
    assert stages["iter3"].fields["tokenizer"] == str(tmp_path / "tokenizer_iter3" / "final")
    assert stages["iter2_finetuned"].fields["model"] == str(tmp_path / "iter2" / "encoder")
    assert stages["tokenizer_iter3_plus"].fields["teacher_path"] == str(tmp_path / "iter2_finetuned" / "final")


def test_bad_chain_configs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="iterations must be 1, 2 or 3"):
        run_iterations.plan_stages(run_iterations.ChainConfig(output_dir=str(tmp_path), iterations=4))
    with pytest.raises(ValueError, match="finetune_train_data"):
        run_iterations.plan_stages(run_iterations.ChainConfig(output_dir=str(tmp_path), iter3_plus=True))
    config = run_iterations.ChainConfig(output_dir=str(tmp_path), train_data="x.csv", pretrain={"no_such": 1})
    with pytest.raises(ValueError, match="no_such"):
        run_iterations.stage_config(config, run_iterations.plan_stages(config)[0])
    # A misspelt or absent stage name used to be ignored: its overrides never applied.
    config = run_iterations.ChainConfig(
        output_dir=str(tmp_path), train_data="x.csv", iterations=2, stage_overrides={"iter_2": {"max_steps": 1}}
    )
    with pytest.raises(ValueError, match=r"stage_overrides names stages \['iter_2'\].*'tokenizer_iter2', 'iter2'"):
        run_iterations.plan_stages(config)
    # Overrides of the fields that connect the stages would silently break the chain.
    for overrides, field in (
        ({"tokenizer": {"teacher_path": "other/encoder"}}, "teacher_path"),
        ({"pretrain": {"tokenizer": "random_projection"}}, "tokenizer"),
        ({"stage_overrides": {"iter2": {"output_dir": "elsewhere"}}}, "output_dir"),
    ):
        config = run_iterations.ChainConfig(output_dir=str(tmp_path), train_data="x.csv", iterations=2, **overrides)
        with pytest.raises(ValueError, match=f"sets \\['{field}'\\], which the chain wires itself"):
            run_iterations.plan_stages(config)


def test_chain_runs_every_iteration_including_iter3_plus_and_skips_finished_stages(synthetic, tmp_path):
    config = tiny_chain(synthetic, tmp_path / "chain", iter3_plus=True)
    first = run_iterations.run_chain(config)
    assert [s["stage"] for s in first] == [
        "iter1",
        "tokenizer_iter2",
        "iter2",
        "iter2_finetuned",
        "tokenizer_iter3_plus",
        "iter3_plus",
    ]
    assert not any(s["skipped"] for s in first)
    root = Path(config.output_dir)
    # The iter3+ tokenizer distilled the fine-tuned classifier's logits, and iter3+ MAM used it.
    info = json.loads((root / "tokenizer_iter3_plus" / "final" / "tokenizer_training.json").read_text())
    assert info["teacher_kind"] == "finetuned" and info["teacher_path"].endswith("iter2_finetuned/final")
    assert BeatsTokenizerModel.from_pretrained(root / "tokenizer_iter3_plus" / "final").config.codebook_size == 16
    used = yaml.safe_load((root / "iter3_plus" / "pretrain_config.yaml").read_text())["tokenizer"]
    assert used.endswith("tokenizer_iter3_plus/final")

    # A second run skips everything; a stage whose marker is gone is run again (continuing from its checkpoint).
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    (root / "iter3_plus" / run_iterations.STAGE_MARKER).unlink()
    second = run_iterations.run_chain(config)
    assert [s["skipped"] for s in second] == [True] * 5 + [False]


def test_a_stage_stopped_early_is_not_marked_done_and_the_next_run_resumes_it(synthetic, tmp_path):
    # stop_after_steps ends iter1 without its encoder: the chain must stop there (no marker) and continue from the
    # checkpoint when run again, instead of skipping iter1 and failing in the next stage for want of its encoder.
    config = tiny_chain(synthetic, tmp_path / "chain", iterations=1, iter3_plus=False)
    config.pretrain["stop_after_steps"] = 2
    first = run_iterations.run_chain(config)
    root = Path(config.output_dir)
    assert [(s["stage"], s.get("stopped")) for s in first] == [("iter1", True)]
    assert not (root / "iter1" / run_iterations.STAGE_MARKER).exists()
    assert not (root / "iter1" / "encoder").exists()

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    del config.pretrain["stop_after_steps"]
    second = run_iterations.run_chain(config)
    assert [(s["stage"], s["skipped"], s.get("stopped")) for s in second] == [("iter1", False, None)]
    assert second[0]["metrics"]["step"] == 4
    assert (root / "iter1" / run_iterations.STAGE_MARKER).is_file()
    assert (root / "iter1" / "encoder" / "model.safetensors").is_file()


def test_demo_quick_preset_prints_the_table_and_writes_plots(tmp_path, capsys):
    results = demo.main(demo.DemoConfig(output_dir=str(tmp_path), preset="quick"))
    out = capsys.readouterr().out
    for expected in ("iter1 MAM", "tokenizer_iter2", "iter2 MAM", "fine-tune iter2", "Linear probe", "pipeline("):
        assert expected in out
    for name in ("results.json", "loss_curves.png", "codebook_usage.png"):
        assert (tmp_path / name).is_file()
    assert set(results["linear_probe"]) == {"random_init", "iter1", "iter2"}
    assert results["pipeline"]["predictions"][0]["label"] in demo.SYNTHETIC_CLASSES


class _ReachedChain(Exception):
    pass


def test_demo_refuses_an_output_dir_holding_a_run_with_other_settings(tmp_path, monkeypatch):
    # Re-running skips finished stages, so a run made with other settings must not be continued: even with its data
    # deleted, its models and numbers would be shown as this run's.
    def reached(config):
        raise _ReachedChain

    monkeypatch.setattr(demo.run_iterations, "run_chain", reached)
    with pytest.raises(_ReachedChain):
        demo.run_demo(demo.DemoConfig(output_dir=str(tmp_path), preset="quick"))
    shutil.rmtree(tmp_path / "data")
    with pytest.raises(ValueError, match=r"preset 'quick' \(now 'full'\).*another --output_dir"):
        demo.run_demo(demo.DemoConfig(output_dir=str(tmp_path), preset="full"))
    with pytest.raises(ValueError, match=r"seed 0 \(now 1\)"):
        demo.run_demo(demo.DemoConfig(output_dir=str(tmp_path), preset="quick", seed=1))
    with pytest.raises(_ReachedChain):  # the same settings continue
        demo.run_demo(demo.DemoConfig(output_dir=str(tmp_path), preset="quick"))
    # A folder with files but no recorded settings (a run from before they were recorded, or no demo run at all).
    (tmp_path / demo.SETTINGS_FILE).unlink()
    with pytest.raises(ValueError, match=r"not empty but holds no demo_settings\.json.*another --output_dir"):
        demo.run_demo(demo.DemoConfig(output_dir=str(tmp_path), preset="quick"))


def test_chain_script_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "training" / "run_iterations.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--iter3_plus" in result.stdout


def test_demo_presets_default_to_their_own_folders():
    assert demo.DemoConfig().output_dir == "runs/demo"
    assert demo.DemoConfig(preset="quick").output_dir == "runs/demo-quick"
    assert demo.DemoConfig(output_dir="elsewhere", preset="quick").output_dir == "elsewhere"
