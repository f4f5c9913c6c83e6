"""`saganet train CONFIG [KEY=VALUE ...]`: train with a config file (a path or a shipped config name).

    saganet train sms_encoder data_root=sms features=sms_feats out_dir=runs/a
    torchrun --nproc-per-node 2 -m saganet.train sms_lora data_root=sms features=sms_feats

Shipped configs: reference, sms_encoder (the reference default), sms_lora, sms_medium_encoder,
sms_medium_lora, sms_full, finetune_lora, toyworld, tiny_test. See docs/training.md.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("train", help="train SAGANet from a config file (resumes a killed run)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="config file or shipped config name")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config keys (TOML values)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging

    from saganet.train.config import load_config
    from saganet.train.recipe import TrainingRecipe

    logging.getLogger("saganet").setLevel(logging.INFO)
    cfg = load_config(args.config, args.overrides)
    TrainingRecipe(cfg).run(quiet=args.quiet)
    print(f"weights in {cfg.out_dir}/weights_final.pth (EMA: {cfg.ema}); resumable state in {cfg.out_dir}/ckpt_last.pt")
    return 0
