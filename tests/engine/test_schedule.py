import pytest
import torch

from bdbnet.engine.schedule import WarmupStepFactor, build_scheduler


def official_lr(ep: int) -> float:
    """The official adjust_lr, for 1-based epochs."""
    if ep < 50:
        return 1e-4 * (ep // 5 + 1)
    if ep < 200:
        return 1e-3
    if ep < 300:
        return 1e-4
    return 1e-5


def test_scheduler_reproduces_the_official_schedule_for_400_epochs():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = build_scheduler(opt)
    for ep in range(1, 401):
        assert opt.param_groups[0]["lr"] == pytest.approx(official_lr(ep), rel=1e-9), ep
        opt.step()
        sched.step()


def test_hand_picked_points():
    f = WarmupStepFactor()
    assert [f(e - 1) for e in (1, 4, 5, 49, 50, 199, 200, 299, 300)] == pytest.approx(
        [0.1, 0.1, 0.2, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01]
    )


def test_no_warmup_and_custom_milestones():
    f = WarmupStepFactor(warmup_epochs=0, warmup_step=1, milestones=(3,), gamma=0.5)
    assert [f(i) for i in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.5]


def test_state_dict_round_trip():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = build_scheduler(opt)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched2 = build_scheduler(opt2)
    sched2.load_state_dict(sched.state_dict())
    opt.step()
    opt2.step()
    sched2.step()
    sched.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
