"""The learning-rate schedule: one-cycle over the steps, or over the time budget when that ends first."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from ecowatch.classify.task import SpeciesClassificationTask, one_cycle_factor


def test_one_cycle_shape() -> None:
    assert one_cycle_factor(0.0, warmup=0.1) == pytest.approx(0.1)  # starts at peak / 10
    assert one_cycle_factor(0.1, warmup=0.1) == pytest.approx(1.0)  # peak after the warm-up
    assert one_cycle_factor(1.0, warmup=0.1) == pytest.approx(0.001)  # ends at peak / 1000
    values = [one_cycle_factor(p / 100, warmup=0.1) for p in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # decays monotonically


def _task_with_scheduler(total_steps: int, budget_s: float | None, monkeypatch: pytest.MonkeyPatch,
                         clock: list[float]):
    taxonomy = {"class_ids": ["a", "b"], "taxa": [
        {"taxon_id": "a", "scientific_name": "A a", "rank": "species", "parent_id": None, "common_name": ""},
        {"taxon_id": "b", "scientific_name": "B b", "rank": "species", "parent_id": None, "common_name": ""}]}
    task = SpeciesClassificationTask(backbone="mobilenet_v3_small", taxonomy=taxonomy, pretrained=False, lr=1.0)
    trainer = SimpleNamespace(estimated_stepping_batches=total_steps, world_size=1)
    monkeypatch.setattr(SpeciesClassificationTask, "trainer", property(lambda self: trainer))
    monkeypatch.setattr("ecowatch.classify.task.time.monotonic", lambda: clock[0])
    task.time_budget_s = budget_s
    task.on_train_start()
    config = task.configure_optimizers()
    return task, config["optimizer"], config["lr_scheduler"]["scheduler"]


def test_time_budget_anneals_a_run_that_the_clock_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    _, optimizer, scheduler = _task_with_scheduler(1000, 60.0, monkeypatch, clock)
    clock[0] = 59.9  # the time budget is spent after a tenth of the planned steps
    for _ in range(100):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(one_cycle_factor(59.9 / 60, warmup=0.1), rel=1e-6)
    assert optimizer.param_groups[0]["lr"] < 0.01  # annealed, not still near the peak


def test_without_budget_the_schedule_follows_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    _, optimizer, scheduler = _task_with_scheduler(1000, None, monkeypatch, clock)
    clock[0] = 1e6
    for _ in range(100):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(one_cycle_factor(0.1, warmup=0.1)) == pytest.approx(1.0)


def test_progressive_resizing_grows_to_full_size_and_follows_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    clock = [0.0]
    task, _, _ = _task_with_scheduler(1000, 60.0, monkeypatch, clock)
    assert task.train_input_size(0.5) is None  # off by default: batches as loaded
    task.progressive_resize = (64, 96, 0.75)
    sides = [task.train_input_size(p / 100) for p in range(101)]
    assert sides[0] == 64 and sides[75:] == [96] * 26  # full size for the last quarter
    assert all(a <= b for a, b in itertools.pairwise(sides)) and {s % 8 for s in sides} == {0}
    assert sorted(set(sides)) == [64, 72, 80, 88, 96]
    images = torch.rand(2, 3, 96, 96)
    assert task.resize_for_training(images).shape[-1] == 64  # step 0
    clock[0] = 30.0  # half the time budget: 0.5 / 0.75 of the way from 64 to 96 px
    assert task.resize_for_training(images).shape[-2:] == (85 // 8 * 8, 85 // 8 * 8)
    clock[0] = 50.0
    assert task.resize_for_training(images) is images  # full size: untouched


def test_progressive_resizing_must_start_below_the_input_size() -> None:
    from ecowatch.classify.config import ClassifierTrainingConfig

    ClassifierTrainingConfig.model_validate({"data": {"input_size": 96}, "train": {"resize_from": 64}})
    with pytest.raises(ValueError, match="resize_from 96 must be below data.input_size 96"):
        ClassifierTrainingConfig.model_validate({"data": {"input_size": 96}, "train": {"resize_from": 96}})
