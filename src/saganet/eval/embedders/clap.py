"""LAION-CLAP for the CLAP score (cosine of text and audio embeddings), through `transformers`' port.

av-benchmark uses `laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base")` with
`music_speech_audioset_epoch_15_esc_89.98.pt` at 48 kHz. The `laion_clap` package cannot be installed
beside our stack (it pins numpy < 2 and pulls wandb, webdataset, h5py, ...); the same checkpoint is
published converted as the Hugging Face model `laion/larger_clap_music_and_speech` (HTSAT-base audio
tower, RoBERTa text tower, 512-d projections), which `transformers.ClapModel` loads, with its
feature extractor (48 kHz, 64 log-mels 50-14000 Hz, hop 480, "repeatpad" to 10 s, no fusion).

Random-weight builds (tests, benchmark) have no tokenizer files offline: they map characters to ids
(`_CharTokenizer`); official builds use the model's own tokenizer.
"""

from __future__ import annotations

import numpy as np
import torch

from saganet.weights import HubModel, resolve_hub

__all__ = ["ClapEmbedder", "CLAP_HUB", "clap_config"]

CLAP_HUB = HubModel("clap_eval", "laion/larger_clap_music_and_speech")
SAMPLE_RATE = 48000


def clap_config(size: str = "full"):
    from transformers import ClapAudioConfig, ClapConfig, ClapTextConfig

    if size == "tiny":
        audio = ClapAudioConfig(depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1], patch_embeds_hidden_size=8,
                                hidden_size=64, projection_dim=16, projection_hidden_size=16)
        text = ClapTextConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=32,
                              projection_dim=16, projection_hidden_size=16, vocab_size=300)
        return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)
    # HTSAT-base (the "larger" LAION-CLAP checkpoints) + RoBERTa-base
    audio = ClapAudioConfig(depths=[2, 2, 12, 2], num_attention_heads=[4, 8, 16, 32], patch_embeds_hidden_size=128,
                            hidden_size=1024, projection_dim=512, enable_fusion=False)
    return ClapConfig(text_config=ClapTextConfig().to_dict(), audio_config=audio.to_dict(), projection_dim=512)


class _CharTokenizer:
    """Random-weight stand-in for RoBERTa's tokenizer: bytes -> ids (0 = <s>, 2 = </s>, 1 = pad)."""

    def __init__(self, vocab: int):
        self.vocab = vocab

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = [[0] + [3 + b % (self.vocab - 3) for b in t.encode()[:70]] + [2] for t in texts]
        n = max(map(len, ids))
        out = torch.ones(len(ids), n, dtype=torch.long)
        mask = torch.zeros(len(ids), n, dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": out, "attention_mask": mask}


class ClapEmbedder:
    name = "clap"
    sample_rate = SAMPLE_RATE

    def __init__(self, model, feature_extractor, tokenizer, weights: str):
        self.model, self.fe, self.tok, self.weights = model.eval(), feature_extractor, tokenizer, weights

    @classmethod
    def build(cls, weights: str = "official", size: str = "full") -> ClapEmbedder:
        from transformers import ClapFeatureExtractor, ClapModel

        if weights == "random":
            cfg = clap_config(size)
            fe = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation="rand_trunc")
            return cls(ClapModel(cfg), fe, _CharTokenizer(cfg.text_config.vocab_size), f"random-{size}")
        from transformers import ClapProcessor

        folder = resolve_hub(CLAP_HUB) if weights == "official" else weights
        proc = ClapProcessor.from_pretrained(folder)
        tok = proc.tokenizer

        def tokenize(texts):
            return dict(tok(texts, padding=True, return_tensors="pt"))

        return cls(ClapModel.from_pretrained(folder), proc.feature_extractor, tokenize, CLAP_HUB.repo_id)

    @property
    def id(self) -> str:
        return f"clap-htsat-base/{self.weights}"

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        """48 kHz audio -> {"audio": (512,)} (L2-normalised projection)."""
        feats = self.fe(np.asarray(wav, np.float32), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        out = self.model.get_audio_features(input_features=feats["input_features"])
        out = getattr(out, "pooler_output", out)
        return {"audio": torch.nn.functional.normalize(out, dim=-1)[0].numpy()}

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        out = self.model.get_text_features(**self.tok(list(texts)))
        out = getattr(out, "pooler_output", out)
        return torch.nn.functional.normalize(out, dim=-1).numpy()
