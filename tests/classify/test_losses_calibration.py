"""Taxonomy-aware loss, temperature scaling and ECE, unknown-species scores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecowatch.classify.calibration import (
    calibrated,
    expected_calibration_error,
    fit_bias_corrected_temperature,
    fit_temperature,
    nll,
)
from ecowatch.classify.losses import TaxonomicLoss
from ecowatch.classify.openset import auroc, embedding_bank, fit_open_set, raw_open_set_score
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.tables import Taxon


def _taxonomy() -> ClassTaxonomy:
    rows = [("animalia", "kingdom", ""), ("cervidae", "family", "animalia"), ("cervus", "genus", "cervidae"),
            ("dama", "genus", "cervidae"), ("cervus_elaphus", "species", "cervus"), ("dama_dama", "species", "dama"),
            ("mustelidae", "family", "animalia"), ("meles", "genus", "mustelidae"),
            ("meles_meles", "species", "meles")]
    taxa = {tid: Taxon(tid, tid.replace("_", " ").capitalize(), rank, parent, "") for tid, rank, parent in rows}
    return ClassTaxonomy.from_taxa(taxa, ["cervus_elaphus", "dama_dama", "meles_meles"])


def test_group_matrix_and_record_round_trip() -> None:
    taxonomy = _taxonomy()
    groups, matrix = taxonomy.group_matrix("family")
    assert groups == ("cervidae", "mustelidae")
    assert matrix.tolist() == [[1, 0], [1, 0], [0, 1]]
    assert ClassTaxonomy.from_record(taxonomy.to_record()) == taxonomy
    assert "animalia" in taxonomy.taxa and taxonomy.ancestor("dama_dama", "family") == "cervidae"


def test_taxonomic_loss_adds_the_log_probability_of_the_true_family() -> None:
    taxonomy = _taxonomy()
    logits = torch.tensor([[2.0, 1.0, -1.0], [0.5, 0.2, 1.5]])
    target = torch.tensor([0, 2])
    plain = TaxonomicLoss(taxonomy, rank_weights={}, label_smoothing=0.0)(logits, target)
    assert plain == pytest.approx(float(F.cross_entropy(logits, target)))
    loss = TaxonomicLoss(taxonomy, rank_weights={"family": 0.5, "genus": 0.0})(logits, target)
    p = torch.softmax(logits, dim=1)
    family_nll = -(torch.log(p[0, 0] + p[0, 1]) + torch.log(p[1, 2])) / 2
    assert float(loss) == pytest.approx(float(plain + 0.5 * family_nll), rel=1e-5)


def test_mistaking_a_deer_for_a_deer_costs_less_than_for_a_badger() -> None:
    loss = TaxonomicLoss(_taxonomy(), rank_weights={"family": 1.0})
    target = torch.tensor([0])  # red deer
    as_fallow = loss(torch.tensor([[0.0, 3.0, 0.0]]), target)
    as_badger = loss(torch.tensor([[0.0, 0.0, 3.0]]), target)
    assert as_fallow < as_badger


def test_temperature_fit_repairs_an_overconfident_model() -> None:
    gen = torch.Generator().manual_seed(0)
    n, k = 4000, 5
    true_logits = torch.randn(n, k, generator=gen) * 1.5
    labels = torch.multinomial(torch.softmax(true_logits, dim=1), 1, generator=gen).squeeze(1)
    overconfident = true_logits * 4.0  # calibrated logits, sharpened four times
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(4.0, rel=0.1)
    assert nll(overconfident, labels, temperature) < nll(overconfident, labels) - 0.5
    before = expected_calibration_error(torch.softmax(overconfident, dim=1), labels)
    after = expected_calibration_error(torch.softmax(overconfident / temperature, dim=1), labels)
    assert before > 0.2 and after < 0.03


def test_class_biases_repair_a_model_trained_on_balanced_draws() -> None:
    """Scores made for a uniform prior, real sites 70 % class 0: the biases learn the prior (NLL 0.75 -> 0.42)."""
    gen = torch.Generator().manual_seed(3)
    n, k = 6000, 4
    prior = torch.tensor([0.7, 0.2, 0.1, 0.0])  # class 3 never occurs in validation
    labels = torch.multinomial(prior, n, replacement=True, generator=gen)
    x = torch.randn(n, k, generator=gen) + 1.5 * torch.nn.functional.one_hot(labels, k)
    balanced_logits = 2.0 * x  # the log-likelihood ratios are 1.5 x: a uniform prior's posterior, sharpened 4/3
    temperature, bias = fit_bias_corrected_temperature(balanced_logits, labels)
    assert temperature == pytest.approx(4 / 3, rel=0.15) and abs(float(bias.mean())) < 1e-6
    assert float(bias[0] - bias[1]) == pytest.approx(math.log(0.7 / 0.2), abs=0.3)
    assert -6.0 < float(bias[3]) < float(bias[2])  # pulled down, not driven off towards -inf
    t_only = fit_temperature(balanced_logits, labels)
    assert nll(balanced_logits, labels, temperature, bias) < nll(balanced_logits, labels, t_only) - 0.05
    after = expected_calibration_error(torch.softmax(calibrated(balanced_logits, temperature, bias), dim=1), labels)
    assert after < 0.02
    assert fit_bias_corrected_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))[0] == 1.0


def test_ece_of_a_perfectly_calibrated_toy_example() -> None:
    probs = torch.tensor([[0.75, 0.25]] * 4)
    labels = torch.tensor([0, 0, 0, 1])  # 75 % right at 75 % confidence
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)
    assert expected_calibration_error(probs, torch.tensor([1, 1, 1, 1])) == pytest.approx(0.75)


def test_open_set_threshold_keeps_the_asked_share_of_known_crops() -> None:
    gen = torch.Generator().manual_seed(1)
    known = torch.randn(1000, 6, generator=gen)
    known[torch.arange(1000), torch.randint(0, 6, (1000,), generator=gen)] += 6.0  # confident: one high logit
    calibration = fit_open_set(known, method="energy", known_recall=0.9)
    scores = calibration.unknown_score(known)
    assert float((scores < 0.5).double().mean()) == pytest.approx(0.9, abs=0.01)
    at_threshold = calibration.threshold
    assert float(torch.sigmoid(torch.tensor((at_threshold - calibration.threshold) / calibration.scale))) == 0.5
    unknown = torch.randn(500, 6, generator=gen)  # no class stands out
    assert auroc(calibration.raw(known), calibration.raw(unknown)) > 0.95
    assert float((calibration.unknown_score(unknown) >= 0.5).double().mean()) > 0.8
    max_logit = fit_open_set(known, method="max_logit")
    assert torch.equal(max_logit.raw(known), -known.double().max(dim=1).values)
    msp = fit_open_set(known, method="msp")
    assert torch.allclose(msp.raw(known), -torch.softmax(known.double(), dim=1).max(dim=1).values)


def test_knn_score_is_the_distance_to_the_kth_nearest_training_embedding() -> None:
    gen = torch.Generator().manual_seed(2)
    centres = torch.nn.functional.normalize(torch.randn(3, 16, generator=gen), dim=1)
    labels = torch.arange(3).repeat_interleave(50)
    train = centres[labels] + 0.1 * torch.randn(150, 16, generator=gen)
    bank = embedding_bank(train, labels, per_class=20, seed=0)
    assert bank.shape == (60, 16) and torch.allclose(bank.norm(dim=1), torch.ones(60))
    assert torch.equal(bank, embedding_bank(train, labels, per_class=20, seed=0))  # a fixed draw
    assert len(embedding_bank(train, labels, per_class=500)) == 150  # fewer crops than asked: all of them
    logits = torch.zeros(4, 3)  # the knn score ignores the logits
    query = torch.stack([bank[0] * 5.0, bank[1], -bank[0], torch.zeros(16)])
    raw = raw_open_set_score(logits, "knn", embeddings=query, bank=bank, k=1)
    assert raw[:2].tolist() == pytest.approx([-1.0, -1.0])  # on a bank entry (whatever the length)
    assert raw[2] > -0.5 and raw[3] == pytest.approx(0.0)  # far from every entry; no direction at all
    val = centres[torch.arange(3).repeat(40)] + 0.1 * torch.randn(120, 16, generator=gen)
    calibration = fit_open_set(torch.zeros(120, 3), method="knn", known_recall=0.9, known_embeddings=val,
                               bank=bank, k=5)
    assert calibration.needs_embeddings and calibration.k == 5
    assert float((calibration.unknown_score(torch.zeros(120, 3), val) < 0.5).double().mean()) == pytest.approx(
        0.9, abs=0.01)
    novel = torch.randn(100, 16, generator=gen)  # nowhere near a known class
    assert auroc(calibration.raw(torch.zeros(120, 3), val), calibration.raw(torch.zeros(100, 3), novel)) > 0.99
    assert fit_open_set(torch.zeros(5, 3), method="knn", known_embeddings=val[:5], bank=bank[:3], k=10).k == 3
    with pytest.raises(ValueError, match="bank of training embeddings"):
        fit_open_set(torch.zeros(5, 3), method="knn", known_embeddings=val[:5])
    with pytest.raises(ValueError, match="embeddings"):
        raw_open_set_score(logits, "knn", bank=bank, k=1)
    record = calibration.to_record()
    assert record["bank"].dtype == torch.float16 and "bank" not in fit_open_set(val[:, :3]).to_record()
    assert calibration.summary()["bank"] == [60, 16]


def test_auroc_and_raw_scores() -> None:
    assert auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert auroc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert auroc([0.5, 0.5], [0.5]) == 0.5
    assert math.isnan(auroc([], [0.1]))
    logits = torch.tensor([[1.0, 2.0]])
    assert float(raw_open_set_score(logits, "energy")) == pytest.approx(-math.log(math.e + math.e**2))
    with pytest.raises(ValueError, match="not one of"):
        raw_open_set_score(logits, "softmax")  # type: ignore[arg-type]


def test_auto_open_set_method_is_the_best_on_held_out_species() -> None:
    from ecowatch.classify.openset import choose_open_set_method

    gen = torch.Generator().manual_seed(3)
    centres = torch.nn.functional.normalize(torch.randn(3, 16, generator=gen), dim=1)
    labels = torch.arange(3).repeat(60)
    bank = embedding_bank(centres[labels] + 0.1 * torch.randn(180, 16, generator=gen), labels, per_class=40)
    known_emb = centres[labels] + 0.1 * torch.randn(180, 16, generator=gen)
    novel_emb = torch.nn.functional.normalize(torch.randn(60, 16, generator=gen), dim=1)
    confident = torch.zeros(180, 3)
    confident[torch.arange(180), labels] = 4.0
    # the novel crops' logits are as confident as the known ones': only the embeddings tell them apart
    novel_logits = torch.zeros(60, 3)
    novel_logits[torch.arange(60), torch.arange(60) % 3] = 4.0

    method, aurocs = choose_open_set_method(confident, novel_logits, known_embeddings=known_emb,
                                            unknown_embeddings=novel_emb, bank=bank, k=5)
    assert method == "knn" and aurocs["knn"] > 0.99 and aurocs["energy"] == pytest.approx(0.5)

    shy = torch.zeros(60, 3)  # logits without a favourite: energy sees them; no embeddings, so no knn
    method, aurocs = choose_open_set_method(confident, shy)
    assert set(aurocs) == {"energy", "max_logit", "msp"} and aurocs["energy"] == 1.0
    assert method == "energy"  # ties go to the first method of OPEN_SET_METHODS
    with pytest.raises(ValueError, match="held-out species"):
        choose_open_set_method(confident, shy[:0])
