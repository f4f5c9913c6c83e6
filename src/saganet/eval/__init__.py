"""Evaluation of generated audio: the paper's metrics (av-benchmark definitions, RN-46), segmentation-aware
metrics, metric families from other layers (registry), and the URMP protocol.

    from saganet.eval import EvalOptions, evaluate_folder
    results = evaluate_folder("generated/", "reference/", "eval_out/", EvalOptions(families=("panns", "vggish")))

Modules: `maths` (pure metric functions), `audio` (resampling / framing conventions), `embedders`
(PANNs, VGGish, Synchformer at their real architectures), `families` (protocol + registry),
`av_families` (the paper's families), `runner` (folders -> metrics.json / metrics.md), `urmp`
(the URMP multi-source protocol).
"""

from saganet.eval import av_families as _av_families  # noqa: F401  (registers the built-in families)
from saganet.eval.families import (
           EvalItem,
           FamilyResult,
           MetricFamily,
           family_names,
           make_family,
           register_family,
)
from saganet.eval.runner import EvalOptions, discover_items, evaluate_folder, evaluate_items, write_results

__all__ = ["EvalItem", "FamilyResult", "MetricFamily", "register_family", "family_names", "make_family",
           "EvalOptions", "discover_items", "evaluate_folder", "evaluate_items", "write_results"]
