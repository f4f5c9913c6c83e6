"""The learned segmenters by name: SAM 2.1 sizes and their hub ids (weights resolve through saganet.weights)."""

SAM2_MODELS = {
    "sam2.1-tiny": "facebook/sam2.1-hiera-tiny",
    "sam2.1-small": "facebook/sam2.1-hiera-small",
    "sam2.1-base-plus": "facebook/sam2.1-hiera-base-plus",
    "sam2.1-large": "facebook/sam2.1-hiera-large",
}
DEFAULT_LEARNED = "sam2.1-tiny"  # the CPU default: 39 M parameters
