"""RNG states to save in a checkpoint and restore on resume, so batches and dropout masks repeat exactly.

``capture_rng_states(generators)`` returns ``{"torch": torch.get_rng_state(), name: generator.get_state()}``
(uint8 tensors, as ``save_checkpoint(rng_states=...)`` takes them), plus ``"cuda/<i>"`` for each GPU once
CUDA is in use (a GPU's default generator draws ``Dropout``'s masks there). ``restore_rng_states`` puts
them back and refuses a checkpoint whose generators do not match this run's; CUDA states are restored
where this machine has that GPU and ignored elsewhere (a run moved to another device cannot repeat its
draws anyway). ``module_generators(model)`` finds the layers with a generator of their own
(``Dropout(generator=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from minidl.errors import CheckpointError
from minidl.nn.module import Module

GLOBAL = "torch"
CUDA = "cuda/"


def module_generators(model: Module) -> dict[str, torch.Generator]:
    """``{"module/<dotted name>": generator}`` for every submodule with its own ``generator`` attribute."""
    return {
        f"module/{name}": module.generator
        for name, module in model.named_modules()
        if isinstance(getattr(module, "generator", None), torch.Generator)
    }


def capture_rng_states(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, torch.Tensor]:
    """The global CPU RNG state and each named generator's state, as uint8 tensors (copies)."""
    generators = dict(generators or {})
    if GLOBAL in generators or any(name.startswith(CUDA) for name in generators):
        raise ValueError(f"capture_rng_states: the names {GLOBAL!r} and {CUDA}* are reserved for torch's own RNGs")
    states = {GLOBAL: torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.update({f"{CUDA}{i}": torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())})
    states.update({name: generator.get_state() for name, generator in generators.items()})
    return states


def restore_rng_states(
    states: Mapping[str, torch.Tensor], generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Set torch's global RNG and each named generator from ``states``; the names must match exactly."""
    generators = dict(generators or {})
    cuda = {name: state for name, state in states.items() if name.startswith(CUDA)}
    expected, found = {GLOBAL, *generators}, set(states) - set(cuda)
    if expected != found:
        missing, unexpected = sorted(expected - found), sorted(found - expected)
        raise CheckpointError(
            "the checkpoint's RNG states do not match this run's generators"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unexpected: {', '.join(unexpected)}" if unexpected else "")
        )
    try:
        torch.set_rng_state(states[GLOBAL])
        for name, generator in generators.items():
            generator.set_state(states[name])
        for name, state in cuda.items():
            index = int(name.removeprefix(CUDA))
            if torch.cuda.is_available() and 0 <= index < torch.cuda.device_count():
                torch.cuda.set_rng_state(state, index)
    except (RuntimeError, TypeError, ValueError) as error:  # a bad size, a bad "cuda/x" name
        raise CheckpointError(f"the checkpoint's RNG state is invalid: {error}") from None
