"""Weights manager against a loopback HTTP server (Range support): download, resume, tamper, offline, verify."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading

import pytest

from saganet import weights
from saganet.errors import CheckpointError, SaganetError
from saganet.weights import WeightFile

PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Server:
    """Serves `files` on 127.0.0.1; honours `Range: bytes=N-` unless `ranges` is False; logs requests."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.ranges = True
        self.log: list[tuple[str, str | None]] = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                name = self.path.lstrip("/").split("/")[-1]
                rng = self.headers.get("Range")
                srv.log.append((name, rng))
                if name not in srv.files:
                    self.send_error(404)
                    return
                data = srv.files[name]
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and srv.ranges:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    data = data[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def _server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def server(_server):
    _server.files = {"tiny.pth": PAYLOAD}
    _server.ranges = True
    _server.log = []
    return _server


@pytest.fixture
def registry(server, monkeypatch, tmp_path):
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SAGANET_WEIGHTS_URL", raising=False)
    monkeypatch.delenv("SAGANET_OFFLINE", raising=False)
    reg = {"tiny.pth": WeightFile("tiny.pth", f"{server.url}/files/tiny.pth", MD5, len(PAYLOAD)),
           "nomd5.pth": WeightFile("nomd5.pth", f"{server.url}/files/nomd5.pth", None)}
    monkeypatch.setattr(weights, "REGISTRY", reg)
    return reg


def test_download_ok(server, registry, tmp_path):
    p = weights.download("tiny.pth", quiet=True)
    assert p == tmp_path / "home" / "weights" / "tiny.pth" and p.read_bytes() == PAYLOAD
    assert not list(p.parent.glob("*.part"))
    assert weights.verify("tiny.pth") and weights.verify(p)
    n = len(server.log)
    assert weights.download("tiny.pth", quiet=True) == p and len(server.log) == n  # verified, not fetched


def test_resume_from_partial(server, registry, tmp_path):
    folder = tmp_path / "home" / "weights"
    folder.mkdir(parents=True)
    (folder / "tiny.pth.part").write_bytes(PAYLOAD[:4000])
    p = weights.download("tiny.pth", quiet=True)
    assert p.read_bytes() == PAYLOAD
    assert server.log == [("tiny.pth", "bytes=4000-")]


def test_resume_complete_part_gets_416(server, registry, tmp_path):
    folder = tmp_path / "home" / "weights"
    folder.mkdir(parents=True)
    (folder / "tiny.pth.part").write_bytes(PAYLOAD)
    assert weights.download("tiny.pth", quiet=True).read_bytes() == PAYLOAD


def test_server_without_range_restarts(server, registry, tmp_path):
    server.ranges = False
    folder = tmp_path / "home" / "weights"
    folder.mkdir(parents=True)
    (folder / "tiny.pth.part").write_bytes(b"x" * 100)
    assert weights.download("tiny.pth", quiet=True).read_bytes() == PAYLOAD


def test_tampered_download_rejected(server, registry, tmp_path):
    server.files["tiny.pth"] = PAYLOAD[:-1] + b"\x00"
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        weights.download("tiny.pth", quiet=True)
    folder = tmp_path / "home" / "weights"
    assert not (folder / "tiny.pth").exists() and not (folder / "tiny.pth.part").exists()


def test_tampered_partial_restarts_from_scratch(server, registry, tmp_path):
    folder = tmp_path / "home" / "weights"
    folder.mkdir(parents=True)
    (folder / "tiny.pth.part").write_bytes(b"\xff" * 3000)  # a corrupt partial file
    assert weights.download("tiny.pth", quiet=True).read_bytes() == PAYLOAD
    assert server.log == [("tiny.pth", "bytes=3000-"), ("tiny.pth", None)]


def test_existing_bad_file_is_replaced(server, registry, tmp_path):
    folder = tmp_path / "home" / "weights"
    folder.mkdir(parents=True)
    (folder / "tiny.pth").write_bytes(b"tampered")
    assert not weights.verify("tiny.pth")
    assert weights.download("tiny.pth", quiet=True).read_bytes() == PAYLOAD


def test_no_md5_file_and_404(server, registry):
    server.files["nomd5.pth"] = b"abc"
    assert weights.download("nomd5.pth", quiet=True).read_bytes() == b"abc"
    assert weights.verify("nomd5.pth")
    del server.files["tiny.pth"]
    with pytest.raises(CheckpointError, match="HTTP 404"):
        weights.download("tiny.pth", quiet=True)


def test_base_url_override(server, registry, monkeypatch):
    registry["tiny.pth"] = WeightFile("tiny.pth", "http://127.0.0.1:9/unreachable/tiny.pth", MD5)
    monkeypatch.setenv("SAGANET_WEIGHTS_URL", f"{server.url}/mirror/")
    assert weights.resolve("tiny.pth", offline=False, quiet=True).read_bytes() == PAYLOAD


def test_resolve_offline_message(registry, monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "REGISTRY", dict(weights.REGISTRY, **{"saganet.pth": WeightFile(
        "saganet.pth", "http://127.0.0.1:9/x", "4f3a0ebe86bdf956db289894ec531f5e")}))
    with pytest.raises(CheckpointError) as e:
        weights.resolve("saganet.pth", offline=True, needed_by="saganet_small")
    msg = str(e.value)
    assert "\n" not in msg and "saganet.pth not found in" in msg and str(tmp_path / "home") in msg
    assert "`saganet weights download saganet_small`" in msg
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="not found"):
        weights.resolve("saganet.pth")
    with pytest.raises(CheckpointError, match="unknown weights file"):
        weights.resolve("nope.pth", offline=True)


def test_resolve_existing_file_offline(server, registry):
    weights.download("tiny.pth", quiet=True)
    assert weights.resolve("tiny.pth", offline=True).read_bytes() == PAYLOAD


def test_unreachable_server(registry):
    registry["tiny.pth"] = WeightFile("tiny.pth", "http://127.0.0.1:9/tiny.pth", MD5)
    with pytest.raises(CheckpointError, match="download of tiny.pth failed"):
        weights.download("tiny.pth", quiet=True, timeout=5)


def test_registry_facts():
    reg = weights.REGISTRY
    assert reg["saganet.pth"].md5 == "4f3a0ebe86bdf956db289894ec531f5e"
    assert reg["saganet_no_lora.pth"].md5 == "c9fe7b24c6c72574feac27731575d99e"
    assert reg["saganet.pth"].url == f"{weights.SAGANET_PUB_URL}/ckpts/saganet.pth"
    assert reg["v1-44.pth"].md5 == "fab020275fa44c6589820ce025191600"
    assert reg["mmaudio_small_44k.pth"].url.startswith("https://huggingface.co/hkchengrex/MMAudio/resolve/main/")
    assert reg["empty_string.pth"].md5 is None
    assert all(re.fullmatch(r"[0-9a-f]{32}", f.md5) for f in reg.values() if f.md5)
    assert len(reg) == 12
    assert weights.HUB_MODELS["clip"].repo_id == "apple/DFN5B-CLIP-ViT-H-14-384"
    assert weights.HUB_MODELS["clip"].files == ("open_clip_config.json", "open_clip_pytorch_model.bin")
    assert weights.HUB_MODELS["bigvgan_v2"].repo_id == "nvidia/bigvgan_v2_44khz_128band_512x"
    assert weights.HUB_MODELS["bigvgan_v2"].files == ("config.json", "bigvgan_generator.pt")
    # the segmenters' hub models go through the same mechanism
    assert weights.HUB_MODELS["sam2.1-tiny"].repo_id == "facebook/sam2.1-hiera-tiny"
    assert weights.HUB_MODELS["grounding-dino-tiny"].repo_id == "IDEA-Research/grounding-dino-tiny"
    # layouts checked by `saganet weights import` (the reference's top-level keys)
    assert reg["saganet.pth"].layout == ("network", "synchformer", "lora")
    assert reg["best_netG.pt"].layout == ("generator",)
    assert reg["synchformer_state_dict.pth"].layout == ("vfeat_extractor.*",)


def test_sizes_are_the_parameter_counts():
    """Approximate sizes = fp32 parameter counts of the reference manifests (DiT + SynchformerWithContext)."""
    dit_lora, dit, enc = 157_753_208, 157_409_144, 207_890_712  # mmaudio_small_44k_sa(_no_lora), context encoder
    assert abs(weights.REGISTRY["saganet.pth"].size - 4 * (dit_lora + 344_064 + enc)) < 2e6  # + the "lora" copy
    assert abs(weights.REGISTRY["saganet_no_lora.pth"].size - 4 * (dit + enc)) < 2e6
    assert abs(weights.HUB_MODELS["bigvgan_v2"].size - 4 * 122_187_145) < 2e6


def test_variants():
    from saganet import registry

    assert registry.variant_files("saganet_small")[0] == "saganet.pth"
    assert registry.variant_files("small_44k_sa") == registry.variant_files("saganet_small")
    assert "v1-44.pth" in registry.variant_files("saganet_small_no_lora")
    assert "saganet_no_lora.pth" in registry.variant_files("small_44k_sa_no_lora")
    assert set(registry.variant_files("small_16k")) >= {"mmaudio_small_16k.pth", "v1-16.pth", "best_netG.pt"}
    # SAGANet generation never reads MMAudio's Synchformer: it is a training start point only
    assert "synchformer_state_dict.pth" not in registry.variant_files("saganet_small")
    assert "synchformer_state_dict.pth" in registry.variant_files("saganet_small", training=True)
    assert "empty_string.pth" in registry.variant_files("saganet_small", training=True)
    assert registry.variant_files("toy") == [] and registry.variant_hub_models("toy") == []
    assert registry.variant_hub_models("large_44k_v2") == ["clip", "bigvgan_v2"]
    assert registry.variant_models("saganet_small") == ["saganet.pth", "v1-44.pth", "clip", "bigvgan_v2"]
    assert registry.variant_hub_models("small_16k") == ["clip"]  # 16k: BigVGAN v1 is best_netG.pt
    for v in registry.VARIANTS:
        assert all(f in weights.REGISTRY for f in registry.variant_files(v, training=True))
        assert all(h in weights.HUB_MODELS for h in registry.variant_hub_models(v))
    with pytest.raises(SaganetError, match="unknown variant"):
        registry.variant_files("huge_96k")
