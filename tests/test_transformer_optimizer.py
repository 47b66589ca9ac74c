"""The transformer's own optimizer (spacy_infnet.training.transformer_optimizer): warm-up,
constant and linear learning-rate schedules, checked through the updates AdamW really makes."""

import pytest
import torch

from spacy_infnet.training.transformer_optimizer import TransformerOptimizer


def _first_step(optimizer, param, progress=None):
    """One AdamW step from zero weights: it moves each weight by −lr·sign(gradient)."""
    param.grad = torch.tensor([2.0, -3.0])
    assert optimizer.step(progress)
    assert param.grad is None  # cleared: spaCy's optimizer leaves the parameter alone
    return param.detach().clone()


@pytest.mark.parametrize("progress", [0.0, 0.25, 0.75, 1.0, 1.5])
def test_linear_schedule_scales_the_update_by_the_training_left(progress):
    param = torch.nn.Parameter(torch.zeros(2))
    opt = TransformerOptimizer([param], learning_rate=0.1, warmup=1, schedule="linear")
    moved = _first_step(opt, param, progress)
    lr = 0.1 * max(0.0, 1.0 - progress)
    assert torch.allclose(moved, torch.tensor([-lr, lr]), atol=1e-6)


def test_warm_up_then_constant_peak():
    param = torch.nn.Parameter(torch.zeros(2))
    opt = TransformerOptimizer([param], learning_rate=0.1, warmup=4)
    rates = []
    for _ in range(6):
        rates.append(opt.learning_rate(progress=0.9))  # progress is ignored by "constant"
        param.grad = torch.ones(2)
        opt.step()
        assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(rates[-1])
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_warm_up_and_linear_decay_multiply():
    opt = TransformerOptimizer(
        [torch.nn.Parameter(torch.zeros(1))], 0.1, warmup=10, schedule="linear"
    )
    assert opt.learning_rate(0.5) == pytest.approx(0.1 * 0.1 * 0.5)


def test_no_gradient_no_step():
    param = torch.nn.Parameter(torch.zeros(2))
    opt = TransformerOptimizer([param], 0.1, schedule="linear")
    assert not opt.step(0.5)
    assert opt.updates == 0 and torch.equal(param.detach(), torch.zeros(2))


def test_errors_name_the_schedule():
    param = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="'cosine'"):
        TransformerOptimizer([param], 0.1, schedule="cosine")
    opt = TransformerOptimizer([param], 0.1, schedule="linear")
    param.grad = torch.ones(2)
    with pytest.raises(ValueError, match="progress"):
        opt.step()
