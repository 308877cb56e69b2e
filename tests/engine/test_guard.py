import pytest
import torch

from bdbnet.engine.guard import NonFiniteError, check_finite, non_finite_tensors
from bdbnet.errors import TrainingError
from bdbnet.losses import LossBreakdown


def breakdown(**terms: float) -> LossBreakdown:
    values = {k.replace("_", "/"): torch.tensor(v) for k, v in terms.items()}
    total = torch.stack(list(values.values())).sum()
    return LossBreakdown(total, {**values, "total": total})


def param_with_grad(value: float) -> torch.nn.Parameter:
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.full((3,), value)
    return p


def test_finite_loss_and_gradients_pass():
    check_finite(breakdown(global_triplet=0.5, drop_softmax=1.0), [param_with_grad(0.1)])


def test_a_non_finite_term_is_named():
    loss = breakdown(global_triplet=float("nan"), drop_softmax=1.0)
    with pytest.raises(NonFiniteError, match=r"non-finite loss: global/triplet = nan, total = nan"):
        check_finite(loss, [param_with_grad(0.1)])
    assert issubclass(NonFiniteError, TrainingError)


def test_a_non_finite_gradient_with_a_finite_loss():
    with pytest.raises(NonFiniteError, match="non-finite gradient .* with a finite loss"):
        check_finite(breakdown(global_triplet=0.5), [param_with_grad(float("inf"))])
    # fp16 runs leave gradient overflow to the GradScaler
    check_finite(breakdown(global_triplet=0.5), [param_with_grad(float("inf"))], gradients=False)


def test_non_finite_tensors_lists_float_tensors_only():
    state = {"a": torch.ones(2), "b": torch.tensor([1.0, float("nan")]), "n": torch.tensor(3)}
    state["c"] = torch.tensor([float("-inf")])
    assert non_finite_tensors(state) == ["b", "c"]
