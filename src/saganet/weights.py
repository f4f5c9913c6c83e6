"""Released weights: registry (URL, MD5, size), local cache, resumable verified downloads, HF hub models.

Cache folder: `$SAGANET_HOME/weights` (default: the platform's user cache folder `saganet`). Set
`SAGANET_WEIGHTS_URL` to fetch every file from `{SAGANET_WEIGHTS_URL}/{name}` instead (a mirror, or a test
server). Offline (`SAGANET_OFFLINE=1` or `HF_HUB_OFFLINE=1`, or `offline=True`) nothing is downloaded and a
missing file is a one-line `CheckpointError` that says which command fetches it.

Downloads go to `<name>.part` (resumed with an HTTP Range request if present), are MD5-checked, and only
then renamed to the final name, so a corrupt or tampered file is never left under the final name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from saganet.errors import CheckpointError

log = logging.getLogger(__name__)

SAGANET_PUB_URL = "https://a3s.fi/swift/v1/AUTH_a235c0f452d648828f745589cde1219a/saganet_public"
_HF_MMAUDIO = "https://huggingface.co/hkchengrex/MMAudio/resolve/main/weights"
_GH_MMAUDIO = "https://github.com/hkchengrex/MMAudio/releases/download/v0.1"
_M = 1_000_000
_G = 1_000_000_000


@dataclass(frozen=True)
class WeightFile:
    """One released file. `size` is approximate (bytes, from the docs) and only informative."""

    name: str
    url: str
    md5: str | None
    size: int | None = None


@dataclass(frozen=True)
class HubModel:
    """A model fetched from the Hugging Face hub (cached by huggingface_hub, not by us)."""

    key: str
    repo_id: str
    files: tuple[str, ...] = ()  # empty: the whole snapshot


REGISTRY: dict[str, WeightFile] = {f.name: f for f in (
    WeightFile("mmaudio_small_16k.pth", f"{_HF_MMAUDIO}/mmaudio_small_16k.pth", "af93cde404179f58e3919ac085b8033b", 601 * _M),
    WeightFile("mmaudio_small_44k.pth", f"{_HF_MMAUDIO}/mmaudio_small_44k.pth", "babd74c884783d13701ea2820a5f5b6d", 601 * _M),
    WeightFile("mmaudio_medium_44k.pth", f"{_HF_MMAUDIO}/mmaudio_medium_44k.pth", "5a56b6665e45a1e65ada534defa903d0", int(2.4 * _G)),
    WeightFile("mmaudio_large_44k.pth", f"{_HF_MMAUDIO}/mmaudio_large_44k.pth", "fed96c325a6785b85ce75ae1aafd2673", int(3.9 * _G)),
    WeightFile("mmaudio_large_44k_v2.pth", f"{_HF_MMAUDIO}/mmaudio_large_44k_v2.pth", "01ad4464f049b2d7efdaa4c1a59b8dfe", int(3.9 * _G)),
    WeightFile("v1-16.pth", f"{_GH_MMAUDIO}/v1-16.pth", "69f56803f59a549a1a507c93859fd4d7", 655 * _M),
    WeightFile("best_netG.pt", f"{_GH_MMAUDIO}/best_netG.pt", "eeaf372a38a9c31c362120aba2dde292", 429 * _M),
    WeightFile("v1-44.pth", f"{_GH_MMAUDIO}/v1-44.pth", "fab020275fa44c6589820ce025191600", int(1.2 * _G)),
    WeightFile("synchformer_state_dict.pth", f"{_GH_MMAUDIO}/synchformer_state_dict.pth", "5b2f5594b0730f70e41e549b7c94390c", 907 * _M),
    # Not in the reference's download list (no MD5 published); needed for training only.
    WeightFile("empty_string.pth", f"{_GH_MMAUDIO}/empty_string.pth", None, None),
    # Sizes not published; estimated ~1.45 GB fp32 (DiT ~0.63 GB + synchformer ~0.83 GB).
    WeightFile("saganet.pth", f"{SAGANET_PUB_URL}/ckpts/saganet.pth", "4f3a0ebe86bdf956db289894ec531f5e", None),
    WeightFile("saganet_no_lora.pth", f"{SAGANET_PUB_URL}/ckpts/saganet_no_lora.pth", "c9fe7b24c6c72574feac27731575d99e", None),
)}

HUB_MODELS: dict[str, HubModel] = {
    "clip": HubModel("clip", "apple/DFN5B-CLIP-ViT-H-14-384"),
    "bigvgan_v2": HubModel("bigvgan_v2", "nvidia/bigvgan_v2_44khz_128band_512x",
                           ("config.json", "bigvgan_generator.pt")),
}

def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on")


def is_offline() -> bool:
    return _truthy(os.environ.get("SAGANET_OFFLINE")) or _truthy(os.environ.get("HF_HUB_OFFLINE"))


def cache_dir() -> Path:
    """`$SAGANET_HOME/weights`, default `<user cache>/saganet/weights`."""
    home = os.environ.get("SAGANET_HOME")
    if not home:
        import platformdirs

        home = platformdirs.user_cache_dir("saganet")
    return Path(home).expanduser() / "weights"


def _entry(name: str, registry: dict[str, WeightFile] | None) -> WeightFile:
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


def verify(path_or_name: str | os.PathLike, registry: dict[str, WeightFile] | None = None) -> bool:
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


def _download_hint(needed_by: str | None) -> str:
    cmd = f"saganet weights download {needed_by}" if needed_by else "saganet weights download VARIANT"
    return f"run `{cmd}` with internet access"


def resolve(name: str, offline: bool | None = None, registry: dict[str, WeightFile] | None = None,
            quiet: bool = False, needed_by: str | None = None) -> Path:
    """Path of a registry file in the cache, downloading it unless offline.

    Offline and missing -> `CheckpointError`: "weights file X not found in CACHE: run
    `saganet weights download VARIANT`". A present file is not re-hashed here (use `verify`).
    """
    entry = _entry(name, registry)
    path = cache_dir() / entry.name
    if path.is_file():
        return path
    if is_offline() if offline is None else offline:
        raise CheckpointError(f"weights file {entry.name} not found in {cache_dir()}: {_download_hint(needed_by)}")
    return download(entry.name, registry=registry, quiet=quiet)


def resolve_hub(model: str | HubModel, offline: bool | None = None, needed_by: str | None = None) -> Path:
    """Local folder of a HF hub model (download unless offline); `CheckpointError` if unavailable."""
    hub = HUB_MODELS[model] if isinstance(model, str) else model
    off = is_offline() if offline is None else offline
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        if hub.files:
            paths = [Path(hf_hub_download(hub.repo_id, f, local_files_only=off)) for f in hub.files]
            return paths[0].parent
        return Path(snapshot_download(hub.repo_id, local_files_only=off))
    except Exception as e:  # huggingface_hub raises many types (offline, missing, HTTP); one message for all
        how = ("it is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE or SAGANET_OFFLINE "
               "is set)" if off else f"download failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        raise CheckpointError(f"model {hub.repo_id} unavailable: {how}; {_download_hint(needed_by)}") from e
