"""Opt-in faster networks for generation: `torch.compile` and int8 dynamic quantisation (the exact eager
float32 path stays the default).

* `compile_networks(model)`: wraps the frame encoder's image tower, the video (sync) encoder's backbone and
  the DiT's `predict_flow` in `torch.compile` (inductor on CPU, which needs a C++ compiler; compiled
  kernels are cached by PyTorch across runs). Shapes vary with the clip's duration, so `dynamic=None` lets
  inductor specialise, then generalise after a second shape.
* `quantize_encoders(model)`: replaces the `nn.Linear` layers of the encoders (CLIP, the Synchformer) by
  dynamically quantised int8 ones. We use PyTorch's eager `quantize_dynamic`: it runs on any CPU with no
  extra package; torchao's replacement targets GPUs first. The DiT and the codec stay in float: the
  sampler integrates the DiT's errors over every step, and the vocoder is sensitive.

How much each changes the output and how much faster it is: README "Speed" (benchmarks/bench_accel.py).
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from saganet.models.generator import AudioGenerator

log = logging.getLogger(__name__)

__all__ = ["compile_networks", "quantize_encoders", "quantize_linear_layers"]


# Layers whose own forward reads `linear.weight` (PyTorch's fused transformer fast-path checks): their linears
# stay in float.
_KEEP_FLOAT = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention)


def quantize_linear_layers(module: nn.Module) -> nn.Module:
    """`module` with its `nn.Linear` layers swapped for int8 dynamically quantised ones (in place, CPU only)."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    keep = [n for n, m in module.named_modules() if isinstance(m, _KEEP_FLOAT)]
    names = {n: default_dynamic_qconfig for n, m in module.named_modules()
             if type(m) is nn.Linear and not any(n.startswith(k + ".") for k in keep)}
    dtypes = {n: m.weight.dtype for n, m in module.named_modules() if n in names}
    with warnings.catch_warnings():  # eager-mode quantisation is deprecated in favour of torchao, still works
        warnings.simplefilter("ignore")
        module = quantize_dynamic(module, names, dtype=torch.qint8, inplace=True)
    # A quantised linear's `weight` is a method: open_clip reads `int8_original_dtype` instead when it asks a
    # block for its dtype (text tower: `transformer.get_cast_dtype()`).
    modules = dict(module.named_modules())
    for n, dtype in dtypes.items():
        modules[n].int8_original_dtype = dtype
    return module


def quantize_encoders(model: AudioGenerator) -> AudioGenerator:
    """int8 dynamic quantisation of the encoders' linear layers (CLIP image/text towers, the sync encoder)."""
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 dynamic quantisation runs on the CPU only")
    seen: set[int] = set()
    for part in (model.frame_encoder, model.text_encoder, model.sync_encoder):
        if id(part) not in seen:  # CLIP serves as frame and text encoder
            seen.add(id(part))
            quantize_linear_layers(part)
    return model


def compile_networks(model: AudioGenerator, mode: str | None = None) -> AudioGenerator:
    """`torch.compile` the three heavy networks in place (first call per shape compiles: seconds to minutes)."""
    clip_model = getattr(model.frame_encoder, "model", None)
    if clip_model is not None and hasattr(clip_model, "visual"):
        clip_model.visual = torch.compile(clip_model.visual, mode=mode)
    backbone = getattr(model.sync_encoder, "model", None)
    if backbone is not None:
        model.sync_encoder.model = torch.compile(backbone, mode=mode)
    model.dit.predict_flow = torch.compile(model.dit.predict_flow, mode=mode)
    return model
