"""DVC stage `export`: every generator as .keras, SavedModel and TFLite -> models/export/, registered in MLflow."""

from gansr.pipeline import export, run_stage

run_stage(export)
