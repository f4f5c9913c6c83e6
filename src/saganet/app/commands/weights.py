"""`saganet weights`: what each variant needs, where it is read from, and getting it there.

    saganet weights list [VARIANT] [--model-dir KEY=PATH]   per model: source, present, size; the total
    saganet weights download VARIANT|MODEL [--for-training]  exactly what generation needs (sizes first)
    saganet weights import FILE [--overwrite]              a hand-downloaded released file into the cache
    saganet weights verify [PATH]                          MD5 of a file, or of every cached file

Where models come from (in order): `--model-dir KEY=PATH` (generate, list, download), the environment
variable `SAGANET_MODEL_DIR_<KEY>`, the `[models]` table of `$SAGANET_HOME/models.toml` (or the file
`SAGANET_MODEL_CONFIG` names), then the weights cache (registry files) or the Hugging Face cache (hub models).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from saganet.errors import InputError

ORIGIN_WORDS = {"model-dir": "--model-dir", "env": "env", "config": "models.toml", "cache": "cache",
                "hf-cache": "HF cache", "download": "download to"}


def register(sub) -> None:
    p = sub.add_parser("weights", help="what each variant needs, where it is read from; download, import, verify",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wsub = p.add_subparsers(dest="weights_command", required=True)
    ls = wsub.add_parser("list", help="per variant: each file or model, where it is read from, present, size")
    ls.add_argument("variant", nargs="?", help="one variant (default: all)")
    _model_dir_option(ls)
    ls.add_argument("--for-training", action="store_true", help="also the files training starts from")
    ls.set_defaults(func=cmd_list)
    d = wsub.add_parser("download", help="fetch (resumably) and verify what a variant (or one model) needs")
    d.add_argument("variant", metavar="VARIANT|MODEL", help="a variant (saganet_small, ...) or one model key "
                                                            "(clip, sam2.1-tiny, grounding-dino-tiny, v1-44.pth, ...)")
    d.add_argument("--for-training", "--training", dest="training", action="store_true",
                   help="also the files training starts from (MMAudio's DiT, Synchformer, empty string)")
    _model_dir_option(d)
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=cmd_download)
    i = wsub.add_parser("import", help="check a hand-downloaded released file (layout, MD5) and put it in the cache")
    i.add_argument("file")
    i.add_argument("--overwrite", action="store_true",
                   help="replace a cached copy that differs (only needed for files without a published MD5)")
    i.set_defaults(func=cmd_import)
    v = wsub.add_parser("verify", help="check MD5 of a file (or every cached file)")
    v.add_argument("path", nargs="?")
    v.set_defaults(func=cmd_verify)


def _model_dir_option(p) -> None:
    p.add_argument("--model-dir", action="append", default=[], metavar="MODEL=PATH",
                   help="a local folder (or file) for one model, as `saganet generate --model-dir`")


def _model_dirs(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        if "=" not in it:
            raise InputError(f"--model-dir '{it}' must look like MODEL=PATH, e.g. clip=~/DFN5B-CLIP-ViT-H-14-384")
        k, v = it.split("=", 1)
        out[k] = v
    return out


def human_size(n: int | None, exact: bool = True) -> str:
    if n is None:
        return "size ?"
    mark = "" if exact else "~"
    for unit, scale, digits in (("GB", 1e9, 2), ("MB", 1e6, 0), ("kB", 1e3, 0)):
        if n >= scale:
            return f"{mark}{n / scale:.{digits}f} {unit}"
    return f"{mark}{n} B"


def _describe(src) -> str:
    from saganet import weights

    state = "present" if src.present else ("BROKEN " if src.local else "missing")
    where = f"{ORIGIN_WORDS[src.origin]} {src.path}"
    if src.local:
        where = f"{src.where} -> {src.path}"
    if src.kind == "hub":
        hub = weights.HUB_MODELS.get(src.key)
        where += f"  [{hub.repo_id if hub else '?'}]"
    line = f"  {src.key:28s} {state}  {human_size(src.size, src.size_exact):>10s}  {where}"
    return line + (f"  ({src.problem})" if src.problem else "")


def _total_line(sources) -> str:
    total = sum(s.size or 0 for s in sources)
    approx = any(not s.size_exact for s in sources)
    unknown = sum(s.size is None for s in sources)
    missing = [s for s in sources if not s.present]
    to_fetch = sum(s.size or 0 for s in missing)
    line = f"  total {human_size(total, not approx)}"
    if missing:
        line += f", {len(missing)} missing ({human_size(to_fetch, all(s.size_exact for s in missing))} to download)"
    else:
        line += ", everything present"
    return line + (f"; {unknown} of unknown size" if unknown else "")


def cmd_list(args) -> int:
    from saganet import registry, weights

    dirs = _model_dirs(args.model_dir)
    cfg = weights.model_config_file()
    print(f"weights cache:      {weights.cache_dir()}")
    print(f"Hugging Face cache: {weights.hub_cache_dir()}")
    print(f"model config:       {cfg} ({'read' if cfg.is_file() else 'absent'})")
    names = [registry.canonical(args.variant)] if args.variant else registry.variant_names()
    for name in names:
        spec = registry.get_variant(name)
        print(f"\n{name}: {spec.description}" + (f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""))
        sources = registry.variant_sources(name, args.for_training, dirs)
        if not sources:
            print("  ships with the package: nothing to download")
            continue
        for src in sources:
            print(_describe(src))
        print(_total_line(sources))
    if not args.variant:
        used = {k for v in registry.variant_names() for k in registry.variant_models(v, True)}
        others = [k for k in weights.HUB_MODELS if k not in used]
        if others:
            print("\nother models (segmentation: saganet segment --segmenter / text prompts)")
            for key in others:
                print(_describe(weights.model_source(key, dirs)))
        left = [k for k in weights.REGISTRY if k not in used]
        for key in left:
            print(_describe(weights.model_source(key, dirs)))
    return 0


def cmd_download(args) -> int:
    from saganet import registry, weights

    dirs = _model_dirs(args.model_dir)
    if args.variant in registry.VARIANTS or args.variant in registry.ALIASES:
        name = registry.canonical(args.variant)
        sources = registry.variant_sources(name, args.training, dirs)
        if not sources:
            print(f"{name} ships with the package: nothing to download")
            return 0
        print(f"{name} needs {len(sources)} files/models for {'training' if args.training else 'generation'}:")
        for src in sources:
            print(_describe(src))
        print(_total_line(sources))

        def on_start(src) -> None:
            if not args.quiet:
                verb = "using" if src.local else ("verifying" if src.present else "fetching")
                print(f"{verb} {src.key} ({human_size(src.size, src.size_exact)})", flush=True)

        paths = registry.download_variant(name, training=args.training, quiet=args.quiet, model_dirs=dirs,
                                          on_start=on_start)
    else:
        try:
            key = weights.canonical_key(args.variant)
            if key not in weights.REGISTRY and key not in weights.HUB_MODELS and key != weights.ALL_KEY:
                raise InputError(key)
        except InputError:
            raise InputError(f"'{args.variant}' is neither a variant ({', '.join(registry.VARIANTS)}) nor a model "
                             f"key ({', '.join(weights.model_keys()[:-1])})") from None
        if key == weights.ALL_KEY:
            raise InputError("'all' is a --model-dir key, not something to download: give a variant or model")
        src = weights.model_source(key, dirs)
        print(_describe(src))
        if key in weights.REGISTRY and not src.local:
            paths = [weights.download(key, quiet=args.quiet)]
        else:
            paths = [weights.resolve_model(key, offline=False, model_dirs=dirs, quiet=args.quiet)]
    for p in paths:
        print(p)
    return 0


def _known_files() -> dict:
    """Registry files plus the evaluation's checkpoints (all live in the same cache)."""
    from saganet import weights

    known = dict(weights.REGISTRY)
    try:
        from saganet.eval.embedders.base import EVAL_WEIGHTS
    except ImportError:  # the evaluation extras are optional
        return known
    return {**EVAL_WEIGHTS, **known}


def cmd_import(args) -> int:
    from saganet import weights

    res = weights.import_file(Path(args.file), registry=_known_files(), overwrite=args.overwrite)
    check = "layout and MD5 checked" if res.md5_checked else "layout checked (no published MD5)"
    if res.action == "already-present":
        print(f"{res.name}: the same file is already in the cache ({res.path}); {check}")
    else:
        print(f"{res.name}: {res.action} into {res.path} ({check})")
    return 0


def cmd_verify(args) -> int:
    from saganet import weights

    known = _known_files()
    targets = [args.path] if args.path else [str(p) for p in sorted(weights.cache_dir().glob("*"))
                                             if p.is_file() and p.name in known]
    bad = 0
    for t in targets:
        ok = weights.verify(t, registry=known)
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {t}")
    if not targets:
        print(f"no files in {weights.cache_dir()}")
    return 1 if bad else 0
