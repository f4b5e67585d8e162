"""DVC stage `evaluate`: Y-PSNR/SSIM of each generator vs bicubic on the test split -> metrics/, plots/."""

from gansr.pipeline import evaluate, run_stage

run_stage(evaluate)
