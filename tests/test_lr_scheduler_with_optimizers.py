"""Every optimizer × every scheduler against torch.optim + torch.optim.lr_scheduler, with a resume at step 100."""

from __future__ import annotations

import pytest

from minidl.optim import OPTIMIZERS, SCHEDULERS
from tests.test_lr_scheduler import TORCH_SCHEDULERS
from tests.test_optim_adaptive import (
    assert_same_weights,
    batches,
    minidl_step,
    through_json,
    torch_optimizer,
    torch_step,
    twin_models,
)

OPTIMIZER_CONFIGS = {
    "sgd": dict(lr=0.05, momentum=0.9, weight_decay=0.01),
    "adam": dict(lr=0.01, amsgrad=True),
    "adamw": dict(lr=0.01, weight_decay=0.1),
    "rmsprop": dict(lr=0.005, momentum=0.5, centered=True),
    "adagrad": dict(lr=0.05, lr_decay=0.01),
}
# chosen so that every schedule moves the lr within its 20 epochs (one epoch = EVERY optimizer steps)
SCHEDULER_CONFIGS = {
    "step": dict(step_size=4, gamma=0.5),
    "multistep": dict(milestones=[3, 8, 15], gamma=0.5),
    "exponential": dict(gamma=0.9),
    "cosine": dict(T_max=12, eta_min=1e-4),
    "linear": dict(start_factor=0.2, total_iters=8),
    "plateau": dict(patience=1, factor=0.5),
}
STEPS, EVERY, RESUME_AT = 200, 10, 100
COMBOS = [(o, s) for o in OPTIMIZER_CONFIGS for s in SCHEDULER_CONFIGS]


def epoch_end(scheduler, loss: float) -> None:
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        scheduler.step(loss)
    else:
        scheduler.step()


@pytest.mark.parametrize(("opt_name", "sched_name"), COMBOS, ids=[f"{o}-{s}" for o, s in COMBOS])
def test_optimizer_with_scheduler_tracks_torch_across_a_resume(opt_name, sched_name):
    opt_config, sched_config = OPTIMIZER_CONFIGS[opt_name], SCHEDULER_CONFIGS[sched_name]
    ours, theirs = twin_models(small=True)
    opt = OPTIMIZERS[opt_name](ours.parameters(), **opt_config)
    sched = SCHEDULERS[sched_name](opt, **sched_config)
    ref = torch_optimizer(opt_name, theirs.parameters(), **opt_config)
    ref_sched = TORCH_SCHEDULERS[sched_name](ref, **sched_config)
    lrs = set()
    for step, (x, y) in enumerate(batches(STEPS)):
        loss = minidl_step(ours, opt, x, y)
        ref_loss = torch_step(theirs, ref, x, y)
        if (step + 1) % EVERY == 0:
            epoch_end(sched, loss)
            epoch_end(ref_sched, ref_loss)
            assert sched.get_last_lr() == pytest.approx(ref_sched.get_last_lr(), abs=1e-12, rel=0), f"step {step}"
            lrs.add(opt.param_groups[0]["lr"])
        if step + 1 == RESUME_AT:  # a checkpoint: snapshot, then carry on in fresh objects
            saved_opt, saved_sched = through_json(opt.state_dict()), through_json(sched.state_dict())
            opt = OPTIMIZERS[opt_name](ours.parameters(), lr=1.0)
            sched = SCHEDULERS[sched_name](opt, **sched_config)
            opt.load_state_dict(saved_opt)
            sched.load_state_dict(saved_sched)
        if step % 50 == 49:
            assert_same_weights(ours, theirs, atol=1e-10, msg=f"step {step}:")
    assert len(lrs) > 1, "the scheduler never changed the lr"
