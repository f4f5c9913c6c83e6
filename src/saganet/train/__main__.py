"""`python -m saganet.train CONFIG [key=value ...]`, also as `torchrun --nproc-per-node N -m saganet.train CONFIG`.

Bad input (config, data, checkpoint) is one `saganet: error: ...` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from saganet.errors import SaganetError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m saganet.train", description=__doc__)
    p.add_argument("config", help="a config file, or a shipped config name (sms_encoder, sms_lora, ...)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config keys (TOML values)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        from saganet.train.config import load_config
        from saganet.train.recipe import TrainingRecipe

        TrainingRecipe(load_config(args.config, args.overrides)).run(quiet=args.quiet)
    except SaganetError as e:
        print(f"saganet: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
