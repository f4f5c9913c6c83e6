"""LoRA merged/unmerged bookkeeping through eval/train, save, resume and export; export -> load round trip.

Defect: resuming LoRA training from an eval-mode (merged) model mixed merged and unmerged weights, and the
unmerged `weights_last.safetensors` was loaded as merged, losing the LoRA delta.
"""

from __future__ import annotations

import torch
from train_helpers import tiny_run, trainables

from saganet.checkpoint import read_checkpoint
from saganet.models.lora import lora_layers
from saganet.train import Trainer, load_exported_weights
from saganet.train.recipe import build_training_model


def _dit_out(model, seed: int = 0) -> torch.Tensor:
    """One DiT forward on fixed random inputs (B=2)."""
    dit = model.dit
    g = torch.Generator().manual_seed(seed)
    c = dit.cfg
    x = torch.randn(2, c.latent_seq_len, c.latent_dim, generator=g)
    clip = torch.randn(2, c.clip_seq_len, c.clip_dim, generator=g)
    sync = torch.randn(2, c.sync_seq_len, c.sync_dim, generator=g)
    text = torch.randn(2, c.text_seq_len, c.text_dim, generator=g)
    t = torch.rand(2, generator=g)
    with torch.no_grad():
        return dit(x, clip, sync, text, t)


def _give_lora_a_delta(model, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model.dit):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.05)


def test_eval_mode_model_is_unmerged_before_training(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path)
    _give_lora_a_delta(model)
    model.eval()  # merges in place (loralib semantics): qkv.weight = W0 + ΔW
    layers = [m for _, m in lora_layers(model.dit)]
    assert layers and all(m.merged for m in layers)
    y_eval = _dit_out(model)
    trainer = Trainer(model, cfg, train, val)
    assert not any(m.merged for m in layers)  # trained un-merged: W0 frozen, ΔW from A, B
    model.eval()
    assert not any(m.merged for m in layers)  # validation's eval() no longer rewrites qkv.weight in place
    torch.testing.assert_close(_dit_out(model), y_eval, atol=1e-5, rtol=1e-5)  # same function
    trainer.close()
    assert all(m.merge_on_eval for m in layers) and all(m.merged for m in layers)  # back to normal in eval


def test_validation_does_not_touch_base_weights(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, steps=2, val_every=1, ckpt_every=100)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    w = {n: m.weight.detach().clone() for n, m in lora_layers(model.dit)}
    for _ in range(3):
        trainer.validate()
    for n, m in lora_layers(model.dit):
        assert torch.equal(m.weight, w[n]), n  # exactly: no merge/unmerge round-off


def test_lora_save_resume_export_round_trip(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, steps=3, val_every=3, ckpt_every=3, ema=False)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    assert any(torch.any(m.lora_B) for _, m in lora_layers(model.dit))  # the LoRA actually trained
    trained = trainables(model)
    trainer.close()
    model.eval()  # merged now
    y = _dit_out(model)

    # resume: a fresh process rebuilds the model (in eval mode here, merged with B = 0) and loads the state
    cfg2, model2, train2, val2 = tiny_run(tmp_path, steps=3, val_every=3, ckpt_every=3, ema=False)
    model2.eval()
    t2 = Trainer(model2, cfg2, train2, val2)
    assert t2.try_resume()
    for k, v in trained.items():
        assert torch.equal(dict(model2.named_parameters())[k].detach(), v), k
    t2.close()
    model2.eval()
    torch.testing.assert_close(_dit_out(model2), y, atol=1e-5, rtol=1e-5)

    # export: reference layout, LoRA merged into network qkv.weight, "lora" = the A/B tensors
    path = tmp_path / "weights_last.pth"
    ckpt = read_checkpoint(path)
    assert set(ckpt) == {"network", "synchformer", "lora"}
    assert set(ckpt["lora"]) == {k for k in ckpt["network"] if "lora_" in k}
    name, layer = next(iter(lora_layers(model.dit)))
    w_merged = layer.weight.detach()  # model is in eval mode: merged
    torch.testing.assert_close(ckpt["network"][f"{name}.weight"], w_merged, atol=1e-6, rtol=0)

    # load as the released files are loaded (LoRA taken as merged), into eval- and train-mode models
    for mode in ("eval", "train"):
        fresh = build_training_model(cfg)
        fresh.train(mode == "train")
        load_exported_weights(fresh, path)
        fresh.eval()  # a train-mode load is un-merged with the file's ΔW, then merged again: no double add
        torch.testing.assert_close(_dit_out(fresh), y, atol=1e-5, rtol=1e-5, msg=mode)
        for k, v in ckpt["synchformer"].items():
            assert torch.equal(fresh.sync_encoder.model.state_dict()[k], v), k


def test_export_uses_ema_weights(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, steps=2, val_every=2, ckpt_every=2, ema_beta=0.5)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    avg = trainer.ema.averaged()
    ckpt = read_checkpoint(tmp_path / "weights_last.pth")
    name = next(k for k in avg if k.startswith("sync_encoder.model."))
    key = name.removeprefix("sync_encoder.model.")
    assert torch.equal(ckpt["synchformer"][key], avg[name].detach().cpu())
    assert not torch.equal(avg[name], dict(model.named_parameters())[name])  # EMA differs from the online weights
