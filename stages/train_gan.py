"""DVC stage `train_gan`: adversarial fine-tuning of the pretrained generator -> models/gan/."""

from gansr.pipeline import train_gan, run_stage

run_stage(train_gan)
