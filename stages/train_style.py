"""DVC stage `train_style`: a style branch on the frozen GAN generator -> models/style/."""

from gansr.pipeline import run_stage, train_style

run_stage(train_style)
