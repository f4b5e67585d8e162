"""Style transfer, all in one place: styles drawn from the photo, on top of the super-resolution generator.

- :mod:`~gansr.style.images`: the style images (built-in textures or a folder);
- :mod:`~gansr.style.layers`: the layers the style branch is made of
  (the style swap, per-style modulation, the composite);
- :mod:`~gansr.style.network`: the style branch and the styled generator;
- :mod:`~gansr.style.losses` and :mod:`~gansr.style.distributions`: what it is trained on;
- :mod:`~gansr.style.training`: the ``train_style`` phase;
- :mod:`~gansr.style.score`, :mod:`~gansr.style.follow`, :mod:`~gansr.style.controls`
  and :mod:`~gansr.style.evaluation`: how a style is judged.

No super-resolution module imports this package (a styled generator's
file names the modules of its layers, which the loader imports when it
reads one), so editing any of it reruns ``train_style`` and what follows,
never pretraining.
"""
