"""The `saganet` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from saganet import __version__
from saganet.errors import SaganetError

log = logging.getLogger("saganet")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saganet", description="Segmentation-aware video-to-audio generation.")
    p.add_argument("--version", action="version", version=f"saganet {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_subparsers(dest="command")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SaganetError as e:
        print(f"saganet: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
