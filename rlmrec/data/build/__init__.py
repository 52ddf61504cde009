"""``rlmrec data build``: from raw interaction logs to an RLMRec dataset folder, the
paper's way (rating filter, user sampling, k-core, 3:1:1 split per user)."""

from rlmrec.data.build.build import BuildOptions, Built, Step, build_dataset
from rlmrec.data.build.presets import PRESETS

__all__ = ["PRESETS", "BuildOptions", "Built", "Step", "build_dataset"]
