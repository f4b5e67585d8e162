"""DVC stage `export`: save the generator to models/export/ and register it in the MLflow Model Registry."""

from gansr.pipeline import export, run_stage

run_stage(export)
