"""Embedding models on hand-made signals: shapes, resampling, windowing, front ends, checkpoint loading."""

import numpy as np
import pytest
import torch

from saganet.errors import CheckpointError
from saganet.eval.audio import prepare, resample
from saganet.eval.embedders import build_embedder
from saganet.eval.embedders.panns import Cnn14, Cnn14Config, _LogMel, _Spectrogram
from saganet.eval.embedders.sync import SyncEmbedder, video_segments
from saganet.eval.embedders.synchformer_av import sync_audio_input
from saganet.eval.embedders.vggish import VGGish, VGGishConfig, vggish_examples, vggish_log_mel


def sine(freq, seconds, sr, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("src,dst", [(44100, 16000), (48000, 32000), (16000, 48000), (22050, 16000)])
def test_resampling_keeps_frequency_and_duration(src, dst):
    y = resample(sine(1000, 1.0, src), src, dst)
    assert len(y) == dst
    assert peak_hz(y, dst) == pytest.approx(1000, abs=2)


def test_prepare_mono_dc_duration():
    st = np.stack([sine(440, 10, 44100) + 0.2, sine(440, 10, 44100) + 0.2])
    y = prepare(st, 44100, 16000, duration=5.0)
    assert y.shape == (80000,) and abs(y.mean()) < 1e-3
    assert prepare(st, 44100, 16000, duration=None).shape == (160000,)


def test_panns_front_end_is_the_power_stft_and_slaney_mel():
    cfg = Cnn14Config()
    x = torch.from_numpy(sine(1000, 1.0, 16000))[None]
    p = _Spectrogram(cfg.window_size, cfg.hop_size)(x)  # (1, 1, T, 257)
    ref = torch.stft(x, 512, 160, window=torch.hann_window(512), center=True, pad_mode="reflect",
                     return_complex=True).abs() ** 2
    assert p.shape == (1, 1, 101, 257)
    torch.testing.assert_close(p[0, 0].T, ref[0], rtol=1e-3, atol=1e-2)
    mel = _LogMel(cfg)(p)[0, 0].mean(0)  # (64,)
    fb = _LogMel(cfg).melW.T  # (64, 257)
    centre_hz = (fb.argmax(1).float() * 16000 / 512).numpy()
    assert abs(centre_hz[int(mel.argmax())] - 1000) < 80


def test_panns_shapes_on_sine_silence_and_10s():
    e = build_embedder("panns", "random", "tiny")
    for wav in (sine(440, 1, 16000), np.zeros(16000, np.float32), sine(440, 10, 16000), np.zeros(100, np.float32)):
        out = e.embed(wav)
        assert out["embedding"].shape == (16,) and out["logits"].shape == (10,)
        assert np.isfinite(out["logits"]).all()


@pytest.mark.slow
def test_panns_full_size_shapes():
    e = build_embedder("panns", "random", "full")
    out = e.embed(sine(440, 5, 16000))
    assert out["embedding"].shape == (2048,) and out["logits"].shape == (527,)


def test_vggish_framing_and_mel():
    assert vggish_examples(sine(440, 1, 16000)).shape == (1, 1, 96, 64)
    assert vggish_examples(sine(440, 10, 16000)).shape == (10, 1, 96, 64)
    assert vggish_examples(sine(440, 0.5, 16000)).shape == (0, 1, 96, 64)
    mel = vggish_log_mel(sine(1000, 1, 16000))
    assert mel.shape == (98, 64)
    silent = vggish_log_mel(np.zeros(16000))
    assert np.allclose(silent, np.log(0.01))
    assert mel.mean(0).argmax() != silent.mean(0).argmax() or mel.max() > silent.max() + 5


def test_vggish_embedder_shapes():
    e = build_embedder("vggish", "random", "tiny")
    assert e.embed(sine(440, 10, 16000))["frames"].shape == (10, 8)
    assert e.embed(np.zeros(16000, np.float32))["frames"].shape == (1, 8)
    assert e.embed(sine(440, 0.5, 16000))["frames"].shape == (0, 8)


def test_sync_audio_segments():
    assert sync_audio_input(sine(440, 5, 16000)).shape == (14, 66, 128)
    assert sync_audio_input(sine(440, 10, 16000)).shape == (30, 66, 128)
    assert sync_audio_input(np.zeros(16000 * 5, np.float32)).shape == (14, 66, 128)
    with pytest.raises(ValueError):
        sync_audio_input(np.zeros(1000, np.float32))


def test_video_segments():
    f = torch.arange(125).float()[:, None, None, None].expand(125, 3, 4, 4)
    s = video_segments(f)
    assert s.shape == (14, 3, 16, 4, 4)
    assert s[1, 0, :, 0, 0].tolist() == list(range(8, 24))


def test_desync_tiny_end_to_end_shapes():
    e = SyncEmbedder.build("random", "tiny")
    a = e.embed(sine(440, 5, 16000))["segments"]
    assert a.shape == (14, 6, 32)
    v = e.embed_video(torch.rand(125, 3, 32, 32) * 2 - 1)
    assert v.shape == (14, 8, 32)
    assert e.offset_logits(v, a).shape == (2, 21)


def test_official_format_checkpoints_load_and_bad_ones_fail(tmp_path):
    m = Cnn14(Cnn14Config.tiny()).eval()
    torch.save({"model": m.state_dict(), "iteration": 1}, tmp_path / "cnn14.pth")
    m2 = Cnn14(Cnn14Config.tiny()).eval()
    m2.load_official(tmp_path / "cnn14.pth")
    x = torch.from_numpy(sine(300, 1, 16000))[None]
    torch.testing.assert_close(m(x)["logits"], m2(x)["logits"])
    v = VGGish(VGGishConfig.tiny())
    torch.save({**v.state_dict(), "pproc._pca_matrix": torch.zeros(2, 2)}, tmp_path / "vggish.pth")
    VGGish(VGGishConfig.tiny()).load_official(tmp_path / "vggish.pth")
    torch.save({"model": {"fc1.weight": torch.zeros(3)}}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="does not match"):
        Cnn14(Cnn14Config.tiny()).load_official(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load"):
        Cnn14(Cnn14Config.tiny()).load_official(tmp_path / "junk.pth")


def test_synchformer_file_layout_round_trip(tmp_path):
    e = SyncEmbedder.build("random", "tiny")
    sd = {**{f"vfeat_extractor.{k}": v for k, v in e.video.state_dict().items()}, **e.av.state_dict()}
    torch.save(sd, tmp_path / "synchformer_state_dict.pth")
    e2 = SyncEmbedder.build("random", "tiny")
    e2.load(tmp_path / "synchformer_state_dict.pth")
    a = e.embed(sine(440, 5, 16000))["segments"]
    np.testing.assert_allclose(a, e2.embed(sine(440, 5, 16000))["segments"], rtol=1e-5, atol=1e-6)
    del sd["transformer.off_head.weight"]
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="sync head"):
        SyncEmbedder.build("random", "tiny").load(tmp_path / "partial.pth")


def test_official_weights_offline_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    with pytest.raises(CheckpointError) as e:
        build_embedder("vggish", "official")
    assert "vggish-10086976.pth" in str(e.value) and "\n" not in str(e.value)


def test_passt_front_end_and_shapes():
    from saganet.eval.embedders.passt import PaSSTMel, kaldi_mel_banks

    fb = kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0)
    assert fb.shape == (128, 513) and fb[:, -1].max() == 0 and fb[:, 0].max() == 0  # padded column; DC unused
    mel = PaSSTMel()(torch.from_numpy(sine(2000, 10, 32000))[None])
    assert mel.shape == (1, 128, 1000)
    centre = (fb * np.arange(513)).sum(1) / np.maximum(fb.sum(1), 1e-9) * 32000 / 1024
    assert abs(centre[int(mel[0].mean(1).argmax())] - 2000) < 150
    e = build_embedder("passt", "random", "tiny")
    for wav in (sine(440, 1, 32000), np.zeros(32000, np.float32), sine(440, 12, 32000)):
        out = e.embed(wav)
        assert out["embedding"].shape == (16,) and out["logits"].shape == (10,)
    # av-benchmark pads to 10 s: a 1 s clip equals itself zero-padded
    one = sine(440, 1, 32000)
    np.testing.assert_allclose(e.embed(one)["logits"], e.embed(np.pad(one, (0, 32000)))["logits"], rtol=1e-5, atol=1e-6)


def test_clap_shapes_and_text():
    e = build_embedder("clap", "random", "tiny")
    for wav in (sine(440, 1, 48000), np.zeros(48000, np.float32), sine(440, 10, 48000)):
        a = e.embed(wav)["audio"]
        assert a.shape == (16,) and abs(np.linalg.norm(a) - 1) < 1e-5
    t = e.embed_text(["violin", "a dog barking loudly"])
    assert t.shape == (2, 16) and not np.allclose(t[0], t[1])


def test_imagebind_inputs_and_shapes():
    from saganet.eval.embedders.imagebind import ImageBindConfig, ib_audio_clips, ib_video_clips, kaldi_fbank

    fb = kaldi_fbank(sine(1000, 1, 16000))
    assert fb.shape == (98, 128)  # snip_edges: 1 + (16000 - 400) // 160
    assert np.isfinite(kaldi_fbank(np.zeros(16000))).all()
    cfg = ImageBindConfig()
    clips = ib_audio_clips(sine(440, 5, 16000), cfg)
    assert clips.shape == (3, 1, 128, 204)
    # clips start at 0, 1.5 and 3 s for a 5 s file: a tone starting at 3.2 s shows only in the last one
    late = np.zeros(80000, np.float32)
    late[int(3.2 * 16000):] = sine(440, 1.8, 16000)
    c = ib_audio_clips(late, cfg)
    assert c[0, ..., :198].max() < c[2, ..., :198].max() - 1  # (frames 198-203 are padding)
    v = ib_video_clips(torch.rand(2, 3, 360, 640), cfg)
    assert v.shape == (3, 3, 2, 224, 224)  # 3 crops x 1 clip of 2 frames
    e = build_embedder("imagebind", "random", "tiny")
    assert e.embed(sine(440, 5, 16000))["audio"].shape == (8,)
    assert e.embed_frames(torch.rand(3, 3, 40, 30)).shape == (8,)
    with pytest.raises(ValueError):
        e.embed_frames(torch.rand(1, 3, 40, 30))


def test_vggish_full_size_shapes():
    e = build_embedder("vggish", "random", "full")
    assert e.embed(sine(440, 5, 16000))["frames"].shape == (5, 128)


@pytest.mark.slow
@pytest.mark.parametrize("kind,sr,shapes", [("passt", 32000, {"embedding": (768,), "logits": (527,)}),
                                            ("clap", 48000, {"audio": (512,)}),
                                            ("synchformer", 16000, {"segments": (14, 6, 768)}),
                                            ("imagebind", 16000, {"audio": (1024,)})])
def test_full_size_outputs(kind, sr, shapes):
    """Audio side of each model at its real size (video towers: benchmarks/bench_eval.py)."""
    out = build_embedder(kind, "random", "full").embed(sine(440, 5, sr))
    assert {k: v.shape for k, v in out.items()} == shapes and all(np.isfinite(v).all() for v in out.values())
