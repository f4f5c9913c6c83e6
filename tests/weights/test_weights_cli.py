"""`saganet weights list / download / import` on tiny released-format files."""

from __future__ import annotations

import hashlib
import re
import shutil

import pytest
import torch

from saganet import registry, weights
from saganet.app.cli import main
from saganet.app.commands.weights import human_size
from saganet.weights import WeightFile


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture()
def tiny_registry(released, monkeypatch, server_url="http://127.0.0.1:9"):
    """The registry with the MD5s and sizes of the tiny released-format files (same names and layouts)."""
    reg = {n: WeightFile(n, f"{server_url}/{n}", md5(p) if e.md5 else None, e.size, e.layout)
           for n, e in weights.REGISTRY.items() if (p := released.get(n)) is not None}
    monkeypatch.setattr(weights, "REGISTRY", reg)
    return reg


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _lines(out: str, variant: str) -> list[str]:
    block = out.split(f"\n{variant}: ", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()[1:]


# ------------------------------------------------------------------------------------------------ list
@pytest.mark.parametrize("variant", list(registry.VARIANTS))
def test_list_each_variant_from_the_registry(variant, capsys):
    """Nothing present: every model of the variant, 'missing', the registry's size marked approximate."""
    code, out, _ = run(capsys, "weights", "list", variant)
    assert code == 0
    lines = _lines(out, variant)
    keys = registry.variant_models(variant)
    if not keys:
        assert lines == ["  ships with the package: nothing to download"]
        return
    rows = lines[:-1]
    assert [r.split()[0] for r in rows] == keys
    assert all(" missing " in r for r in rows)
    sizes = [weights.REGISTRY[k].size if k in weights.REGISTRY else weights.HUB_MODELS[k].size for k in keys]
    assert lines[-1].startswith(f"  total {human_size(sum(s or 0 for s in sizes), exact=False)}, {len(keys)} missing")
    if registry.is_segaware(variant):
        assert "synchformer_state_dict.pth" not in out
        _, out_t, _ = run(capsys, "weights", "list", variant, "--for-training")
        assert "synchformer_state_dict.pth" in out_t and "mmaudio_small_44k.pth" in out_t


def test_saganet_small_total_is_about_7_gb(capsys):
    """The README figure: saganet.pth + v1-44.pth + DFN5B CLIP + BigVGAN v2 from the registry's sizes."""
    _, out, _ = run(capsys, "weights", "list", "saganet_small")
    total = _lines(out, "saganet_small")[-1]
    gb = float(re.search(r"total ~([\d.]+) GB", total).group(1))
    assert 6.8 < gb < 7.3, total


def test_list_present_files_real_sizes(released, capsys):
    root = released["saganet.pth"].parent
    code, out, _ = run(capsys, "weights", "list", "saganet_small", "--model-dir", f"all={root}")
    lines = _lines(out, "saganet_small")
    assert code == 0 and all(" present " in r and "--model-dir all=" in r for r in lines[:-1])
    real = (released["saganet.pth"].stat().st_size + released["v1-44.pth"].stat().st_size
            + sum(p.stat().st_size for p in released["clip"].iterdir())
            + sum(p.stat().st_size for p in released["bigvgan_v2"].iterdir()))
    assert lines[-1] == f"  total {human_size(real)}, everything present"
    assert human_size(released["saganet.pth"].stat().st_size) in lines[0] and "~" not in lines[0]


def test_list_all_variants_and_other_models(capsys):
    code, out, _ = run(capsys, "weights", "list")
    assert code == 0
    for v in registry.VARIANTS:
        assert f"\n{v}: " in out
    for key in ("sam2.1-tiny", "sam2.1-large", "grounding-dino-tiny"):
        assert re.search(rf"^  {re.escape(key)} ", out, re.M)
    assert "apple/DFN5B-CLIP-ViT-H-14-384" in out and str(weights.cache_dir()) in out


# ------------------------------------------------------------------------------------------------ import
def test_import_good_file(released, tiny_registry, capsys, tmp_path):
    src = tmp_path / "downloads" / "saganet.pth"
    src.parent.mkdir()
    shutil.copyfile(released["saganet.pth"], src)
    code, out, err = run(capsys, "weights", "import", src)
    dest = weights.cache_dir() / "saganet.pth"
    assert code == 0, err
    assert "imported" in out and "MD5 checked" in out and md5(dest) == md5(src)
    assert src.is_file()  # the input is copied, never moved
    assert not [p for p in dest.parent.iterdir() if p.name != "saganet.pth"]  # no temporary left
    code, out, _ = run(capsys, "weights", "import", src)
    assert code == 0 and "already in the cache" in out
    # a renamed copy is recognised by its MD5
    renamed = tmp_path / "downloads" / "v1-44 (1).pth"
    shutil.copyfile(released["v1-44.pth"], renamed)
    assert run(capsys, "weights", "import", renamed)[0] == 0
    assert md5(weights.cache_dir() / "v1-44.pth") == md5(renamed)


def test_import_corrupt_file(released, tiny_registry, capsys, tmp_path):
    """Right name and layout, other bytes (another file or a bad download): MD5 error, nothing imported."""
    ckpt = torch.load(released["saganet.pth"], weights_only=True)
    ckpt["network"]["final_layer.conv.bias"] += 1
    bad = tmp_path / "saganet.pth"
    torch.save(ckpt, bad)
    code, _, err = run(capsys, "weights", "import", bad)
    assert code == 2 and "fails its MD5 check" in err and "nothing was imported" in err
    assert not (weights.cache_dir() / "saganet.pth").exists()
    truncated = tmp_path / "t" / "v1-44.pth"
    truncated.parent.mkdir()
    truncated.write_bytes(released["v1-44.pth"].read_bytes()[:5000])
    code, _, err = run(capsys, "weights", "import", truncated)
    assert code == 2 and "not a readable PyTorch checkpoint" in err and len(err.strip().splitlines()) == 1


def test_import_wrong_layout(released, tiny_registry, capsys, tmp_path):
    wrong = tmp_path / "saganet.pth"
    torch.save({"network": {}, "lora": {}}, wrong)
    code, _, err = run(capsys, "weights", "import", wrong)
    assert code == 2 and "does not have the layout of the released saganet.pth" in err and "missing synchformer" in err
    vae = tmp_path / "v" / "v1-44.pth"
    vae.parent.mkdir()
    torch.save({"generator": {}}, vae)
    code, _, err = run(capsys, "weights", "import", vae)
    assert code == 2 and "missing data_mean, data_std, decoder.*" in err
    assert not weights.cache_dir().exists() or not list(weights.cache_dir().iterdir())


def test_import_unknown_file_points_to_generate_weights(tiny_registry, capsys, tmp_path):
    mine = tmp_path / "my_finetune.pth"
    torch.save({"network": {}, "synchformer": {}}, mine)
    code, _, err = run(capsys, "weights", "import", mine)
    assert code == 2 and "not a released file" in err and "saganet generate --weights FILE" in err


def test_import_replaces_bad_cached_copy_but_asks_for_unchecked_ones(released, tiny_registry, capsys, tmp_path):
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / "v1-44.pth").write_bytes(b"half a download")
    code, out, _ = run(capsys, "weights", "import", released["v1-44.pth"])
    assert code == 0 and "replaced" in out and md5(cache / "v1-44.pth") == md5(released["v1-44.pth"])
    # empty_string.pth has no published MD5: a differing cached copy is only replaced with --overwrite
    torch.save(torch.zeros(1, 77, 24), cache / "empty_string.pth")
    before = md5(cache / "empty_string.pth")
    code, _, err = run(capsys, "weights", "import", released["empty_string.pth"])
    assert code == 2 and "--overwrite" in err and md5(cache / "empty_string.pth") == before
    code, out, _ = run(capsys, "weights", "import", released["empty_string.pth"], "--overwrite")
    assert code == 0 and "no published MD5" in out and md5(cache / "empty_string.pth") == md5(released["empty_string.pth"])


# ------------------------------------------------------------------------------------------------ download
def test_download_fetches_exactly_the_generation_set(released, tiny_registry, capsys, monkeypatch):
    from test_weights import Server

    server = Server()
    try:
        server.files = {n: released[n].read_bytes() for n in tiny_registry}
        monkeypatch.setenv("SAGANET_WEIGHTS_URL", server.url)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        dirs = ("--model-dir", f"clip={released['clip']}", "--model-dir", f"bigvgan={released['bigvgan_v2']}")
        code, out, err = run(capsys, "weights", "download", "saganet_small", *dirs, "-q")
        assert code == 0, err
        assert sorted(n for n, _ in server.log) == ["saganet.pth", "v1-44.pth"]
        plan = out.split("total", 1)[0]
        assert "saganet.pth" in plan and "~1.47 GB" in plan and "clip" in plan  # sizes shown up front
        assert md5(weights.cache_dir() / "saganet.pth") == md5(released["saganet.pth"])
        server.log.clear()
        code, out, err = run(capsys, "weights", "download", "saganet", "--for-training", *dirs, "-q")
        assert code == 0, err
        assert sorted(n for n, _ in server.log) == ["empty_string.pth", "mmaudio_small_44k.pth",
                                                    "synchformer_state_dict.pth"]
    finally:
        server.close()


def test_download_one_model_and_bad_names(released, capsys, tmp_path):
    from conftest import hf_cache_layout

    snap = hf_cache_layout(weights.hub_cache_dir(), "apple/DFN5B-CLIP-ViT-H-14-384", released["clip"])
    code, out, _ = run(capsys, "weights", "download", "clip")
    assert code == 0 and str(snap) in out
    code, _, err = run(capsys, "weights", "download", "sam2")  # offline, not cached: one line naming the fix
    assert code == 2 and "facebook/sam2.1-hiera-tiny" in err and "saganet weights download sam2.1-tiny" in err
    for bad in ("huge_99k", "my_model.pth"):
        code, _, err = run(capsys, "weights", "download", bad)
        assert code == 2 and "neither a variant" in err and "saganet_small" in err and "sam2.1-tiny" in err


def test_verify_cached_files(released, tiny_registry, capsys):
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    shutil.copyfile(released["saganet.pth"], cache / "saganet.pth")
    (cache / "v1-44.pth").write_bytes(b"bad")
    code, out, _ = run(capsys, "weights", "verify")
    assert code == 1 and re.search(r"^ok .*saganet.pth$", out, re.M) and re.search(r"^BAD .*v1-44.pth$", out, re.M)
