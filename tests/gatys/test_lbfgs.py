import math

import pytest
import torch
import torch.nn.functional as F

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.network.vgg import VGG19Features
from largestyle.gatys.objective import LossTerms, Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.gatys.lbfgs import minimize
from largestyle.network.weights import randomise


class Quadratic:
    """sum(a * (x - c)²) with an ill-conditioned diagonal; records every evaluation."""

    def __init__(self, shape=(1, 3, 4, 5), seed=0):
        g = torch.Generator().manual_seed(seed)
        n = math.prod(shape)
        self.a = torch.logspace(0, 2, n).view(shape)
        self.c = torch.rand(shape, generator=g)
        self.calls = []

    def value(self, x):
        return float((self.a * (x - self.c) ** 2).sum())

    def __call__(self, x):
        total = self.value(x)
        self.calls.append((total, x.detach().clone()))
        return LossTerms(total, total, 0.0, 0.0), 2 * self.a * (x - self.c)


def start(shape=(1, 3, 4, 5)):
    return torch.zeros(shape)


@pytest.mark.parametrize("budget", [1, 2, 3, 7, 20])
def test_never_exceeds_budget(budget):
    f = Quadratic()
    x, terms, used = minimize(f, start(), budget)
    assert 1 <= len(f.calls) <= budget
    # This quadratic does not converge that fast, so L-BFGS is stopped exactly at the budget.
    assert len(f.calls) == budget
    assert used == len(f.calls)


def test_lowers_loss_of_quadratic():
    f = Quadratic()
    x0 = start()
    initial = f.value(x0)
    x, terms, used = minimize(f, x0, 20)
    assert terms.total < 0.1 * initial
    assert f.value(x) == pytest.approx(terms.total, rel=1e-6)
    assert torch.equal(x0, torch.zeros_like(x0))
    assert not x.requires_grad


def test_returns_best_evaluated_point():
    f = Quadratic(seed=1)
    x, terms, used = minimize(f, start(), 12)
    best_total, best_x = min(f.calls, key=lambda call: call[0])
    assert terms.total == best_total
    assert torch.equal(x, best_x)


def test_returns_best_point_not_last_evaluated():
    f = Quadratic(seed=2)
    budget = 8

    def spiky(x):
        terms, grad = f(x)
        if len(f.calls) == budget:  # the last evaluation reports a much worse loss
            total = terms.total + 1e3
            f.calls[-1] = (total, f.calls[-1][1])
            terms = LossTerms(total, total, 0.0, 0.0)
        return terms, grad

    x, terms, used = minimize(spiky, start(), budget)
    assert used == budget
    best_total, best_x = min(f.calls, key=lambda call: call[0])
    assert terms.total == best_total < f.calls[-1][0]
    assert torch.equal(x, best_x)
    assert not torch.equal(x, f.calls[-1][1])


def test_single_evaluation_returns_start():
    f = Quadratic()
    x0 = start() + 0.25
    x, terms, used = minimize(f, x0, 1)
    assert used == 1
    assert torch.equal(x, x0)
    assert terms.total == f.value(x0)


def test_on_evaluation_sees_every_evaluation_in_order():
    f = Quadratic()
    seen = []
    _, _, used = minimize(f, start(), 9, on_evaluation=lambda count, terms: seen.append((count, terms.total)))
    assert [count for count, _ in seen] == list(range(1, used + 1))
    assert [total for _, total in seen] == [total for total, _ in f.calls]


def test_non_finite_loss_raises():
    def value_and_grad(x):
        return LossTerms(float("nan"), float("nan"), 0.0, 0.0), torch.zeros_like(x)

    with pytest.raises(FloatingPointError):
        minimize(value_and_grad, start(), 5)


def test_stops_early_at_exact_minimum():
    f = Quadratic()
    x, terms, used = minimize(f, f.c.clone(), 10)
    # A zero gradient at the start ends the search after one evaluation.
    assert used == 1 and terms.total == 0.0
    assert torch.equal(x, f.c)


def test_objective_loss_drops_on_small_image():
    torch.manual_seed(0)
    network = VGG19Features("relu2_1")
    randomise(network)
    config = make_config(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
    g = torch.Generator().manual_seed(0)
    smooth = lambda: F.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(32, 32), mode="bicubic",
                                   align_corners=False).clamp(0, 1)
    content, style = smooth(), smooth()
    objective = Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers),
                          style_targets(network, style, config.style_layers))
    x0 = content.clone()
    initial, _ = objective.value_and_grad(x0)
    counted = []
    x, terms, used = minimize(objective.value_and_grad, x0, 15,
                              on_evaluation=lambda count, t: counted.append(count))
    assert used <= 15 and counted[-1] == used
    assert terms.total < 0.5 * initial.total
    assert objective.value_and_grad(x)[0].total == pytest.approx(terms.total, rel=1e-4)
    assert x.shape == x0.shape


class Rosenbrockish:
    """A non-quadratic float64 objective (coupled quartic), so curvature pairs vary."""

    def __init__(self, shape=(1, 3, 4, 5)):
        self.shape = shape
        self.points = []

    def __call__(self, x):
        x = x.detach().clone().requires_grad_(True)
        flat = x.view(-1)
        value = ((1 - flat[:-1]) ** 2 + 10 * (flat[1:] - flat[:-1] ** 2) ** 2).sum()
        (grad,) = torch.autograd.grad(value, x)
        self.points.append(x.detach().clone())
        return LossTerms(float(value.detach()), float(value.detach()), 0.0, 0.0), grad


def test_iterates_equal_pytorchs_lbfgs():
    ours, theirs = Rosenbrockish(), Rosenbrockish()
    x0 = torch.full((1, 3, 4, 5), -0.5, dtype=torch.float64)
    minimize(ours, x0, 40, history_size=5)
    x = x0.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=40, max_eval=40, history_size=5,
                                  tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")

    def closure():
        terms, grad = theirs(x.detach())
        x.grad = grad
        return terms.total

    optimizer.step(closure)
    assert len(ours.points) == 40 and len(theirs.points) >= 40
    for mine, reference in zip(ours.points, theirs.points):
        assert torch.equal(mine, reference)


@pytest.mark.parametrize("stop_at", [1, 2, 5, 9])
def test_resuming_a_saved_state_continues_bit_for_bit(stop_at, tmp_path):
    x0 = torch.full((1, 3, 4, 5), -0.5, dtype=torch.float64)
    straight = minimize(Rosenbrockish(), x0, 30, history_size=4)

    class Stop(Exception):
        pass

    def stop(snapshot):
        if snapshot().iteration == stop_at:
            torch.save(snapshot(), tmp_path / "state.pt")  # a checkpoint on disk, as a job keeps it
            raise Stop

    with pytest.raises(Stop):
        minimize(Rosenbrockish(), x0, 30, history_size=4, on_iteration=stop)
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    assert state.iteration == stop_at and 0 < state.used < 30
    resumed = minimize(Rosenbrockish(), x0, 30, history_size=4, state=state)
    assert torch.equal(resumed[0], straight[0])
    assert resumed[1] == straight[1] and resumed[2] == straight[2] == 30
