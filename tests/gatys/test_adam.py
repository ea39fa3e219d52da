"""The explicit Adam: PyTorch's iterates, its budget and its resumable state."""

import pytest
import torch

from largestyle.gatys.adam import AdamState, minimize_adam
from largestyle.gatys.objective import LossTerms


def quadratic(target):
    def value_and_grad(x):
        difference = x - target
        value = float((difference ** 2).sum() + (x ** 4).sum() * 0.1)
        return LossTerms(value, value, 0.0, 0.0), 2 * difference + 0.4 * x ** 3
    return value_and_grad


def test_steps_are_pytorchs_adam():
    generator = torch.Generator().manual_seed(0)
    start, target = torch.rand(2, 3, 5, generator=generator), torch.rand(2, 3, 5, generator=generator)
    x = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=0.05, foreach=False)
    points = []
    for _ in range(7):
        optimiser.zero_grad()
        x.grad = quadratic(target)(x.detach())[1]
        points.append(x.detach().clone())
        optimiser.step()
    seen = []
    minimize_adam(lambda p: (seen.append(p.clone()), quadratic(target)(p))[1], start, 7, 0.05)
    assert len(seen) == 7
    for ours, theirs in zip(seen, points):
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)


def test_budget_best_point_and_resume_bit_for_bit():
    generator = torch.Generator().manual_seed(1)
    start, target = torch.rand(3, 8, 8, generator=generator), torch.rand(3, 8, 8, generator=generator)
    straight, terms, used = minimize_adam(quadratic(target), start, 12, 0.1)
    assert used == 12 and terms.total <= quadratic(target)(start)[0].total
    saved = {}

    def stop_at_five(snapshot):
        if snapshot().used == 5:
            saved["state"] = AdamState.from_plain(snapshot().to_plain())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        minimize_adam(quadratic(target), start, 12, 0.1, on_iteration=stop_at_five)
    resumed, resumed_terms, resumed_used = minimize_adam(quadratic(target), start, 12, 0.1, state=saved["state"])
    assert torch.equal(resumed, straight) and resumed_terms == terms and resumed_used == 12


def test_tolerance_stops_once_the_best_loss_stalls():
    flat = lambda x: (LossTerms(1.0, 1.0, 0.0, 0.0), torch.ones_like(x))  # noqa: E731 - never improves
    _, _, used = minimize_adam(flat, torch.zeros(3, 4, 4), 100, 0.1, tolerance=0.01, window=10)
    assert used == 11  # the window is full after 11 evaluations, and nothing improved
    _, _, used = minimize_adam(flat, torch.zeros(3, 4, 4), 100, 0.1)
    assert used == 100  # without a tolerance the whole budget is spent
