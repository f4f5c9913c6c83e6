"""Segmented Music Solos (SMS) and the URMP multi-source test set: rebuild, verify and extract them.

The stages, each a module and a `saganet data` subcommand:

- `ingest`   (`ingest.py`, `cut.py`, `metadata.py`, `manifest.py`): metadata + raw source folders -> 5 s clips
  in the reference layout, cut with PyAV, resumable, several worker processes.
- `masks`    (`masks.py`): label -> grounded boxes on key frames -> propagation -> the sounding instance ->
  per-clip COCO RLE + `{stem}_mask.mp4`.
- `verify`   (`verify.py`): named automatic checks with thresholds in one `VerifyConfig`, a table
  clip -> accept/reject + failed checks; human decisions go into the same table (`review.py`).
- `focal`    (`detail.py`): the focal prompt per clip (`{stem}_detail.mp4`, `{stem}_mask_detail.mp4`).
- `extract`  (`extract.py`): VAE latent mean/std, CLIP frame features, label text features -> sharded
  safetensors + index; data-parallel under torchrun.
- datasets   (`datasets.py`): `SegmentedMusicSolos` and `URMPTest` for the trainer and the evaluation.
- `stats`    (`stats.py`): clips per class and split, durations, rejection reasons.

Layout (RN-45): SMS clip `{root}/{label}/{stem}.mp4`, its mask `{root}/{label}/{stem}/{stem}_mask.mp4`,
focal prompt `{root}/{label}/{stem}/{stem}_detail.mp4` and `..._mask_detail.mp4`; URMP clips
`{root}/{piece}/Vid_..._{s}_{e}.mp4`, stems `{root}/{piece}/AuSep_..._{s}_{e}.wav`, masks
`{root}/{piece}/Masks_..._{s}_{e}.mp4`. The clip id is the path relative to the root without `.mp4`.
"""
