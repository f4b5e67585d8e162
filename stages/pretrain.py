"""DVC stage `pretrain`: PSNR-oriented (pixel loss) pretraining of the generator -> models/psnr/."""

from gansr.pipeline import pretrain, run_stage

run_stage(pretrain)
