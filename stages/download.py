"""DVC stage `download`: assemble the raw images named by params.data into data/raw/."""

from gansr.pipeline import download, run_stage

run_stage(download)
