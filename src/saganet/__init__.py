"""saganet: segmentation-aware video-to-audio generation (SAGANet on top of MMAudio).

Where things live (one idea per module):
  models/     pure nn.Modules (MM-DiT, LoRA, MotionFormer, segmentation-aware encoder, VAE, BigVGAN, mel, CLIP)
  sampling/   flow matching: training loss, ODE samplers, classifier-free guidance
  focal.py    focal prompt: masks -> boxes -> crops
  io/         video / mask / audio decoding and encoding, muxing, atomic writes
  weights.py  registry of released checkpoints, cache, download and verification
  configs.py  named model variants
  checkpoint.py  safe checkpoint reading and strict loading with readable errors
  pipeline.py video + masks + text -> stems + mix
  toyworld/   synthetic segmented-solos world and its metrics
  train/      trainer
  cli.py      the `saganet` command
"""

__version__ = "0.1.0"
