"""Calibration: a temperature and per-class biases fitted on validation logits, and the expected calibration error.

Temperature scaling (Guo et al., 2017) divides the logits by one scalar ``T`` fitted to minimise
the negative log-likelihood of held-out (validation) crops. The classifier trains on class-balanced
draws, so its scores also carry the wrong class prior for real sites; bias-corrected temperature
scaling (BCTS, Alexandari et al., 2020) adds one bias per class, ``softmax(logits / T + b)``, fitted
jointly by the same likelihood with a small L2 pull of ``b`` towards 0 (a class with few or no
validation crops keeps a bias near 0 instead of being driven off). The fit runs L-BFGS on ``log T``
(so ``T`` stays positive) and ``b``.

The expected calibration error (ECE) bins crops by their top-1 probability (15 equal-width bins)
and averages ``|accuracy - confidence|`` over bins weighted by their share of crops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Bins of the expected calibration error.
ECE_BINS = 15
#: Temperatures are kept within these bounds (a degenerate fit cannot produce 0 or infinity).
TEMPERATURE_RANGE = (0.05, 20.0)


#: Weight of the L2 pull of the class biases towards 0 (per unit of mean NLL).
BIAS_L2 = 0.001


def calibrated(logits: torch.Tensor, temperature: float = 1.0, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Calibrated log-odds ``logits / T + b`` (``float64``); their softmax is the calibrated probability."""
    x = logits.double() / temperature
    return x + bias.to(x) if bias is not None and len(bias) else x


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
        bias: torch.Tensor | None = None) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / temperature + bias)``."""
    return float(F.cross_entropy(calibrated(logits, temperature, bias), labels))


def fit_bias_corrected_temperature(logits: torch.Tensor, labels: torch.Tensor, *,
                                   max_iter: int = 200) -> tuple[float, torch.Tensor]:
    """``T`` and per-class biases ``b`` that minimise the validation NLL (+ ``BIAS_L2 * |b|^2``).

    Args:
        logits: (N, classes) raw scores of held-out crops.
        labels: (N,) their class indices.
        max_iter: L-BFGS iterations.

    Returns:
        ``T`` within :data:`TEMPERATURE_RANGE` and ``b`` (classes,) ``float32`` with mean 0;
        ``(1.0, zeros)`` when there are no crops or the fit does not converge to finite values.

    Raises:
        ValueError: shapes that do not match.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    zeros = torch.zeros(logits.shape[1], dtype=torch.float32)
    if not len(labels):
        return 1.0, zeros
    x = logits.detach().double()
    y = labels.detach().long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t, bias], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x / log_t.exp() + bias, y) + BIAS_L2 * (bias**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    value, b = float(log_t.detach().exp()), bias.detach()
    if not math.isfinite(value) or not bool(torch.isfinite(b).all()):
        return 1.0, zeros
    return min(max(value, TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1]), (b - b.mean()).float()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 200) -> float:
    """The temperature that minimises the validation NLL.

    Args:
        logits: (N, classes) raw scores of held-out crops.
        labels: (N,) their class indices.
        max_iter: L-BFGS iterations.

    Returns:
        ``T`` within :data:`TEMPERATURE_RANGE`; 1.0 when there are no crops.

    Raises:
        ValueError: shapes that do not match.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    if not len(labels):
        return 1.0
    x = logits.detach().double()
    y = labels.detach().long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    value = float(log_t.detach().exp())
    if not math.isfinite(value):
        return 1.0
    return min(max(value, TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1])


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, *, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of top-1 predictions.

    Args:
        probs: (N, classes) probabilities.
        labels: (N,) true class indices.
        n_bins: equal-width confidence bins over 0..1.

    Returns:
        ECE in 0..1 (0.0 for no crops).
    """
    if not len(labels):
        return 0.0
    confidence, predicted = probs.double().max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    ece = torch.zeros((), dtype=torch.float64)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.double().mean() * (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
    return float(ece)
