"""The toy world's analytic metrics as a `saganet.eval` metric family (`--metrics toy`).

For each generated stem with a reference (the clean target stem): class accuracy (nearest-exemplar
classifier; the target class is the item's `meta["class"]` when given, else the class the classifier
gives the reference), onset F1 against the reference's detected onsets, distractor onset F1 against the
onsets of the other objects' references in the same scene, and the log-mel distance. Set level: means
with bootstrap 95 % CIs (`summarise`). Audio is resampled to the world's rate (16 kHz).

Registered on import; `saganet.app.commands.evaluate` imports this module (eval sits below the toy
world and never imports it).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from saganet.eval.families import EvalItem, FamilyResult, register_family
from saganet.toyworld.metrics import (
    build_class_templates,
    classify,
    detect_onsets,
    evaluate_target,
    summarise,
)
from saganet.toyworld.world import WorldConfig

__all__ = ["ToyFamily"]


@lru_cache(maxsize=1)
def _templates():
    return build_class_templates()


class ToyFamily:
    name = "toy"
    needs: tuple[str, ...] = ()
    description = "toy world analytic metrics: class accuracy, onset F1, distractor onset F1, log-mel distance"

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        res = FamilyResult()
        sr = WorldConfig().sample_rate
        templates = _templates()
        scenes: dict[str, list[EvalItem]] = {}
        for it in items:
            if it.ref is not None and it.scene is not None:
                scenes.setdefault(it.scene, []).append(it)
        rows = []
        for it in items:
            if it.ref is None:
                res.skipped[it.name] = "no reference stem"
                continue
            gen, ref = ctx.audio(it.gen, sr), ctx.audio(it.ref, sr)
            others = [o for o in scenes.get(it.scene, []) if o is not it] if it.scene is not None else []
            dis = [detect_onsets(ctx.audio(o.ref, sr), sr) for o in others]
            target_class = it.meta.get("class") or classify(ref, templates)
            r = evaluate_target(gen, ref, detect_onsets(ref, sr), dis or None, target_class, templates)
            res.rows[it.name] = {f"toy_{k}": v for k, v in r.items()}
            rows.append(r)
        if rows:
            for k, (m, lo, hi) in summarise(rows).items():
                if np.isnan(m):
                    continue
                res.metrics[f"toy_{k}"] = m
                res.metrics[f"toy_{k}_ci_lo"], res.metrics[f"toy_{k}_ci_hi"] = lo, hi
        return res


register_family("toy", ToyFamily)
