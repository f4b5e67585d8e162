"""DVC stage `pairs`: HR/LR pairs, the train/val/test split and the manifest in data/pairs/."""

from gansr.pipeline import pairs, run_stage

run_stage(pairs)
