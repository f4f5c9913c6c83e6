"""saganet.toyworld: a seeded, CPU-sized synthetic segmented-solos world and its analytic metrics.

See RN-44. `world` defines classes, sampling and rendering; `dataset` writes/reads splits;
`metrics` scores generated audio against the target object.
"""

from saganet.toyworld.dataset import (
    KINDS,
    SPLITS,
    ToyArrays,
    generate_arrays,
    iter_scenes,
    load_split_arrays,
    make_scene,
    read_metadata,
    scene_targets,
    write_split,
)
from saganet.toyworld.metrics import (
    SILENCE,
    ClassTemplates,
    bootstrap_ci,
    build_class_templates,
    class_features,
    classify,
    detect_onsets,
    evaluate_target,
    logmel,
    logmel_distance,
    onset_f1,
    onset_strength,
    summarise,
)
from saganet.toyworld.world import (
    CLASS_NAMES,
    CLASSES,
    ObjectSpec,
    Scene,
    ToyClass,
    WorldConfig,
    get_class,
    onset_frame_pulse,
    render_scene,
    render_stem,
    sample_multi_different,
    sample_multi_same_class,
    sample_object,
    sample_onsets,
    sample_solo,
    synth_note,
)

__all__ = [
    "CLASSES", "CLASS_NAMES", "ToyClass", "WorldConfig", "ObjectSpec", "Scene", "get_class", "synth_note",
    "render_stem", "render_scene", "onset_frame_pulse", "sample_object", "sample_onsets", "sample_solo",
    "sample_multi_different", "sample_multi_same_class",
    "KINDS", "SPLITS", "ToyArrays", "make_scene", "iter_scenes", "scene_targets", "generate_arrays",
    "write_split", "read_metadata", "load_split_arrays",
    "SILENCE", "ClassTemplates", "logmel", "class_features", "build_class_templates", "classify",
    "onset_strength", "detect_onsets", "onset_f1", "logmel_distance", "evaluate_target", "bootstrap_ci",
    "summarise",
]
