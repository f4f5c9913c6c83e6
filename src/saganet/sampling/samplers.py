"""ODE samplers for flow matching: integrate dx/dt = v(t, x) from noise (t = 0) to data (t = 1 - σ).

All methods share one interface, `sample(velocity_fn, x0, steps, method)`, with
`velocity_fn(t, x) -> v`, t a 0-dim float32 tensor from the grid and x (B, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from saganet.sampling.flow_matching import flow_time_grid

log = logging.getLogger(__name__)

__all__ = ["VelocityFn", "StepCallback", "SAMPLERS", "sample", "num_function_evals"]

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# callback(step, t, x, v): called once per step with the state and the first velocity of that step
StepCallback = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]


def _euler(fn: VelocityFn, x: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor):
    v = fn(t0, x)
    return x + (t1 - t0) * v, v


def _heun(fn: VelocityFn, x: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor):
    """Heun (explicit trapezoid, 2nd order): average of the slopes at both ends."""
    dt = t1 - t0
    v0 = fn(t0, x)
    v1 = fn(t1, x + dt * v0)
    return x + dt * 0.5 * (v0 + v1), v0


def _midpoint(fn: VelocityFn, x: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor):
    """Explicit midpoint (2nd order): slope at the half step."""
    dt = t1 - t0
    v0 = fn(t0, x)
    vm = fn(t0 + dt / 2, x + (dt / 2) * v0)
    return x + dt * vm, v0


SAMPLERS: dict[str, tuple[Callable, int]] = {"euler": (_euler, 1), "heun": (_heun, 2), "midpoint": (_midpoint, 2)}


def num_function_evals(method: str, steps: int) -> int:
    """Velocity evaluations per sample run (each is 1 or 2 network calls depending on CFG)."""
    return _lookup(method)[1] * steps


def _lookup(method: str) -> tuple[Callable, int]:
    try:
        return SAMPLERS[method]
    except KeyError:
        raise ValueError(f"unknown sampler '{method}'; choose one of {', '.join(SAMPLERS)}") from None


def sample(velocity_fn: VelocityFn, x0: torch.Tensor, steps: int = 25, method: str = "euler", *,
           min_sigma: float = 0.0, t_grid: torch.Tensor | None = None, progress: bool = False,
           callback: StepCallback | None = None) -> torch.Tensor:
    """Integrate from `x0` (noise, (B, ...)) over `t_grid` (default: the reference float32 grid, RN-13).

    Euler reproduces the reference exactly: `x <- x + (t[i+1] - t[i]) * v(t[i], x)`.
    """
    step_fn, _ = _lookup(method)
    grid = flow_time_grid(steps, min_sigma) if t_grid is None else t_grid
    it = range(len(grid) - 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{method} sampling", leave=False)
    x = x0
    for i in it:
        t0, t1 = grid[i], grid[i + 1]
        x_next, v = step_fn(velocity_fn, x, t0, t1)
        if callback is not None:
            callback(i, t0, x, v)
        x = x_next
    return x
