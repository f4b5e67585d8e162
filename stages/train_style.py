"""DVC stage `train_style`: per-style modulations on the frozen GAN generator -> models/style/."""

from gansr.pipeline import run_stage, train_style

run_stage(train_style)
