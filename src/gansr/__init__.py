"""gansr: GAN super-resolution with style transfer, as a reproducible DVC + MLflow pipeline."""

__version__ = "0.1.0"
