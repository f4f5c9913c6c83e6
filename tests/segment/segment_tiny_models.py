"""Tiny random-weight instances of the real transformers classes used by saganet.segment (no download)."""

from __future__ import annotations

import torch

SAM_SIZE = 64  # model input side (the real models use 1024)


def tiny_sam2(seed: int = 0):
    """(Sam2VideoModel, Sam2VideoProcessor) with a 2-stage-per-level tiny Hiera at 64² input."""
    from transformers import Sam2VideoConfig, Sam2VideoModel, Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    s = SAM_SIZE
    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1,
                    image_size=[s, s], blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[8, 16, 32, 64],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 2, 2, 1],
                    global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2])
    vision = dict(model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                  backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
                  fpn_hidden_size=128)
    cfg = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=128, image_size=s, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
        image_size=s, num_maskmem=3, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[s // 16, s // 16],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64, max_object_pointers_in_encoder=4,
        memory_attention_dropout=0.0, memory_attention_rope_dropout=0.0,
    )
    torch.manual_seed(seed)
    model = Sam2VideoModel(cfg).eval()
    size = {"height": s, "width": s}
    proc = Sam2VideoProcessor(Sam2ImageProcessor(size=size, mask_size={"height": s // 4, "width": s // 4}),
                              Sam2VideoVideoProcessor(size=size), target_size=s)
    return model, proc


WORDS = ["violin", "cello", "trumpet", "drum", "a", "the", "player", "person", "guitar", "flute"]


def tiny_grounding_dino(tmp_dir, seed: int = 0):
    """(GroundingDinoForObjectDetection, GroundingDinoProcessor): tiny Swin + 2-layer BERT, a 20-word vocab."""
    from pathlib import Path

    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    vocab = Path(tmp_dir) / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS) + "\n")
    tok = BertTokenizer(str(vocab))
    backbone = dict(model_type="swin", image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                    num_heads=[1, 1, 1, 1], window_size=2, out_features=["stage2", "stage3", "stage4"])
    text = dict(model_type="bert", vocab_size=len(WORDS) + 7, hidden_size=16, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    cfg = GroundingDinoConfig(backbone_config=backbone, text_config=text, num_queries=12, encoder_layers=1,
                              decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, d_model=32,
                              encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=4,
                              encoder_n_points=2, decoder_n_points=2, max_text_len=16,
                              disable_custom_kernels=True)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(cfg).eval()
    ip = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    return model, GroundingDinoProcessor(ip, tok)
