"""Where every model comes from: released files (registry: URL, MD5, size), hub models, local folders (RN-40).

One place answers "where is model X read from" (`model_source`) and every loader goes through it
(`resolve` for registry files, `resolve_hub` for hub models, `resolve_model` for either). In order:

1. a plain local folder (or file) given for the model: `--model-dir KEY=PATH` (the `model_dirs` argument),
   then the environment variable `SAGANET_MODEL_DIR_<KEY>` (e.g. `SAGANET_MODEL_DIR_CLIP`), then the
   `[models]` table of the config file `$SAGANET_HOME/models.toml` (or the file `SAGANET_MODEL_CONFIG`
   names). KEY is a hub model (`clip`, `bigvgan_v2` or `bigvgan`, `sam2.1-tiny` or `sam2`,
   `grounding-dino-tiny`), a registry file name (`saganet.pth=PATH`, a file or a folder holding it), or
   `all`: one folder holding the released files by name and hub models as sub-folders named after
   their repository (`DFN5B-CLIP-ViT-H-14-384/` or `DFN5B-CLIP-ViT-H-14-378/`, `bigvgan_v2_44khz_128band_512x/`,
   what `hf download REPO FILES --local-dir FOLDER/NAME` writes);
2. registry files: the cache `$SAGANET_HOME/weights` (default: the platform's user cache folder
   `saganet`); hub models: the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub`, or `~/.cache/huggingface`);
3. a download into that cache, unless downloads are off (`SAGANET_OFFLINE=1` or `HF_HUB_OFFLINE=1`, or
   `offline=True`); then a missing model is a one-line `CheckpointError` naming the command that fetches it.

A folder given by the user that lacks the model is an error, never a silent fall-back to another copy.

Downloads of registry files go to `<name>.part` (resumed with an HTTP Range request if present), are
MD5-checked, and only then renamed to the final name, so a corrupt or tampered file is never left under
the final name. Set `SAGANET_WEIGHTS_URL` to fetch every file from `{SAGANET_WEIGHTS_URL}/{name}` instead
(a mirror, or a test server). `import_file` puts a hand-downloaded file into the cache after checking its
layout (top-level keys) and MD5.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from saganet.errors import CheckpointError, InputError

log = logging.getLogger(__name__)

SAGANET_PUB_URL = "https://a3s.fi/swift/v1/AUTH_a235c0f452d648828f745589cde1219a/saganet_public"
_HF_MMAUDIO = "https://huggingface.co/hkchengrex/MMAudio/resolve/main/weights"
_GH_MMAUDIO = "https://github.com/hkchengrex/MMAudio/releases/download/v0.1"
_M = 1_000_000
_G = 1_000_000_000


@dataclass(frozen=True)
class WeightFile:
    """One released file. `size` (bytes) is approximate and only informative (`size_exact`: published).

    `layout`: what the file holds at the top level, checked by `import_file`: key names that must be
    present, `"prefix.*"` for "some key starts with prefix.", or `("<tensor>",)` for a bare tensor.
    """

    name: str
    url: str
    md5: str | None
    size: int | None = None
    layout: tuple[str, ...] = ()


@dataclass(frozen=True)
class HubModel:
    """A model fetched from the Hugging Face hub into the Hugging Face cache (not ours).

    `files`: the files generation reads (empty: the whole snapshot). `size`: approximate bytes of
    those files (None: unknown).
    """

    key: str
    repo_id: str
    files: tuple[str, ...] = ()
    size: int | None = None
    other_repo_ids: tuple[str, ...] = ()  # the same files under another (e.g. renamed) repository id

    @property
    def repo_ids(self) -> tuple[str, ...]:
        return (self.repo_id, *self.other_repo_ids)

    @property
    def folder_names(self) -> tuple[str, ...]:
        """Sub-folder names looked up under a `--model-dir all=FOLDER` (the repositories' names)."""
        return tuple(r.split("/")[-1] for r in self.repo_ids)

    @property
    def folder_name(self) -> str:
        return self.folder_names[0]


# Sizes: the fp32 parameter count of each state dict (from the reference manifests) x 4 bytes, rounded.
# The MMAudio and v1-* sizes are MMAudio's published figures; nothing here is a measured download.
_DIT = ("latent_mean", "latent_std", "empty_string_feat")
REGISTRY: dict[str, WeightFile] = {f.name: f for f in (
    WeightFile("mmaudio_small_16k.pth", f"{_HF_MMAUDIO}/mmaudio_small_16k.pth", "af93cde404179f58e3919ac085b8033b",
               601 * _M, _DIT),
    WeightFile("mmaudio_small_44k.pth", f"{_HF_MMAUDIO}/mmaudio_small_44k.pth", "babd74c884783d13701ea2820a5f5b6d",
               601 * _M, _DIT),
    WeightFile("mmaudio_medium_44k.pth", f"{_HF_MMAUDIO}/mmaudio_medium_44k.pth",
               "5a56b6665e45a1e65ada534defa903d0", int(2.4 * _G), _DIT),
    WeightFile("mmaudio_large_44k.pth", f"{_HF_MMAUDIO}/mmaudio_large_44k.pth", "fed96c325a6785b85ce75ae1aafd2673",
               int(3.9 * _G), _DIT),
    WeightFile("mmaudio_large_44k_v2.pth", f"{_HF_MMAUDIO}/mmaudio_large_44k_v2.pth",
               "01ad4464f049b2d7efdaa4c1a59b8dfe", int(3.9 * _G), _DIT),
    WeightFile("v1-16.pth", f"{_GH_MMAUDIO}/v1-16.pth", "69f56803f59a549a1a507c93859fd4d7", 655 * _M,
               ("data_mean", "data_std", "decoder.*")),
    WeightFile("best_netG.pt", f"{_GH_MMAUDIO}/best_netG.pt", "eeaf372a38a9c31c362120aba2dde292", 429 * _M,
               ("generator",)),
    WeightFile("v1-44.pth", f"{_GH_MMAUDIO}/v1-44.pth", "fab020275fa44c6589820ce025191600", int(1.2 * _G),
               ("data_mean", "data_std", "decoder.*")),
    WeightFile("synchformer_state_dict.pth", f"{_GH_MMAUDIO}/synchformer_state_dict.pth",
               "5b2f5594b0730f70e41e549b7c94390c", 907 * _M, ("vfeat_extractor.*",)),
    # Not in the reference's download list (no MD5 published); needed for training only. A (1, 77, 1024) fp32
    # tensor: ~0.32 MB.
    WeightFile("empty_string.pth", f"{_GH_MMAUDIO}/empty_string.pth", None, 316 * 1000, ("<tensor>",)),
    # Sizes not published: DiT (157.8 M with LoRA / 157.4 M) + SynchformerWithContext (207.9 M) fp32.
    WeightFile("saganet.pth", f"{SAGANET_PUB_URL}/ckpts/saganet.pth", "4f3a0ebe86bdf956db289894ec531f5e",
               1465 * _M, ("network", "synchformer", "lora")),
    WeightFile("saganet_no_lora.pth", f"{SAGANET_PUB_URL}/ckpts/saganet_no_lora.pth",
               "c9fe7b24c6c72574feac27731575d99e", 1461 * _M, ("network", "synchformer")),
)}

# Sizes approximate. CLIP: the hub's file page lists open_clip_pytorch_model.bin at 3.95 GB (the repository is
# listed as apple/DFN5B-CLIP-ViT-H-14-378 on the hub; the reference asks for the -384 id). BigVGAN v2: the hub
# lists bigvgan_generator.pt at 489 MB (= 122.2 M fp32 parameters; its 1.53 GB discriminator/optimizer file is
# not needed). SAM 2.1 / Grounding DINO: published parameter counts x 4 bytes (weights file only).
HUB_MODELS: dict[str, HubModel] = {h.key: h for h in (
    HubModel("clip", "apple/DFN5B-CLIP-ViT-H-14-384", ("open_clip_config.json", "open_clip_pytorch_model.bin"),
             int(3.95 * _G), ("apple/DFN5B-CLIP-ViT-H-14-378",)),
    HubModel("bigvgan_v2", "nvidia/bigvgan_v2_44khz_128band_512x", ("config.json", "bigvgan_generator.pt"),
             489 * _M),
    HubModel("sam2.1-tiny", "facebook/sam2.1-hiera-tiny", (), 156 * _M),
    HubModel("sam2.1-small", "facebook/sam2.1-hiera-small", (), 184 * _M),
    HubModel("sam2.1-base-plus", "facebook/sam2.1-hiera-base-plus", (), 323 * _M),
    HubModel("sam2.1-large", "facebook/sam2.1-hiera-large", (), 898 * _M),
    HubModel("grounding-dino-tiny", "IDEA-Research/grounding-dino-tiny", (), 689 * _M),
)}

# Other names accepted for a model key (`--model-dir bigvgan=...`, `SAGANET_MODEL_DIR_SAM2=...`).
MODEL_ALIASES: dict[str, str] = {"bigvgan": "bigvgan_v2", "sam2": "sam2.1-tiny", "grounding-dino": "grounding-dino-tiny",
                                 "grounding_dino": "grounding-dino-tiny", "dfn5b-clip": "clip"}
ALL_KEY = "all"  # one folder holding every released file and hub model
ENV_PREFIX = "SAGANET_MODEL_DIR_"
CONFIG_NAME = "models.toml"
FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")

Origin = Literal["model-dir", "env", "config", "cache", "hf-cache", "download"]


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on")


def is_offline() -> bool:
    return _truthy(os.environ.get("SAGANET_OFFLINE")) or _truthy(os.environ.get("HF_HUB_OFFLINE"))


def _offline_reason() -> str:
    set_vars = [v for v in ("SAGANET_OFFLINE", "HF_HUB_OFFLINE") if _truthy(os.environ.get(v))]
    return f"downloads are off ({' and '.join(set_vars)} set)" if set_vars else "downloads are off"


def saganet_home() -> Path:
    """`$SAGANET_HOME`, default the platform's user cache folder `saganet`."""
    home = os.environ.get("SAGANET_HOME")
    if not home:
        import platformdirs

        home = platformdirs.user_cache_dir("saganet")
    return Path(home).expanduser()


def cache_dir() -> Path:
    """`$SAGANET_HOME/weights`, default `<user cache>/saganet/weights`."""
    return saganet_home() / "weights"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (`HF_HUB_CACHE`, `HF_HOME/hub`)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _entry(name: str, registry: Mapping[str, WeightFile] | None) -> WeightFile:
    reg = REGISTRY if registry is None else registry
    if name not in reg:
        raise CheckpointError(f"unknown weights file '{name}': known files are {', '.join(sorted(reg))}")
    return reg[name]


def url_for(entry: WeightFile) -> str:
    base = os.environ.get("SAGANET_WEIGHTS_URL")
    return f"{base.rstrip('/')}/{entry.name}" if base else entry.url


def md5sum(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(path_or_name: str | os.PathLike, registry: Mapping[str, WeightFile] | None = None) -> bool:
    """True when the file exists and matches its registry MD5 (files without an MD5: exists, non-empty).

    Accepts a registry name (looked up in the cache) or a path whose file name is a registry name.
    """
    p = Path(path_or_name)
    name = p.name
    entry = _entry(name, registry)
    if not p.is_absolute() and str(path_or_name) == name and not p.exists():
        p = cache_dir() / name
    if not p.is_file():
        return False
    if entry.md5 is None:
        return p.stat().st_size > 0
    return md5sum(p) == entry.md5


# ------------------------------------------------------------------------------------------------ model keys
def model_keys() -> list[str]:
    """Every key a local folder can be given for: hub models, registry files, and `all`."""
    return [*HUB_MODELS, *REGISTRY, ALL_KEY]


def canonical_key(key: str, registry: Mapping[str, WeightFile] | None = None) -> str:
    """`key` with aliases resolved (`bigvgan` -> `bigvgan_v2`); unknown keys are an `InputError`."""
    k = str(key).strip()
    k = MODEL_ALIASES.get(k.lower(), k)
    if k.lower() in HUB_MODELS or k.lower() == ALL_KEY:
        return k.lower()
    if k in REGISTRY or (registry is not None and k in registry) or k.endswith(FILE_SUFFIXES):
        return k  # a file of the registry or of a feature's own registry (e.g. the evaluation's checkpoints)
    raise InputError(f"unknown model '{key}': choose one of {', '.join(model_keys())} "
                     f"(aliases: {', '.join(MODEL_ALIASES)})")


def env_var(key: str) -> str:
    """`SAGANET_MODEL_DIR_<KEY>` for a model key (upper case, other characters as `_`)."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", key.upper())


def model_config_file() -> Path:
    """`SAGANET_MODEL_CONFIG`, default `$SAGANET_HOME/models.toml`."""
    env = os.environ.get("SAGANET_MODEL_CONFIG")
    return Path(env).expanduser() if env else saganet_home() / CONFIG_NAME


@dataclass(frozen=True)
class LocalDir:
    """A user-given local copy of a model: `path` (a folder, or a file for a registry file) and where
    the setting came from (`origin` "model-dir" / "env" / "config", `where`: the flag, variable or file)."""

    path: Path
    origin: Origin
    where: str


def _read_config(path: Path) -> dict[str, str]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"cannot read the model config {path}: {str(e).splitlines()[0]}; fix or delete it") from e
    table = data.get("models", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise InputError(f"{path}: expected a [models] table of KEY = \"PATH\" lines, e.g. clip = \"~/DFN5B-CLIP\"")
    return table


def local_dirs(model_dirs: Mapping[str, str | os.PathLike] | None = None) -> dict[str, LocalDir]:
    """Every user-given local copy, by canonical key: `model_dirs` (the `--model-dir` flags) over
    `SAGANET_MODEL_DIR_<KEY>` variables over the config file. Unknown keys are an `InputError`."""
    out: dict[str, LocalDir] = {}
    cfg = model_config_file()
    if cfg.is_file():
        for k, v in _read_config(cfg).items():
            try:
                key = canonical_key(k)
            except InputError as e:
                raise InputError(f"{cfg}: {e}") from None
            path = Path(v).expanduser()
            out[key] = LocalDir(path if path.is_absolute() else cfg.parent / path, "config", str(cfg))
    for key in model_keys():
        v = os.environ.get(env_var(key))
        if v:
            out[key] = LocalDir(Path(v).expanduser(), "env", env_var(key))
    for alias, key in MODEL_ALIASES.items():
        v = os.environ.get(env_var(alias))
        if v and env_var(key) not in os.environ:
            out[key] = LocalDir(Path(v).expanduser(), "env", env_var(alias))
    for k, v in (model_dirs or {}).items():
        key = canonical_key(k)
        out[key] = LocalDir(Path(v).expanduser(), "model-dir", f"--model-dir {k}={v}")
    return out


# ------------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class ModelSource:
    """Where one model is (or would be) read from, found without any network access.

    `kind`: "file" (registry file) or "hub" (hub model). `origin`: "model-dir" / "env" / "config" (a
    user-given local copy), "cache" / "hf-cache" (present in our / the Hugging Face cache), or "download"
    (missing: it would be downloaded to `path`). `size`: bytes on disk when present, else the registry's
    approximate figure (`size_exact` False) or None.
    """

    key: str
    kind: Literal["file", "hub"]
    origin: Origin
    path: Path
    present: bool
    size: int | None
    size_exact: bool
    where: str = ""  # the flag, variable or config file of a user-given copy
    problem: str = ""  # why a user-given copy cannot be used (empty: fine)

    @property
    def local(self) -> bool:
        return self.origin in ("model-dir", "env", "config")


def _folder_size(folder: Path, files: tuple[str, ...]) -> int:
    paths = [folder / f for f in files] if files else [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in paths if p.is_file())


def _hf_cached(hub: HubModel) -> Path | None:
    """The snapshot folder of `hub` in the Hugging Face cache if every needed file is there."""
    from huggingface_hub import snapshot_download, try_to_load_from_cache

    cache = hub_cache_dir()
    for repo_id in hub.repo_ids:
        if hub.files:
            found = [try_to_load_from_cache(repo_id, f, cache_dir=cache) for f in hub.files]
            if all(isinstance(p, str) for p in found):
                return Path(found[0]).parent
            continue
        try:
            return Path(snapshot_download(repo_id, cache_dir=cache, local_files_only=True))
        except Exception:  # not cached (huggingface_hub raises several types)
            continue
    return None


def _hf_repo_folder(hub: HubModel) -> Path:
    return hub_cache_dir() / ("models--" + hub.repo_id.replace("/", "--"))


def hub_model(model: str | HubModel) -> HubModel:
    if isinstance(model, HubModel):
        return model
    key = canonical_key(model)
    if key not in HUB_MODELS:
        raise CheckpointError(f"'{model}' is not a hub model: hub models are {', '.join(HUB_MODELS)}")
    return HUB_MODELS[key]


def _check_hub_folder(hub: HubModel, folder: Path) -> str:
    if not folder.is_dir():
        return f"{folder} is not a folder"
    missing = [f for f in hub.files if not (folder / f).is_file()]
    if missing:
        return f"{folder} has no {', '.join(missing)} (expected a copy of {hub.repo_id})"
    if not hub.files and not any(folder.iterdir()):
        return f"{folder} is empty (expected a copy of {hub.repo_id})"
    return ""


def _hub_source(hub: HubModel, dirs: Mapping[str, LocalDir]) -> ModelSource:
    given = dirs.get(hub.key)
    if given is None and ALL_KEY in dirs:
        d = dirs[ALL_KEY]
        for name in hub.folder_names:
            if (d.path / name).is_dir():
                given = LocalDir(d.path / name, d.origin, d.where)
                break
    if given is not None:
        problem = _check_hub_folder(hub, given.path)
        size = _folder_size(given.path, hub.files) if not problem else hub.size
        return ModelSource(hub.key, "hub", given.origin, given.path, not problem, size, not problem, given.where,
                           problem)
    cached = _hf_cached(hub)
    if cached is not None:
        return ModelSource(hub.key, "hub", "hf-cache", cached, True, _folder_size(cached, hub.files), True)
    return ModelSource(hub.key, "hub", "download", _hf_repo_folder(hub), False, hub.size, False)


def _file_source(entry: WeightFile, dirs: Mapping[str, LocalDir]) -> ModelSource:
    given = dirs.get(entry.name)
    if (given is None or given.origin == "config") and os.environ.get(env_var(entry.name)):  # env over config
        given = LocalDir(Path(os.environ[env_var(entry.name)]).expanduser(), "env", env_var(entry.name))
    if given is None and ALL_KEY in dirs and (dirs[ALL_KEY].path / entry.name).is_file():
        given = dirs[ALL_KEY]
    if given is not None:
        path = given.path / entry.name if given.path.is_dir() else given.path
        problem = "" if path.is_file() else f"{path} does not exist"
        size = path.stat().st_size if not problem else entry.size
        return ModelSource(entry.name, "file", given.origin, path, not problem, size, not problem, given.where,
                           problem)
    path = cache_dir() / entry.name
    if path.is_file():
        return ModelSource(entry.name, "file", "cache", path, True, path.stat().st_size, True)
    return ModelSource(entry.name, "file", "download", path, False, entry.size, False)


def model_source(key: str | HubModel, model_dirs: Mapping[str, str | os.PathLike] | None = None,
                 registry: Mapping[str, WeightFile] | None = None) -> ModelSource:
    """Where model `key` (a hub model key / `HubModel`, or a registry file name) is read from. No network.

    Hub models that callers define themselves (`HubModel(key, repo)`) take user-given folders by their key.
    """
    dirs = local_dirs(model_dirs)
    if isinstance(key, HubModel):
        return _hub_source(key, dirs)
    reg = REGISTRY if registry is None else registry
    if key in reg:
        return _file_source(reg[key], dirs)
    return _hub_source(hub_model(key), dirs)


def download(name: str, dest_dir: str | os.PathLike | None = None, registry: dict[str, WeightFile] | None = None,
             quiet: bool = False, timeout: float = 60.0) -> Path:
    """Download one registry file into the cache (or `dest_dir`), resuming a `.part` file; returns its path.

    An existing file that passes its MD5 is kept. After download the MD5 is checked before the rename; a
    mismatch deletes the download and raises `CheckpointError` (after one fresh retry if it was resumed).
    """
    entry = _entry(name, registry)
    folder = Path(dest_dir) if dest_dir is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / entry.name
    if final.exists():
        if verify(final, registry={entry.name: entry}):
            log.info("%s already present and verified", final)
            return final
        log.warning("%s exists but fails its checksum: downloading it again", final)
        final.unlink()
    part = final.with_name(final.name + ".part")
    url = url_for(entry)
    for attempt in range(2):
        resumed = _fetch(url, part, entry, quiet, timeout)
        got = md5sum(part) if entry.md5 else None
        if entry.md5 is None or got == entry.md5:
            os.replace(part, final)
            return final
        part.unlink(missing_ok=True)
        if not resumed or attempt == 1:
            raise CheckpointError(f"checksum mismatch for {entry.name} from {url} (md5 {got}, expected "
                                  f"{entry.md5}): the download is corrupt or tampered; it was deleted, try again")
        log.warning("resumed download of %s fails its checksum: downloading from scratch", entry.name)
    raise AssertionError("unreachable")


def _fetch(url: str, part: Path, entry: WeightFile, quiet: bool, timeout: float) -> bool:
    """Fetch `url` into `part`, resuming from its current size. Returns True if it resumed."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "saganet"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http/https URLs from the registry)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the .part file is complete (checked by MD5)
            return True
        raise CheckpointError(f"download of {entry.name} failed: HTTP {e.code} from {url}") from e
    except (urllib.error.URLError, OSError) as e:
        raise CheckpointError(f"download of {entry.name} failed ({e}): check the connection or set "
                              "SAGANET_WEIGHTS_URL to a mirror") from e
    with resp:
        resumed = have > 0 and resp.status == 206
        if have and not resumed:
            log.info("server ignored the Range request for %s: starting over", entry.name)
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else entry.size
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=entry.name, disable=quiet,
                leave=False) as bar:
            try:
                while block := resp.read(1 << 20):
                    f.write(block)
                    bar.update(len(block))
            except OSError as e:  # keep the .part file: the next call resumes it
                raise CheckpointError(f"download of {entry.name} interrupted ({e}): run the command again "
                                      "to resume") from e
    return resumed


# ------------------------------------------------------------------------------------------------ resolving
def _download_hint(needed_by: str | None, key: str) -> str:
    """What the user can do about a missing model: the download command and a local copy."""
    if needed_by:
        local = f"`--model-dir {key}=PATH` or {env_var(key)}"
        return f"run `saganet weights download {needed_by}` with internet access, or give a local copy with {local}"
    return (f"run `saganet weights download {key}` with internet access, or give a local copy with "
            f"{env_var(key)}=PATH")


def _user_copy_error(src: ModelSource) -> CheckpointError:
    return CheckpointError(f"{src.key} from {src.where}: {src.problem}; fix the path or remove the setting")


def resolve(name: str, offline: bool | None = None, registry: Mapping[str, WeightFile] | None = None,
            quiet: bool = False, needed_by: str | None = None,
            model_dirs: Mapping[str, str | os.PathLike] | None = None) -> Path:
    """Path of a registry file: a user-given copy, else the cache, else downloaded into it (unless offline).

    Offline and missing -> `CheckpointError` naming the cache folder and `saganet weights download
    VARIANT` (`needed_by`). A present file is not re-hashed here (use `verify`).
    """
    entry = _entry(name, registry)
    src = _file_source(entry, local_dirs(model_dirs))
    if src.local and src.problem:
        raise _user_copy_error(src)
    if src.present:
        log.debug("%s from %s (%s)", name, src.path, src.origin)
        return src.path
    if is_offline() if offline is None else offline:
        raise CheckpointError(f"weights file {entry.name} not found in {cache_dir()} and {_offline_reason()}: "
                              f"{_download_hint(needed_by, entry.name)}")
    return download(entry.name, registry=registry, quiet=quiet)


def resolve_hub(model: str | HubModel, offline: bool | None = None, needed_by: str | None = None,
                model_dirs: Mapping[str, str | os.PathLike] | None = None, quiet: bool = False) -> Path:
    """Local folder of a hub model: a user-given copy, else the Hugging Face cache, else downloaded into
    it (unless offline); `CheckpointError` if unavailable."""
    hub = hub_model(model)
    src = _hub_source(hub, local_dirs(model_dirs))
    if src.local and src.problem:
        raise _user_copy_error(src)
    if src.present:
        log.debug("%s from %s (%s)", hub.repo_id, src.path, src.origin)
        return src.path
    if is_offline() if offline is None else offline:
        raise CheckpointError(f"model {hub.repo_id} is not in the Hugging Face cache ({hub_cache_dir()}) and "
                              f"{_offline_reason()}: {_download_hint(needed_by, hub.key)}")
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        cache = hub_cache_dir()
        if hub.files:  # one progress bar per file (huggingface_hub's)
            paths = [Path(hf_hub_download(hub.repo_id, f, cache_dir=cache)) for f in hub.files]
            return paths[0].parent
        return Path(snapshot_download(hub.repo_id, cache_dir=cache))
    except Exception as e:  # huggingface_hub raises many types (missing, HTTP, connection); one message for all
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"model {hub.repo_id} unavailable: download failed ({why}); "
                              f"{_download_hint(needed_by, hub.key)}") from e
    finally:
        if quiet and not was_disabled:
            enable_progress_bars()


def resolve_model(key: str | HubModel, offline: bool | None = None, needed_by: str | None = None,
                  model_dirs: Mapping[str, str | os.PathLike] | None = None, quiet: bool = False) -> Path:
    """A registry file's path or a hub model's folder, by key (the entry point for any loader)."""
    if isinstance(key, str) and key in REGISTRY:
        return resolve(key, offline=offline, quiet=quiet, needed_by=needed_by, model_dirs=model_dirs)
    return resolve_hub(key, offline=offline, needed_by=needed_by, model_dirs=model_dirs, quiet=quiet)


# ------------------------------------------------------------------------------------------------ import
def top_level(path: str | os.PathLike) -> list[str] | None:
    """Top-level keys of a checkpoint (`torch.load(weights_only=True, mmap=True)`, so GB files are not read
    into memory), or None when it holds a bare tensor. Unreadable -> `CheckpointError`."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # truncated, not a torch file, unsafe pickle
        raise CheckpointError(f"{Path(path).name} is not a readable PyTorch checkpoint "
                              f"({type(e).__name__}): it is corrupt or not a weights file") from e
    if isinstance(obj, torch.Tensor):
        return None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{Path(path).name} holds a {type(obj).__name__}, not a dict of tensors")
    return [str(k) for k in obj]


def layout_problems(keys: list[str] | None, layout: tuple[str, ...]) -> list[str]:
    """What the top-level `keys` (None: a bare tensor) lack of `layout` (see `WeightFile.layout`)."""
    if layout == ("<tensor>",):
        return [] if keys is None else ["a bare tensor"]
    if keys is None:
        return list(layout) or ["a dict"]
    missing = []
    for want in layout:
        if want.endswith(".*"):
            if not any(k.startswith(want[:-1]) for k in keys):
                missing.append(want)
        elif want not in keys:
            missing.append(want)
    return missing


def check_layout(path: str | os.PathLike, layout: tuple[str, ...], what: str) -> None:
    """`CheckpointError` naming the missing top-level keys when `path` does not have `layout`."""
    if not layout:
        return
    keys = top_level(path)
    missing = layout_problems(keys, layout)
    if missing:
        has = "a bare tensor" if keys is None else f"top-level keys {sorted(keys)[:6]}"
        raise CheckpointError(f"{Path(path).name} does not have the layout of {what}: missing {', '.join(missing)} "
                              f"(it has {has})")


@dataclass(frozen=True)
class ImportResult:
    name: str
    path: Path
    action: Literal["imported", "replaced", "already-present"]
    md5_checked: bool


def identify(path: str | os.PathLike, registry: Mapping[str, WeightFile] | None = None) -> tuple[WeightFile, str]:
    """The registry entry of a hand-downloaded file (by name, else by MD5) and the file's MD5."""
    reg = REGISTRY if registry is None else registry
    p = Path(path)
    digest = md5sum(p)
    if p.name in reg:
        return reg[p.name], digest
    for e in reg.values():
        if e.md5 == digest:
            return e, digest
    raise CheckpointError(f"{p.name} is not a released file (its name and MD5 {digest} match no registry entry): "
                          "use fine-tuned weights directly with `saganet generate --weights FILE`")


def import_file(path: str | os.PathLike, registry: Mapping[str, WeightFile] | None = None,
                overwrite: bool = False) -> ImportResult:
    """Check a hand-downloaded released file (layout, then MD5) and copy it atomically into the cache.

    A good copy already in the cache is kept (nothing copied); a cached file that fails its MD5 is
    replaced; a cached file that cannot be checked (no published MD5) is only replaced with `overwrite`.
    """
    src = Path(path)
    if not src.is_file():
        raise InputError(f"{src} is not a file: give the path of a downloaded weights file")
    entry, digest = identify(src, registry)
    check_layout(src, entry.layout, f"the released {entry.name}")
    if entry.md5 is not None and digest != entry.md5:
        raise CheckpointError(f"{src.name} fails its MD5 check (md5 {digest}, expected {entry.md5}): the download "
                              f"is corrupt or incomplete, or it is another file; nothing was imported")
    dest = cache_dir() / entry.name
    action: Literal["imported", "replaced", "already-present"] = "imported"
    if dest.exists():
        if md5sum(dest) == digest:
            return ImportResult(entry.name, dest, "already-present", entry.md5 is not None)
        if entry.md5 is None and not overwrite:  # no published MD5 tells which copy is right
            raise InputError(f"{dest} already exists and differs from {src}: pass --overwrite to replace it")
        action = "replaced"  # with an MD5: the cached copy differs from the good file, so it is bad
        log.warning("replacing %s (%s)", dest, "it fails its MD5 check" if entry.md5 else "--overwrite")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.import")
    try:
        shutil.copyfile(src, tmp)
        if md5sum(tmp) != digest:  # the copy itself went wrong (disk full, changing source)
            raise CheckpointError(f"copying {src} to {dest.parent} changed its contents; try again")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return ImportResult(entry.name, dest, action, entry.md5 is not None)
