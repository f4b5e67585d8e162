"""DVC stage `validate`: Great Expectations suite over the pairs; data docs in reports/validation/."""

from gansr.pipeline import validate, run_stage

run_stage(validate)
