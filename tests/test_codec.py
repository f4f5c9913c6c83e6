"""MelVAECodec with tiny random models: latent/waveform lengths per the SequenceConfig rule, loaders."""

import pytest
import torch

from saganet.codec import AudioCodec, MelVAECodec, load_vae
from saganet.errors import CheckpointError
from saganet.models.bigvgan import BigVGAN, BigVGANConfig
from saganet.models.mel import MelConverter
from saganet.models.vae import VAE, VAEConfig

# Latent lengths ceil(seconds * sr / hop / 2) (reference SequenceConfig; 16 kHz: hop 256, 44.1 kHz: hop 512),
# worked out by hand: 16 kHz 1 s 31.25 -> 32, 5 s 156.25 -> 157, 8 s 250; 44.1 kHz 1 s 43.07 -> 44, 5 s
# 215.33 -> 216, 8 s 344.53 -> 345. 250, 157, 216 and 345 are also in the reference's own table.
KNOWN = {("16k", 1): 32, ("16k", 5): 157, ("16k", 8): 250, ("44k", 1): 44, ("44k", 5): 216, ("44k", 8): 345}


@pytest.fixture(scope="module", params=["16k", "44k"])
def codec(request) -> MelVAECodec:
    return MelVAECodec.tiny(request.param)


@pytest.mark.parametrize("seconds", [1, 5, 8])
def test_roundtrip_shapes(codec, seconds):
    mode = "16k" if codec.sample_rate == 16000 else "44k"
    assert isinstance(codec, AudioCodec)
    mel_hop = codec.mel.hop_size
    assert codec.hop_length == 2 * mel_hop
    n = KNOWN[(mode, seconds)]
    assert codec.hop_length == {"16k": 512, "44k": 1024}[mode]
    wav = torch.rand(1, seconds * codec.sample_rate) * 2 - 1
    post = codec.encode(wav)
    assert post.mean.shape == post.std.shape == (1, n, codec.latent_dim)  # channel-last
    mel = codec.decode(post.mean)
    assert mel.shape == (1, codec.mel.num_mels, 2 * n)
    out = codec.vocode(mel)
    assert out.shape == (1, n * codec.hop_length) and out.abs().max() <= 1
    assert torch.equal(codec.latents_to_wav(post.mean), out)


def test_tiny_is_seeded():
    a, b = MelVAECodec.tiny("16k", seed=1), MelVAECodec.tiny("16k", seed=1)
    z = torch.randn(1, 4, a.latent_dim)
    assert torch.equal(a.latents_to_wav(z), b.latents_to_wav(z))
    assert a.latent_dim == 20 and MelVAECodec.tiny("44k", latent_dim=8).latent_dim == 8


def test_parts_must_agree():
    mel = MelConverter.from_preset("16k")
    voc = BigVGAN(BigVGANConfig(80, [16, 16], [32, 32], 8, [3], [[1]]), version=1)
    with pytest.raises(ValueError, match="mel bins"):
        MelVAECodec(mel, VAE(64, 4, 8), voc)
    voc_bad_hop = BigVGAN(BigVGANConfig(80, [4, 4], [8, 8], 8, [3], [[1]]), version=1)
    with pytest.raises(ValueError, match="hop"):
        MelVAECodec(mel, VAE(80, 4, 8), voc_bad_hop)


def test_load_vae_file_and_missing_files(tmp_path):
    torch.manual_seed(0)
    src = VAE(16, 4, 8)
    torch.save(src.state_dict(), tmp_path / "v1-tiny.pth")
    vae = load_vae(tmp_path / "v1-tiny.pth", VAEConfig(16, 4, 8), need_encoder=False)
    src.remove_weight_norm()
    z = torch.randn(1, 4, 5)
    assert torch.equal(vae.decode(z), src.decode(z)) and vae.encoder is None
    with pytest.raises(CheckpointError, match="not found"):
        MelVAECodec.from_files("44k", tmp_path / "v1-44.pth")
    with pytest.raises(CheckpointError, match="best_netG"):
        MelVAECodec.from_files("16k", tmp_path / "v1-16.pth")  # no vocoder given
    with pytest.raises(ValueError, match="mode"):
        MelVAECodec.from_files("22k", tmp_path / "v1-16.pth")
