"""Distillation: a shallower student from the teacher's own layers, trained on KL + task loss, with a loss curve."""

import csv

import pytest

FAST = {"steps": 3, "batch_size": 4, "calibration_samples": 8, "chat_samples": 4}


def test_distill_trains_a_shallower_student_and_saves_its_loss_curve(tiny4_dir, build):
    from tasks.models import load_model

    out, meta = build(tiny4_dir, [{"method": "distill", "layer_ratio": 0.5, **FAST}])
    step = meta["chain"][0]
    assert step["num_hidden_layers"] == "4->2" and step["teacher"] == "input" and step["train_steps"] == 3
    model, _ = load_model(out)
    assert model.config.num_hidden_layers == 2
    assert meta["param_count"] == model.num_parameters() < load_model(tiny4_dir)[0].num_parameters()
    rows = list(csv.DictReader(open(out / "distill" / "loss_curve.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and {"loss", "kl", "task", "lr"} <= rows[0].keys()
    assert (out / "distill" / "loss_curve.png").stat().st_size > 1000


def test_distill_changes_the_student_but_not_its_embedding(tiny_dir, build):
    import torch

    from tasks.models import load_model

    out, _ = build(tiny_dir, [{"method": "distill", "layer_ratio": 0, "lr": 1e-3, **FAST}])
    base, student = load_model(tiny_dir)[0], load_model(out)[0]
    assert torch.equal(student.model.embed_tokens.weight, base.model.embed_tokens.weight)  # frozen
    assert not torch.equal(student.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)


def test_distill_after_prune_heals_against_the_unpruned_teacher(tiny_dir, build):
    out, meta = build(tiny_dir, [{"method": "prune", "ratio": 0.5}, {"method": "distill", "layer_ratio": 0, **FAST}])
    assert meta["chain"][1]["teacher"] == "unpruned"
    assert (out / "distill" / "loss_curve.csv").is_file() and (out / "prune" / "source.json").is_file()


@pytest.mark.slow
def test_distill_on_smollm2_runs_end_to_end(smol_dir, build):
    from tasks.models import load_model

    out, meta = build(smol_dir, [{"method": "distill", "layer_ratio": 0.2, "steps": 2, "batch_size": 2,
                                  "calibration_samples": 16, "chat_samples": 4}])
    assert meta["chain"][0]["num_hidden_layers"] == "30->24"
    assert load_model(out)[0].config.num_hidden_layers == 24
    assert (out / "distill" / "loss_curve.png").is_file()
