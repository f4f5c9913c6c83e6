"""Golden runners for the video side: `synchformer_with_context_forward` and `focal_crop`."""

from __future__ import annotations

import torch

from golden.framework import GoldenCase, runner
from saganet.checkpoint import load_strict
from saganet.focal import focal_crop
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext


@runner("synchformer_with_context_forward")
def run_synchformer_with_context(case: GoldenCase) -> dict[str, torch.Tensor]:
    cfg = MotionFormerConfig.from_effective(case.config["effective"])
    inp = case.inputs
    net = SynchformerWithContext(cfg)
    load_strict(net, case.weights, "SynchformerWithContext")
    net.eval()
    plain = Synchformer(cfg)
    own = plain.state_dict()
    load_strict(plain, {k: v for k, v in case.weights.items() if k in own}, "Synchformer")
    plain.eval()

    x, mask, dx, dm = inp["x"], inp["mask"], inp["detail_x"], inp["detail_mask"]
    with torch.no_grad():
        features = net(x, mask, detail_x=dx, detail_mask=dm)
        features_plain = plain(x)
        mf = net.vfeat_extractor
        # (B, S, T, C, H, W) -> (B*S, C, T, H, W), as the wrapper does
        seg = [t.flatten(0, 1).transpose(1, 2) for t in (x, mask, dx, dm)]
        ctx = mf.context_tokens(seg[0], seg[1])
        detail = mf.focal_tokens(seg[2], seg[3], ctx)
    return {
        "features": features,
        "features_plain": features_plain,
        "debug.tokens_full_pass": ctx,
        "debug.tokens_detail_pass": detail,
    }


@runner("focal_crop")
def run_focal_crop(case: GoldenCase) -> dict[str, torch.Tensor]:
    c = case.config
    with torch.inference_mode():
        detail_x, detail_mask, boxes = focal_crop(
            case.inputs["x"], case.inputs["x_mask"], mode="reference",
            min_size=(c.get("MIN_CROP_H", 56), c.get("MIN_CROP_W", 56)),
            out_size=(c.get("H", 224), c.get("W", 224)),
        )
    return {"detail_x": detail_x, "detail_mask": detail_mask, "crop_box": boxes}
