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
all three, each drawn from the seed and the image's name.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from gansr.config import PairsConfig

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
    height, width = hr_size
    steps: list[Step] = []
    if "blur" in VERSIONS[version]:
        sigma = _uniform(rng, BLUR_SIGMA)
        steps.append({"op": "blur", "kernel_size": BLUR_KERNEL, "sigma_x": sigma, "sigma_y": sigma, "angle": 0.0})
    steps.append({"op": "resize", "mode": "bicubic", "height": height // scale, "width": width // scale})
    if "noise" in VERSIONS[version]:
        steps.append({"op": "noise", "sigma": _uniform(rng, NOISE_SIGMA), "gray": False,
                      "seed": int(rng.integers(2**32))})
    if "jpeg" in VERSIONS[version]:
        steps.append({"op": "jpeg", "quality": int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))})
    return steps


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


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return round(float(rng.uniform(*bounds)), DIGITS)


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
    return {"op": "noise", "sigma": _uniform(rng, cfg.noise_sigma),
            "gray": bool(rng.random() < cfg.gray_noise_prob), "seed": int(rng.integers(2**32))}


def _draw_jpeg(rng: np.random.Generator, cfg: PairsConfig) -> Step:
    low, high = cfg.jpeg_quality
    return {"op": "jpeg", "quality": int(rng.integers(low, high + 1))}


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
