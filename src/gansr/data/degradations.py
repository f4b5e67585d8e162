"""Realistic LR degradations: the Real-ESRGAN recipe (Wang et al., ICCVW 2021).

One order is Gaussian blur (isotropic or anisotropic kernel) → downscale
(area, bilinear or bicubic) → Gaussian noise (colour or gray) → JPEG; the
second order (``pairs.second_order``) repeats it, the first downscale then
stopping at a random size between HR and LR.

Drawing and applying are separate: :func:`draw_steps` makes every random
choice up front and returns them as a JSON-ready list of steps, and
:func:`apply_steps` is a pure function of the image and that list. The
manifest records the steps, so any LR can be rebuilt from its record alone.

The same steps make the degraded test split (:func:`degradation_steps`,
scored by :mod:`gansr.degraded`): noise only, JPEG only, blur only, and
all three, each drawn from the seed and the image's name; and the ``real``
generator's training crops (:func:`crop_steps`), each step taken with its
own probability and drawn from the crop's own seed.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from gansr.config import PairsConfig, RealConfig

Step = dict[str, Any]
RESIZE_FILTERS = {
    "area": Image.Resampling.BOX,  # a box filter averages whole source pixels, as area resizing does
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
DIGITS = 4  # drawn reals are rounded before use, so the record is exactly what was applied
# The degraded test split's versions (gansr.degraded scores the generators on them), and their ranges.
VERSIONS: dict[str, tuple[str, ...]] = {
    "noise": ("noise",), "jpeg": ("jpeg",), "blur": ("blur",), "all": ("blur", "noise", "jpeg"),
}
NOISE_SIGMA = (5.0, 20.0)  # grey levels
JPEG_QUALITY = (30, 80)
BLUR_SIGMA = (0.8, 2.0)  # HR pixels
BLUR_KERNEL = 21  # side of the blur kernel: ±5σ of the widest blur


def degradation_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the params seed and the image name, not on processing order."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def draw_steps(rng: np.random.Generator, hr_size: tuple[int, int], scale: int, cfg: PairsConfig) -> list[Step]:
    """Every random choice of one degradation of an HR image of ``hr_size`` (height, width)."""
    height, width = hr_size
    lr_size = (height // scale, width // scale)
    sizes = [lr_size]
    if cfg.second_order:
        factor = rng.uniform(1, scale)
        sizes.insert(0, (max(lr_size[0], round(height / factor)), max(lr_size[1], round(width / factor))))
    steps: list[Step] = []
    for size in sizes:
        steps += [_draw_blur(rng, cfg), _draw_resize(rng, size), _draw_noise(rng, cfg), _draw_jpeg(rng, cfg)]
    return steps


def apply_steps(hr: np.ndarray, steps: list[Step]) -> np.ndarray:
    """Degrade an H×W×3 ``uint8`` image by ``steps``; float in between, as Real-ESRGAN works."""
    image = hr.astype(np.float32)
    for step in steps:
        image = _APPLY[step["op"]](image, step)
    return _to_uint8(image)


def degradation_steps(version: str, hr_size: tuple[int, int], scale: int, seed: int, name: str) -> list[Step]:
    """The steps (:func:`apply_steps`) that make ``name``'s LR in ``version`` of the degraded test split."""
    if version not in VERSIONS:
        raise ValueError(f"unknown degradation version {version!r}; known: {', '.join(VERSIONS)}")
    rng = degradation_rng(seed, f"degraded/{version}/{name}")
    drawers: dict[str, Drawer] = {"blur": _fixed_blur, "noise": lambda r: _noise(r, NOISE_SIGMA, gray_prob=0.0),
                                  "jpeg": lambda r: _quality(r, JPEG_QUALITY)}
    return _chain(rng, hr_size, scale, **{op: draw if op in VERSIONS[version] else None
                                          for op, draw in drawers.items()})


def crop_steps(rng: np.random.Generator, hr_size: tuple[int, int], scale: int, cfg: PairsConfig,
               probs: RealConfig) -> list[Step]:
    """One training crop's degradation for the ``real`` generator: blur, bicubic downscale, noise, JPEG.

    Blur, noise and JPEG are each taken with their own probability in
    ``probs`` and drawn from ``cfg``'s ranges; the downscale is always
    bicubic, so a crop that draws none of them is the clean pair.
    """
    def maybe(prob: float, draw: Drawer) -> Drawer | None:
        return draw if rng.random() < prob else None

    return _chain(rng, hr_size, scale,
                  blur=maybe(probs.blur_prob, lambda r: _draw_blur(r, cfg)),
                  noise=maybe(probs.noise_prob, lambda r: _draw_noise(r, cfg)),
                  jpeg=maybe(probs.jpeg_prob, lambda r: _draw_jpeg(r, cfg)))


def degrade_crop(hr: np.ndarray, seed: int, scale: int, cfg: PairsConfig, probs: RealConfig) -> np.ndarray:
    """A training crop's LR, drawn by :func:`crop_steps` from the crop's ``seed`` alone."""
    rng = np.random.default_rng(seed)
    return apply_steps(hr, crop_steps(rng, hr.shape[:2], scale, cfg, probs))


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """A normalised ``size``² bivariate Gaussian with standard deviations along axes turned by ``angle``.

    The covariance is R·diag(σx², σy²)·Rᵀ, Real-ESRGAN's anisotropic kernel;
    σx = σy gives the isotropic one.
    """
    radius = size // 2
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    along = math.cos(angle) * x + math.sin(angle) * y
    across = -math.sin(angle) * x + math.cos(angle) * y
    kernel = np.exp(-0.5 * ((along / sigma_x) ** 2 + (across / sigma_y) ** 2))
    return kernel / kernel.sum()


# --- drawing ---------------------------------------------------------------------------------


Drawer = Callable[[np.random.Generator], Step]


def _chain(rng: np.random.Generator, hr_size: tuple[int, int], scale: int, blur: Drawer | None,
           noise: Drawer | None, jpeg: Drawer | None) -> list[Step]:
    """Blur → bicubic downscale to LR → noise → JPEG, the steps given (None: left out) drawn in that order."""
    height, width = hr_size
    steps = [blur(rng)] if blur else []
    steps.append({"op": "resize", "mode": "bicubic", "height": height // scale, "width": width // scale})
    steps += [draw(rng) for draw in (noise, jpeg) if draw]
    return steps


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return round(float(rng.uniform(*bounds)), DIGITS)


def _fixed_blur(rng: np.random.Generator) -> Step:
    """The test split's isotropic blur."""
    sigma = _uniform(rng, BLUR_SIGMA)
    return {"op": "blur", "kernel_size": BLUR_KERNEL, "sigma_x": sigma, "sigma_y": sigma, "angle": 0.0}


def _draw_blur(rng: np.random.Generator, cfg: PairsConfig) -> Step:
    low, high = cfg.blur_kernel_size
    size = int(rng.choice(np.arange(low, high + 1, 2)))
    if rng.random() < cfg.anisotropic_prob:
        sigma_x, sigma_y = _uniform(rng, cfg.blur_sigma), _uniform(rng, cfg.blur_sigma)
        angle = _uniform(rng, (-math.pi, math.pi))
    else:
        sigma_x = sigma_y = _uniform(rng, cfg.blur_sigma)
        angle = 0.0
    return {"op": "blur", "kernel_size": size, "sigma_x": sigma_x, "sigma_y": sigma_y, "angle": angle}


def _draw_resize(rng: np.random.Generator, size: tuple[int, int]) -> Step:
    mode = str(rng.choice(list(RESIZE_FILTERS)))
    return {"op": "resize", "mode": mode, "height": int(size[0]), "width": int(size[1])}


def _draw_noise(rng: np.random.Generator, cfg: PairsConfig) -> Step:
    return _noise(rng, cfg.noise_sigma, cfg.gray_noise_prob)


def _noise(rng: np.random.Generator, sigma: tuple[float, float], gray_prob: float) -> Step:
    level = _uniform(rng, sigma)
    gray = bool(rng.random() < gray_prob) if gray_prob else False  # the test split draws no gray noise
    return {"op": "noise", "sigma": level, "gray": gray, "seed": int(rng.integers(2**32))}


def _draw_jpeg(rng: np.random.Generator, cfg: PairsConfig) -> Step:
    return _quality(rng, cfg.jpeg_quality)


def _quality(rng: np.random.Generator, bounds: tuple[int, int]) -> Step:
    return {"op": "jpeg", "quality": int(rng.integers(bounds[0], bounds[1] + 1))}


# --- applying ------------------------------------------------------------------------------


def _blur(image: np.ndarray, step: Step) -> np.ndarray:
    """Convolve each channel with the step's kernel, edges reflected (OpenCV's default border)."""
    kernel = gaussian_kernel(step["kernel_size"], step["sigma_x"], step["sigma_y"], step["angle"])
    radius = kernel.shape[0] // 2
    height, width = image.shape[:2]
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    # By FFT: a 21² kernel over a 2K photo is seconds as a direct sum, a fraction of one this way.
    shape = padded.shape[:2]
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(kernel, s=shape)[..., None]
    full = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    # Only the part where the kernel never wrapped around; the kernel is point-symmetric,
    # so this convolution equals the correlation that filter2D computes.
    return full[2 * radius:2 * radius + height, 2 * radius:2 * radius + width].astype(np.float32)


def _resize(image: np.ndarray, step: Step) -> np.ndarray:
    # Pillow resizes 32-bit float ("F") images one channel at a time, without rounding to 8 bits.
    size, resample = (step["width"], step["height"]), RESIZE_FILTERS[step["mode"]]
    channels = [Image.fromarray(np.ascontiguousarray(image[..., c])).resize(size, resample)
                for c in range(image.shape[2])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)


def _add_noise(image: np.ndarray, step: Step) -> np.ndarray:
    rng = np.random.default_rng(step["seed"])
    channels = 1 if step["gray"] else image.shape[2]  # gray noise: the same in R, G and B
    noise = rng.normal(0.0, step["sigma"], (*image.shape[:2], channels)).astype(np.float32)
    return np.clip(image + noise, 0, 255)


def _jpeg(image: np.ndarray, step: Step) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(image)).save(buffer, format="JPEG", quality=step["quality"])
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


_APPLY: dict[str, Callable[[np.ndarray, Step], np.ndarray]] = {
    "blur": _blur, "resize": _resize, "noise": _add_noise, "jpeg": _jpeg,
}
