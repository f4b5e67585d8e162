"""The layers a styled generator is made of, registered so a saved one reloads with ``safe_mode=True``.

- :class:`StyleSwap`: the style image's own strokes, each drawn where the
  photo looks most like the place it came from (style swap);
- :class:`StyleModulation`: a per-style scale and shift of a feature map;
- :class:`StyleComposite`: the swapped strokes with the photo's light and
  shade at LR scale, refined by maps the style network draws.

The switch between the super-resolved and the styled image, and the names
of the styles, are the generator's (:class:`gansr.models.layers.StyleSwitch`);
how the branch is wired is :mod:`gansr.style.network`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from gansr.errors import ConfigError

# BT.601 luma weights, summing to 1: light and shade of an RGB image in [0, 1].
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
CONTEXT = 5  # LR pixels: the side of the neighbourhood a match compares (20 HR pixels at ×4)
SPAN = 3  # LR pixels: the side of the HR patch drawn around each LR pixel
MATCHES = 2  # style patches blended at each LR pixel, weighted by how well they match
TIE = 1e-3  # squared shape distance within which candidates count as equally near (blended evenly)
NOISE = 1.0 / 255.0  # luma RMS of one grey level: shapes fainter than this are not told apart
LEVEL_TOLERANCE = 0.2  # luma: how far a candidate's mean light may be from the neighbourhood's (51 grey levels)
FLAT = 0.015  # luma RMS, off a neighbourhood's best plane, at which half the patches' detail is drawn (4 levels)
DEGRID_CELLS = 5  # LR pixels: the side of the region over which a pattern repeating every LR pixel is found


def luma(images: tf.Tensor) -> tf.Tensor:
    """[..., 3] RGB → [..., 1] luma with :data:`LUMA_WEIGHTS`, in float32."""
    return tf.reduce_sum(tf.cast(images, tf.float32) * tf.constant(LUMA_WEIGHTS), axis=-1, keepdims=True)


def coarse(images: tf.Tensor, scale: int) -> tf.Tensor:
    """``images`` at LR scale: the means of ``scale``×``scale`` blocks, bilinearly upsampled back.

    Bilinear rather than block-wise, so the split into coarse and fine
    (``images − coarse``) leaves no block edges.
    """
    blocks = tf.nn.avg_pool2d(images, scale, scale, "SAME")
    return tf.image.resize(blocks, tf.shape(images)[1:3], "bilinear")


def window(scale: int) -> np.ndarray:
    """The SPAN·``scale`` weights of a patch's row or column: a quadratic B-spline, smooth at its ends.

    Windows one LR pixel apart overlap-add to exactly 1.
    """
    x = (np.arange(SPAN * scale, dtype=np.float64) + 0.5) / scale
    spline = np.where(x < 1, x**2 / 2, np.where(x < 2, (-2 * x**2 + 6 * x - 3) / 2, (3 - x) ** 2 / 2))
    return spline.astype(np.float32)


def neighbourhoods(y: tf.Tensor) -> tf.Tensor:
    """[B, H, W, 1] → [B, H, W, CONTEXT²]: each pixel's CONTEXT×CONTEXT neighbourhood (mirrored at the edges)."""
    pad = CONTEXT // 2
    padded = tf.pad(y, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    picks = np.eye(CONTEXT * CONTEXT, dtype=np.float32).reshape(CONTEXT, CONTEXT, 1, CONTEXT * CONTEXT)
    return tf.nn.conv2d(padded, tf.constant(picks), 1, "VALID")


def off_plane(around: tf.Tensor) -> tf.Tensor:
    """[..., CONTEXT²] neighbourhoods → [..., 1]: the RMS of what the best-fitting plane leaves of each.

    Light and shade that only ramps (a sky, a blurred background) is not
    detail a style can follow; edges, texture and noise are.
    """
    offsets = np.arange(CONTEXT, dtype=np.float64) - CONTEXT // 2
    rows, cols = np.meshgrid(offsets, offsets, indexing="ij")
    plane = np.stack([np.ones(CONTEXT * CONTEXT), rows.ravel(), cols.ravel()], axis=1)
    remove = np.eye(CONTEXT * CONTEXT) - plane @ np.linalg.pinv(plane)  # projection off the planes
    rest = tf.einsum("...c,cd->...d", around, tf.constant(remove, tf.float32))
    return tf.sqrt(tf.reduce_mean(tf.square(rest), axis=-1, keepdims=True))


def shape(around: tf.Tensor) -> tf.Tensor:
    """[..., CONTEXT²] neighbourhoods → their shape: less their mean, scaled to unit length.

    Faint detail (the grain of a night sky, a smooth background's last grey
    levels) has a shape as clear as strong detail has, so it finds the style
    patches shaped like it rather than always the flattest ones. Below
    :data:`NOISE` per pixel, shapes shrink towards zero and match alike.
    """
    centred = around - tf.reduce_mean(around, axis=-1, keepdims=True)
    length = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=-1, keepdims=True))
    return centred / (length + CONTEXT * NOISE)


def degrid(detail: tf.Tensor, scale: int) -> tf.Tensor:
    """``detail`` [B, H, W, 3] less what of it repeats every ``scale`` pixels around each pixel.

    Patches picked per LR pixel share a little of the LR grid (their own
    pixel's place in it), and where neighbouring pixels pick alike that
    prints as a regular grid. The grid at a pixel is the mean of the pixels
    of the same phase over DEGRID_CELLS² LR pixels around it, less the mean
    over whole periods there; subtracting it is a comb filter that removes
    the frequencies k / ``scale`` and keeps the rest of the texture.
    Separable, with mirrored edges.
    """
    reach = DEGRID_CELLS // 2 * scale
    same_phase = np.zeros(2 * reach + 1, np.float32)
    same_phase[::scale] = 1.0 / DEGRID_CELLS
    whole_periods = np.ones(2 * reach + 1, np.float32)
    whole_periods[[0, -1]] = 0.5  # the two ends share a phase: whole periods only
    whole_periods /= whole_periods.sum()

    def smooth(x: tf.Tensor, taps: np.ndarray) -> tf.Tensor:
        half = len(taps) // 2
        x = tf.pad(x, [[0, 0], [half, half], [half, half], [0, 0]], mode="REFLECT")
        for kernel in (taps[:, None], taps[None, :]):
            x = tf.nn.depthwise_conv2d(x, tf.constant(np.tile(kernel[..., None, None], (1, 1, 3, 1))),
                                       [1, 1, 1, 1], "VALID")
        return x

    return detail - smooth(detail, same_phase) + smooth(detail, whole_periods)


def swap_bank(image: np.ndarray, scale: int, patches: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A style image's ``patches`` candidates: keys [patches, CONTEXT²], colours [patches, 3], details [patches, D].

    The style is seen as the generator sees a photo, at LR (antialiased
    bicubic ÷ ``scale``). A candidate is an LR pixel of the style; its key is
    the CONTEXT×CONTEXT neighbourhood there in the style's luma, equalised so
    that its darkest and brightest places match the photo's (luminance
    remapping, as in image analogies, Hertzmann et al. 2001); its colour is
    that LR pixel's; its detail is the style's HR patch of SPAN·scale pixels
    around it less what its LR image explains (the HR image minus the LR
    image upsampled bilinearly, as :class:`StyleSwap` upsamples the
    colours), D = (SPAN·scale)²·3 values. Detail free of
    the LR pixel's own value carries no bump aligned with the LR grid, which
    patches chosen by that value would otherwise print as a grid.
    Candidates sit at evenly spaced LR pixels. Keys and colours are 8-bit
    levels (0..255), which float16 export keeps exactly, so every format
    matches the same candidates.
    """
    height, width = image.shape[0] // scale * scale, image.shape[1] // scale * scale
    hr = Image.fromarray(image[:height, :width])
    lr = hr.resize((width // scale, height // scale), Image.Resampling.BICUBIC)
    explained = np.asarray(lr.resize((width, height), Image.Resampling.BILINEAR), np.float32)
    detail = (np.asarray(hr, np.float32) - explained) / 255.0
    lr = np.asarray(lr)
    y = lr.astype(np.float64) @ np.array(LUMA_WEIGHTS)
    ranks = np.argsort(np.argsort(y, axis=None, kind="stable"), kind="stable").reshape(y.shape)
    levels = np.round(255.0 * (ranks + 0.5) / ranks.size)
    positions = np.unique(np.linspace(0, levels.size - 1, patches).round().astype(int))
    if len(positions) < patches:
        raise ConfigError(f"style image of {image.shape[1]}×{image.shape[0]} has fewer than {patches} LR pixels "
                          f"at ×{scale}: raise style.image_size or lower style.patches")
    rows, cols = np.divmod(positions, levels.shape[1])
    padded = np.pad(levels, CONTEXT // 2, mode="reflect")
    keys = np.stack([padded[r : r + CONTEXT, c : c + CONTEXT].ravel() for r, c in zip(rows, cols)])
    reach, side = (SPAN - 1) // 2 * scale, SPAN * scale
    detail = np.pad(detail, ((reach, reach), (reach, reach), (0, 0)), mode="reflect")
    details = np.stack([detail[r * scale : r * scale + side, c * scale : c * scale + side].ravel()
                        for r, c in zip(rows, cols)])
    return keys.astype(np.float32), lr[rows, cols].astype(np.float32), details.astype(np.float32)


@keras.saving.register_keras_serializable(package="gansr")
class StyleSwap(keras.layers.Layer):
    """Each LR pixel of the photo drawn with the style's own patches from the places that look most like it.

    A style swap (Chen & Schmidt 2016) in the style's pixels: the
    CONTEXT×CONTEXT luma neighbourhood of every LR pixel is compared with the
    style's candidate keys (:func:`swap_bank`) by its shape
    (:func:`shape`, whatever its contrast) and, more loosely, its mean light
    (within :data:`LEVEL_TOLERANCE`), and the :data:`MATCHES` nearest are
    blended there, each weighted by how much nearer it is than the first
    candidate left out (plus :data:`TIE`): a clear best match is copied,
    near-equal ones are mixed, and a candidate entering or leaving the
    nearest counts for almost nothing at that moment, so the output changes
    smoothly with the photo, and rounding (float16 weights, another
    runtime's order of sums) that reorders near-equal candidates changes
    nothing visible. Matching by shape draws a texture's stones and mortar along the
    photo's faint detail too, at the style's own contrast; the light keeps a
    colour style's colours where the style has them. The patches' colours
    make an LR image in the style's colours, upsampled bilinearly; their
    detail patches, SPAN LR pixels wide, overlap-add on top under a smooth
    window, so they meet without seams.
    The photo alone decides which patches go where: shift it and the strokes
    move with it; two photos get unrelated strokes. Where the photo is flat
    or only ramps there is nothing to draw along, and the same patches
    repeated at every LR pixel would print a grid, so the patches' detail
    fades in with the neighbourhood's own detail (:func:`off_plane`,
    :data:`FLAT`), and what still repeats with the LR grid is removed
    (:func:`degrid`).

    ``[lr, style]`` → the swapped HR image; style s uses bank s − 1 (style 0
    uses the first bank; :class:`~gansr.models.layers.StyleSwitch` discards
    it). The banks are set with :meth:`set_banks` after building, not trained.
    """

    def __init__(self, styles: int, patches: int, scale: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.styles = styles
        self.patches = patches
        self.scale = scale

    @property
    def lr_reach(self) -> int:
        """LR pixels of context an output pixel depends on: the neighbourhood, the widest of the rest, the degrid.

        The patches reach (SPAN − 1) / 2 LR pixels, the upsampling of the
        colours and of the fade 1, :func:`degrid` DEGRID_CELLS // 2 more.
        """
        return CONTEXT // 2 + max((SPAN - 1) // 2, 1) + DEGRID_CELLS // 2

    def lr_floats(self) -> int:
        """Floats held per LR pixel while matching: every candidate's distance, the patches blended."""
        return self.patches + MATCHES * (SPAN * self.scale) ** 2 * 3

    def build(self, input_shape: list[tuple]) -> None:
        side = SPAN * self.scale
        shapes = {"keys": CONTEXT * CONTEXT, "colours": 3, "details": side * side * 3}
        for name, size in shapes.items():
            setattr(self, name, self.add_weight(shape=(self.styles, self.patches, size), initializer="zeros",
                                                trainable=False, name=name))

    def set_banks(self, images: list[np.ndarray]) -> None:
        """Store the candidates of each style image (uint8 RGB, in style order)."""
        banks = [swap_bank(image, self.scale, self.patches) for image in images]
        self.set_weights([np.stack(part) for part in zip(*banks)])

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        lr, style = inputs
        index = tf.maximum(tf.reshape(tf.cast(style, tf.int32), [-1]) - 1, 0)
        keys, colours, details = (tf.gather(tf.convert_to_tensor(bank), index)  # [B, M, …] for each image
                                  for bank in (self.keys, self.colours, self.details))
        keys, colours = keys / 255.0, colours / 255.0
        around = neighbourhoods(luma(lr))  # [B, h, w, C²]
        ours, theirs = shape(around), shape(keys)
        distances = tf.nn.relu(tf.reduce_sum(tf.square(ours), -1, keepdims=True)
                               - 2.0 * tf.einsum("bhwc,bmc->bhwm", ours, theirs)
                               + tf.reduce_sum(tf.square(theirs), -1)[:, None, None, :])
        level = tf.reduce_mean(around, -1, keepdims=True) - tf.reduce_mean(keys, -1)[:, None, None, :]
        distances += tf.square(level / LEVEL_TOLERANCE)
        nearest, picked = tf.math.top_k(-distances, MATCHES + 1)
        margins = nearest[..., :MATCHES] - nearest[..., MATCHES:] + TIE  # d_left_out − d (≥ 0), floored
        weights = margins / tf.reduce_sum(margins, axis=-1, keepdims=True)
        picked = picked[..., :MATCHES]
        colour = tf.einsum("bhwk,bhwkc->bhwc", weights, tf.gather(colours, picked, batch_dims=1))
        detail = self._overlap_add(tf.einsum("bhwk,bhwkv->bhwv", weights, tf.gather(details, picked, batch_dims=1)))
        own_detail = off_plane(around)
        fade = tf.image.resize(own_detail / (own_detail + FLAT), tf.shape(detail)[1:3], "bilinear")
        # Bilinear, as swap_bank splits colour from detail: TFLite has no bicubic resize.
        return tf.image.resize(colour, tf.shape(detail)[1:3], "bilinear") + degrid(fade * detail, self.scale)

    def _overlap_add(self, patches: tf.Tensor) -> tf.Tensor:
        """[B, h, w, (SPAN·s)²·3] patches centred on each LR pixel's block → [B, h·s, w·s, 3], windowed.

        Variance-preserving: the windowed sum is divided by the root of the
        squared weights, not by the weights (Heitz & Neyret 2018's blending
        of texture tiles), so unrelated patches keep their contrast where
        they overlap instead of averaging to grey between LR pixels. Details
        are zero-mean, so no mean needs restoring; at the image's edge, where
        fewer patches overlap, the same division keeps the contrast.
        """
        weights = (np.outer(window(self.scale), window(self.scale))[:, :, None] * np.ones(3, np.float32)).reshape(-1)
        return (self._sum_over_patches(patches * weights)
                / tf.sqrt(self._sum_over_patches(tf.ones_like(patches) * weights**2)))

    def _sum_over_patches(self, parts: tf.Tensor) -> tf.Tensor:
        """[B, h, w, (SPAN·s)²·3] → [B, h·s, w·s, 3]: each HR pixel's sum over the patches that cover it."""
        s, reach = self.scale, (SPAN - 1) // 2
        shape = tf.shape(parts)
        # Rows of the patch, each SPAN·s pixels of 3 channels (at most 5 dimensions, as TFLite allows).
        rows = tf.reshape(parts, [shape[0], shape[1], shape[2], SPAN * s, SPAN * s * 3])
        total = 0.0
        for qy in range(SPAN):  # the block of row qy of the patch at LR pixel p lies over LR pixel p − reach + qy
            for qx in range(SPAN):
                block = rows[:, :, :, qy * s : (qy + 1) * s, qx * s * 3 : (qx + 1) * s * 3]
                block = tf.reshape(block, [shape[0], shape[1], shape[2], s * s * 3])
                total += tf.pad(block, [[0, 0], [qy, SPAN - 1 - qy], [qx, SPAN - 1 - qx], [0, 0]])
        return tf.nn.depth_to_space(total[:, reach : reach + shape[1], reach : reach + shape[2]], s)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        batch, height, width, channels = input_shape[0]
        s = self.scale
        return (batch, None if height is None else height * s, None if width is None else width * s, channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "styles": self.styles, "patches": self.patches, "scale": self.scale}


@keras.saving.register_keras_serializable(package="gansr")
class StyleModulation(keras.layers.Layer):
    """Per-style feature-wise scale and shift: x · (1 + γ_s) + β_s (FiLM, Perez et al. 2018).

    The conditional part of Dumoulin et al.'s (2017, "A learned representation
    for artistic style") multi-style network: shared filters, a few modulation
    parameters per style. There is no normalisation before it, because
    instance statistics would depend on the whole image and make tiled
    inference differ from untiled. Style 0 means "no style" and is the identity.
    """

    def __init__(self, styles: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.styles = styles

    def build(self, input_shape: list[tuple]) -> None:
        shape = (self.styles, input_shape[0][-1])
        self.gamma = self.add_weight(shape=shape, initializer="zeros", name="gamma")
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta")

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        x, style = inputs
        style = tf.reshape(tf.cast(style, tf.int32), [-1])
        styled = tf.cast(style > 0, x.dtype)[:, None, None, None]
        index = tf.maximum(style - 1, 0)
        gamma = tf.cast(tf.gather(self.gamma, index), x.dtype)[:, None, None, :]
        beta = tf.cast(tf.gather(self.beta, index), x.dtype)[:, None, None, :]
        return x + styled * (x * gamma + beta)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "styles": self.styles}


@keras.saving.register_keras_serializable(package="gansr")
class StyleComposite(keras.layers.Layer):
    """The styled image: the swapped strokes, part in the photo's light and shade, refined by the network's maps.

    ``[sr, swapped, maps]``: the super-resolved image, the
    :class:`StyleSwap` output and four maps at LR resolution, bilinearly
    upsampled. At LR scale, the light and shade are ``shading`` parts the
    photo's and the rest the swapped strokes' own, so the content stays
    readable while colour and texture come from the style (luminance-only
    style transfer, Gatys et al. 2017, "Controlling perceptual factors in
    neural style transfer", at ``shading`` 1). The maps say how much of the
    strokes' detail finer than an LR pixel to keep (min(1, 1 + tanh): the
    network can hold back what the swap drew but not amplify it, nor a trace
    of grid where the swap faded its detail out) and shift the colour
    without touching the light (an RGB offset less its luma). With zero maps
    the output is the swapped strokes in that light.
    """

    def __init__(self, scale: int, shading: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale
        self.shading = shading

    @property
    def lr_reach(self) -> int:
        """LR pixels of context: the bilinear upsampling of the maps and of the LR-scale means."""
        return 2

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        sr, swapped, maps = (tf.cast(t, tf.float32) for t in inputs)
        maps = tf.image.resize(maps, tf.shape(sr)[1:3], "bilinear")
        smooth = coarse(swapped, self.scale)
        light = self.shading * (coarse(luma(sr), self.scale) - luma(smooth))
        held_back = tf.minimum(tf.tanh(maps[..., :1]), 0.0)
        colour = maps[..., 1:] - luma(maps[..., 1:])
        return swapped + light + held_back * (swapped - smooth) + colour

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "shading": self.shading}
