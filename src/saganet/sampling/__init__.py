"""saganet.sampling: flow-matching training loss, ODE samplers (Euler, Heun, midpoint) and CFG."""

from saganet.sampling.flow_matching import (
    FlowLossOutput,
    apply_cfg_dropout,
    flow_loss,
    flow_matching_loss,
    flow_time_grid,
    interpolate,
    sample_logit_normal_t,
    target_velocity,
)
from saganet.sampling.guidance import cfg_combine, generate_latents, guided_velocity
from saganet.sampling.samplers import SAMPLERS, num_function_evals, sample

__all__ = [
    "FlowLossOutput",
    "apply_cfg_dropout",
    "flow_loss",
    "flow_matching_loss",
    "flow_time_grid",
    "interpolate",
    "sample_logit_normal_t",
    "target_velocity",
    "cfg_combine",
    "generate_latents",
    "guided_velocity",
    "SAMPLERS",
    "num_function_evals",
    "sample",
]
