"""Golden runners for the MM-DiT: kinds `mmaudio_net_forward` and `euler_cfg_sample` (RN-41)."""

from __future__ import annotations

import torch

from golden.framework import GoldenCase, runner
from saganet.configs import DiTConfig
from saganet.models.dit import MMDiT, PreprocessedConditions, load_dit_state_dict
from saganet.models.lora import lora_layers
from saganet.sampling import flow_matching_loss, flow_time_grid, guided_velocity, sample

_PRE_FIELDS = ("clip_f", "sync_f", "text_f", "clip_f_c", "text_f_c")


def _build(case: GoldenCase) -> MMDiT:
    """Construct from `case.config` (+ the three tensor arguments from the weights file), in train mode."""
    w = case.weights
    net = MMDiT(DiTConfig.from_dict(case.config), latent_mean=w["latent_mean"].view(-1),
                latent_std=w["latent_std"].view(-1), empty_string_feat=w["empty_string_feat"])
    return net.train()


def _fields(prefix: str, c: PreprocessedConditions) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{f}": getattr(c, f) for f in _PRE_FIELDS}


def _debug_hooks(net: MMDiT, out: dict[str, torch.Tensor]) -> list:
    def save(name: str):
        def hook(_m, _inp, res):
            if isinstance(res, tuple):  # joint block: (latent, clip_f, text_f)
                for k, r in zip(("latent", "clip_f", "text_f"), res):
                    out[f"{name}.{k}"] = r.detach().clone()
            else:
                out[name] = res.detach().clone()
        return hook

    mods = {"debug.audio_input_proj": net.audio_input_proj, "debug.t_embed": net.t_embed,
            "debug.global_cond_mlp": net.global_cond_mlp}
    mods |= {f"debug.joint_blocks.{i}": b for i, b in enumerate(net.joint_blocks)}
    mods |= {f"debug.fused_blocks.{i}": b for i, b in enumerate(net.fused_blocks)}
    return [m.register_forward_hook(save(n)) for n, m in mods.items()]


@runner("mmaudio_net_forward")
@torch.no_grad()
def run_mmaudio_net_forward(case: GoldenCase) -> dict[str, torch.Tensor]:
    i = case.inputs
    args = (i["latent"], i["clip_f"], i["sync_f"], i["text_f"], i["t"])
    net = _build(case)
    # The weights file is a train-mode state_dict: its qkv weights do NOT include ΔW.
    load_dit_state_dict(net, case.weights, lora_merged=False)
    out: dict[str, torch.Tensor] = {}
    use_lora = bool(case.config.get("use_lora"))
    if use_lora:
        out["flow_unmerged_train_mode"] = net.train()(*args)
    net.eval()  # merges LoRA in place (RN-7)
    out["flow"] = net(*args)
    pre = net.preprocess_conditions(i["clip_f"], i["sync_f"], i["text_f"])
    out |= _fields("pre", pre)
    handles = _debug_hooks(net, out)
    net.predict_flow(i["latent"], i["t"], pre)
    for h in handles:
        h.remove()
    out["aux.latent_rot"], out["aux.clip_rot"] = net.rotations(i["latent"].shape[1], i["clip_f"].shape[1],
                                                               i["latent"].device)
    out["aux.t_embed.freqs"] = net.t_embed.freqs
    if use_lora:
        sd = net.state_dict()
        for name, _ in lora_layers(net):
            out[f"merged.{name}.weight"] = sd[f"{name}.weight"]
        # Reference inference: eval() BEFORE loading, so the stored weight is used as is. That is
        # exactly our "released checkpoint" path (lora_merged=True): ΔW is not added again.
        fresh = _build(case).eval()
        load_dit_state_dict(fresh, case.weights, lora_merged=True)
        out["flow_eval_then_load"] = fresh(*args)
    return out


@runner("euler_cfg_sample")
def run_euler_cfg_sample(case: GoldenCase) -> dict[str, torch.Tensor]:
    """As the reference: conditional and unconditional branches as two network calls."""
    return euler_cfg_outputs(case, batched=False)


@torch.no_grad()
def euler_cfg_outputs(case: GoldenCase, batched: bool) -> dict[str, torch.Tensor]:
    """Every output of an `euler_cfg_sample` case; `batched=True` runs the guided branches as one 2B call
    (the pipeline's default, `guided_velocity(batched=True)`)."""
    i, s = case.inputs, case.meta["sampler"]
    net = _build(case)
    load_dit_state_dict(net, case.weights, lora_merged=False)
    if case.meta.get("module_mode", "eval") == "eval":
        net.eval()
    bs = i["x0"].shape[0]
    out: dict[str, torch.Tensor] = {"t_grid": flow_time_grid(s["num_steps"], s["min_sigma"])}
    conds = net.preprocess_conditions(i["clip_f"], i["sync_f"], i["text_f"])
    empty = net.get_empty_conditions(bs)
    empty_neg = net.get_empty_conditions(bs, negative_text_features=i["negative_text_f"])
    out |= _fields("empty", empty) | _fields("empty_neg", empty_neg)

    runs = {"cfg": (empty, s["cfg_strength"]), "cfg_negtext": (empty_neg, s["cfg_strength"]),
            "nocfg": (empty, s["nocfg_strength"])}
    for tag, (unc, strength) in runs.items():
        def record(step, _t, _x, v, tag=tag):
            out[f"{tag}.velocity.{step}"] = v

        fn = guided_velocity(net, conds, unc, strength, batched=batched)
        x1 = sample(fn, i["x0"], s["num_steps"], "euler", min_sigma=s["min_sigma"], callback=record)
        out[f"{tag}.x1"] = x1
        out[f"{tag}.x1_unnormalized"] = net.unnormalize(x1)

    loss = flow_matching_loss(net, i["train.x1"], i["clip_f"], i["sync_f"], i["text_f"], x0=i["train.x0"],
                              t=i["train.t"], min_sigma=s["min_sigma"], null_video=i["train.null_video"],
                              null_text=i["train.null_text"])
    out |= {"train.xt": loss.xt, "train.pred_v": loss.pred_v, "train.loss": loss.loss,
            "train.mean_loss": loss.mean_loss}
    out["train.normalized_latent"] = net.normalize(i["train.unnormalized_latent"])
    return out
