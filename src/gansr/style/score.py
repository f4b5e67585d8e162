"""A style score the style branch cannot game: classical colour and texture statistics.

Training pulls the generator towards the distributions of random-CNN filter
responses and of chroma, so scoring it with those would reward whatever the
loss rewards. Here an image is described instead by normalised histograms
computed with instruments training never uses (only the colour histogram
measures a property, the palette, that a loss term also pulls on):

- colour: joint histogram of chroma (Cb, Cr), 16 bins each (Swain &
  Ballard 1991 on the chroma plane). Brightness is left out: the style
  keeps the photo's light and shade by design (content SSIM measures it),
  so a brightness histogram would score how close the photo's brightness
  happens to be to a style's, not the style;
- lbp: uniform rotation-invariant local binary patterns (Ojala et al. 2002);
- gabor: how the energy spreads over a Gabor filter bank's scales and
  orientations (Manjunath & Ma 1996);
- contrast: local standard deviation, which LBP is blind to by design.

Two descriptors are compared by the mean Hellinger distance over these
components; every bin edge is fixed, so images of any size are comparable.
Statistics alone cannot tell a style drawn from the photo from a style
image laid over it (any blend moves them), so a pair counts only where the
measures of :mod:`gansr.style.follow` say the style follows the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import tensorflow as tf
from PIL import Image
from skimage.feature import local_binary_pattern

from gansr.metrics import rgb_to_y

CHROMA_BINS = 16  # per axis: 256 joint bins, coarse enough for a 256 px style image
CHROMA_RANGE = (16.0, 240.0)  # BT.601 Cb and Cr of 8-bit RGB
# BT.601 RGB -> (Cb, Cr) offsets from 128, per 8-bit level of R, G, B (as metrics.Y_WEIGHTS is for Y).
CBCR_WEIGHTS = np.array([[-37.797, 112.0], [-74.203, -93.786], [112.0, -18.214]]) / 255.0
LBP_POINTS = 8
LBP_RADII = (1, 2, 4, 8)
GABOR_WAVELENGTHS = (4, 8, 16, 32)  # pixels: one octave apart
GABOR_ORIENTATIONS = 4
GABOR_SIGMA = 0.56  # envelope σ per wavelength: one-octave bandwidth, skimage.filters.gabor's default
GABOR_PAD = int(np.ceil(3 * GABOR_SIGMA * max(GABOR_WAVELENGTHS)))  # reflect padding: 3σ of the widest filter
CONTRAST_BLOCK = 8
# Block std of Y ([16, 235]): one bin for flat blocks (< 0.5), then 15 log-spaced bins up to 128.
CONTRAST_EDGES = np.concatenate(([0.0], np.geomspace(0.5, 128.0, 16)))
# The report's summary figures: logged to MLflow, tagged on registered versions, shown for the controls.
HEADLINE = ("own_style_rate", "mean_moved", "min_content_ssim")


def headline(report: dict) -> dict:
    """The :data:`HEADLINE` figures of a :func:`style_report`."""
    return {key: report[key] for key in HEADLINE}


@dataclass(frozen=True)
class StyleDescriptor:
    """Normalised histograms (each sums to 1), one per component."""

    colour: np.ndarray
    texture: dict[str, np.ndarray]

    def components(self) -> dict[str, np.ndarray]:
        """All components by name, colour first."""
        return {"colour": self.colour, **self.texture}


def describe(image: np.ndarray) -> StyleDescriptor:
    """H×W×3 uint8 RGB -> descriptor."""
    _check_rgb(image, "image")
    if min(image.shape[:2]) <= 2 * max(LBP_RADII):
        raise ValueError(f"image must be larger than {2 * max(LBP_RADII)} px on each side, got {image.shape}")
    y = rgb_to_y(image)
    return StyleDescriptor(
        colour=_chroma_histogram(image),
        texture={"lbp": _lbp_histogram(y), "gabor": _gabor_energy(y), "contrast": _contrast_histogram(y)},
    )


def style_distance(a: StyleDescriptor, b: StyleDescriptor) -> float:
    """Mean Hellinger distance over the components, in [0, 1] (0 = same statistics).

    Hellinger, H(p, q) = sqrt(Σ (√p - √q)² / 2), is bounded and symmetric, and
    unlike χ² it stays finite where one histogram has empty bins. This form
    (rather than sqrt(1 - Σ √(pq))) is exactly 0 for equal histograms.
    """
    pa, pb = a.components(), b.components()
    if pa.keys() != pb.keys():
        raise ValueError(f"descriptors have different components: {sorted(pa)} vs {sorted(pb)}")
    distances = [np.sqrt(np.sum((np.sqrt(pa[k]) - np.sqrt(pb[k])) ** 2) / 2) for k in pa]
    return float(np.mean(distances))


def content_ssim(styled: np.ndarray, lr: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) of the styled output's luminance, downscaled to the LR size, vs the LR's.

    The downscale is Pillow's antialiased bicubic, the one that makes the LR
    inputs (gansr.data.pairs), so an output that kept the content scores ≈ 1.
    """
    _check_rgb(styled, "styled")
    _check_rgb(lr, "lr")
    height, width = lr.shape[:2]
    y_styled = Image.fromarray(rgb_to_y(styled).astype(np.float32))  # mode F: resized without rounding to 8 bits
    y_small = np.asarray(y_styled.resize((width, height), Image.Resampling.BICUBIC), np.float64)
    ssim = tf.image.ssim(tf.constant(y_small[None, ..., None]), tf.constant(rgb_to_y(lr)[None, ..., None]),
                         max_val=255.0)
    return float(ssim[0])


def style_report(unstyled: list[np.ndarray], styled: dict[str, list[np.ndarray]],
                 style_images: dict[str, np.ndarray], lr: list[np.ndarray],
                 follows: dict[str, list[bool]] | None = None) -> dict:
    """Per style and overall: how far outputs moved towards their style, and whether towards their own.

    The move of an output towards style t is 1 - d(styled, S_t) / d(unstyled, S_t):
    relative, because photos start at different distances from each style.
    An (image, style) pair counts towards ``own_style_rate`` when its output
    moved most towards its own style and, per ``follows`` (from
    :mod:`gansr.style.follow`; default: all do), its style follows the photo
    rather than lying over it; ``statistics_rate`` counts the first alone.
    A style's ``content_ssim`` is its mean over the images; ``min_content_ssim``
    is the lowest of any single (image, style) pair.
    Per-style entries are under ``report["styles"][name]`` so that a style
    named like a summary key cannot overwrite it.
    """
    if styled.keys() != style_images.keys():
        raise ValueError(f"styled has styles {sorted(styled)} but style_images has {sorted(style_images)}")
    if any(len(images) != len(unstyled) for images in [lr, *styled.values()]):
        raise ValueError("unstyled, lr and every styled list must have one image per input")
    targets = {t: describe(image) for t, image in style_images.items()}

    def distances(image: np.ndarray) -> dict[str, float]:
        # One description per image, compared with every style.
        descriptor = describe(image)
        return {t: style_distance(descriptor, target) for t, target in targets.items()}

    before = [distances(image) for image in unstyled]
    follows = follows or {s: [True] * len(unstyled) for s in styled}
    styles: dict[str, dict[str, float]] = {}
    own, identified, moved, kept = [], [], [], []
    for s, outputs in styled.items():
        after = [distances(image) for image in outputs]
        moves = [{t: 1.0 - a[t] / b[t] for t in targets} for a, b in zip(after, before)]
        towards_own = [all(m[s] > m[t] for t in targets if t != s) for m in moves]
        own += towards_own
        identified += [statistics and drawn for statistics, drawn in zip(towards_own, follows[s])]
        moved.append(np.mean([m[s] for m in moves]))
        kept.append([content_ssim(out, small) for out, small in zip(outputs, lr)])
        styles[s] = {
            "moved": moved[-1],
            "towards_own": np.mean(towards_own),
            "follows": np.mean(follows[s]),
            "content_ssim": np.mean(kept[-1]),
            "distance_styled": np.mean([a[s] for a in after]),
            "distance_unstyled": np.mean([b[s] for b in before]),
        }
    return {
        "styles": {s: {k: round(float(v), 4) for k, v in entry.items()} for s, entry in styles.items()},
        "own_style_rate": round(float(np.mean(identified)), 4),
        "statistics_rate": round(float(np.mean(own)), 4),
        "mean_moved": round(float(np.mean(moved)), 4),
        "min_content_ssim": round(float(np.min(kept)), 4),  # over every (image, style) pair
        "pairs": len(own),
    }


def _chroma_histogram(image: np.ndarray) -> np.ndarray:
    cb, cr = np.moveaxis(image.reshape(-1, 3).astype(np.float64) @ CBCR_WEIGHTS + 128.0, -1, 0)
    edges = np.linspace(*CHROMA_RANGE, CHROMA_BINS + 1)
    counts, _, _ = np.histogram2d(cb, cr, bins=[edges, edges])
    return _normalise(counts.ravel())


def _lbp_histogram(y: np.ndarray) -> np.ndarray:
    """Per-radius histograms of P + 2 codes, concatenated, each radius weighted equally.

    One component rather than one per radius, so LBP does not outvote colour,
    Gabor and contrast 4 to 1 in the mean distance.
    """
    # LBP on integer grey levels: on floats, rounding noise flips codes in flat regions.
    grey = np.rint(y).astype(np.uint8)
    per_radius = []
    for r in LBP_RADII:
        # The outer r pixels sample outside the image; at r = 8 they would be a quarter of a 128 px crop.
        codes = local_binary_pattern(grey, LBP_POINTS, r, method="uniform")[r:-r, r:-r]
        per_radius.append(_normalise(np.bincount(codes.astype(np.intp).ravel(), minlength=LBP_POINTS + 2)))
    return _normalise(np.concatenate(per_radius))


def _gabor_energy(y: np.ndarray) -> np.ndarray:
    """Mean Gabor response magnitude per filter, normalised: where the texture's energy lies.

    Convolution by FFT with each filter given by its transfer function, the
    Gaussian at (cos θ, sin θ) / λ that is the exact Fourier transform of a
    complex Gabor kernel with a unit-sum envelope of width σ = 0.56 λ; being
    separable, it costs an outer product, not a kernel FFT.
    """
    # Mean removed so no filter picks up DC; reflect padding so the FFT's wrap-around adds no false edges.
    padded = np.pad(y - y.mean(), GABOR_PAD, mode="reflect")
    shape = [scipy.fft.next_fast_len(n) for n in padded.shape]  # a prime side would be slow
    spectrum = scipy.fft.fft2(padded.astype(np.complex64), shape)
    fy, fx = scipy.fft.fftfreq(shape[0]), scipy.fft.fftfreq(shape[1])
    height, width = y.shape
    energies = []
    for wavelength in GABOR_WAVELENGTHS:
        spread = 2 * (np.pi * GABOR_SIGMA * wavelength) ** 2
        for theta in np.pi * np.arange(GABOR_ORIENTATIONS) / GABOR_ORIENTATIONS:
            transfer = np.outer(np.exp(-spread * (fy - np.sin(theta) / wavelength) ** 2),
                                np.exp(-spread * (fx - np.cos(theta) / wavelength) ** 2)).astype(np.float32)
            response = scipy.fft.ifft2(spectrum * transfer)
            energies.append(np.abs(response[GABOR_PAD:GABOR_PAD + height, GABOR_PAD:GABOR_PAD + width]).mean())
    # A flat image has no energy anywhere: spread it evenly (the contrast histogram says it is flat).
    return _normalise(np.array(energies) + 1e-12)


def _contrast_histogram(y: np.ndarray) -> np.ndarray:
    """Histogram of the std of Y over non-overlapping blocks, on fixed log-spaced bins."""
    n = CONTRAST_BLOCK
    height, width = (y.shape[0] // n) * n, (y.shape[1] // n) * n
    blocks = y[:height, :width].reshape(height // n, n, width // n, n)
    std = np.clip(blocks.std(axis=(1, 3)), 0.0, CONTRAST_EDGES[-1] - 1e-9)  # top bin takes the rest
    return _normalise(np.histogram(std, bins=CONTRAST_EDGES)[0])


def _normalise(counts: np.ndarray) -> np.ndarray:
    counts = counts.astype(np.float64)  # also sum in float64: float32 Gabor energies would sum to 1 ± 1e-7
    return counts / counts.sum()


def _check_rgb(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be H×W×3 RGB, got shape {image.shape}")
