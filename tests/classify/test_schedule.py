"""The learning-rate schedule: one-cycle over the steps, or over the time budget when that ends first."""

from __future__ import annotations

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
    return config["optimizer"], config["lr_scheduler"]["scheduler"]


def test_time_budget_anneals_a_run_that_the_clock_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    optimizer, scheduler = _task_with_scheduler(1000, 60.0, monkeypatch, clock)
    clock[0] = 59.9  # the time budget is spent after a tenth of the planned steps
    for _ in range(100):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(one_cycle_factor(59.9 / 60, warmup=0.1), rel=1e-6)
    assert optimizer.param_groups[0]["lr"] < 0.01  # annealed, not still near the peak


def test_without_budget_the_schedule_follows_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    optimizer, scheduler = _task_with_scheduler(1000, None, monkeypatch, clock)
    clock[0] = 1e6
    for _ in range(100):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(one_cycle_factor(0.1, warmup=0.1)) == pytest.approx(1.0)
