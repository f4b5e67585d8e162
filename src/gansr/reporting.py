"""The evaluation's figures as text: the evaluate stage's log and `gansr summary`."""

from __future__ import annotations

from typing import Any

from gansr.data.degradations import VERSIONS
from gansr.layout import VARIANTS


def format_eval_table(summary: dict[str, Any]) -> str:
    """The evaluation summary as a small aligned text table."""
    methods = [m for m in ("bicubic", *VARIANTS) if m in summary]
    lines = [f"{'method':<10} {'Y-PSNR (dB)':>12} {'SSIM':>8} {'gain (dB)':>10} {'detail':>7} {'grid':>6} "
             f"{'streaks (dB)':>13}"]
    for method in methods:
        entry = summary[method]
        gain = f"{entry['gain_db']:+.2f}" if "gain_db" in entry else ""
        detail = f"{entry['detail']:.2f}" if "detail" in entry else ""
        grid = f"{entry['grid']:.3f}" if "grid" in entry else ""
        streaks = f"{entry['streaks']:+.1f}" if "streaks" in entry else ""
        lines.append(f"{method:<10} {entry['y_psnr']:>12.2f} {entry['ssim']:>8.4f} {gain:>10} {detail:>7} {grid:>6} "
                     f"{streaks:>13}")
    return "\n".join(lines)


def format_style_scores(scores: dict[str, Any]) -> str:
    """The independent style score in one line, with its controls."""
    controls = scores["controls"]
    return (f"moved most towards its own style, drawn from the photo, in {scores['own_style_rate']:.0%} of "
            f"(image, style) pairs (controls: tiled blend {controls['tiled_blend']['own_style_rate']:.0%}, "
            f"palette + emboss {controls['palette_emboss']['own_style_rate']:.0%}, unstyled "
            f"{controls['unstyled']['own_style_rate']:.0%}); moved {scores['mean_moved']:.0%} of the way on average; "
            f"content SSIM at LR scale >= {scores['min_content_ssim']:.2f}")


def format_real_scores(report: dict[str, Any]) -> str:
    """The degraded test split: per version, bicubic's Y-PSNR and each generator's gain over it."""
    lines = []
    for version in sorted(report["versions"], key=list(VERSIONS).index):  # real.json's keys are sorted
        order = ["bicubic", *VARIANTS]  # then any other generator, by name
        methods = dict(sorted(report["versions"][version].items(),
                              key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0])))
        gains = ", ".join(f"{method} {entry['gain_db']:+.2f} dB" for method, entry in methods.items()
                          if "gain_db" in entry)
        scores = ", ".join(f"{method} {entry['niqe']:.2f}" for method, entry in methods.items() if "niqe" in entry)
        lines.append(f"{version:<6} bicubic {methods['bicubic']['y_psnr']:.2f} dB; gain: {gains}"
                     + (f"; NIQE: {scores}" if scores else ""))
    if "niqe_hr" in report:
        lines.append(f"NIQE (lower is more natural) of the clean HR: {report['niqe_hr']:.2f}")
    return "\n".join(lines)


def degraded_headline(report: dict[str, Any], method: str) -> dict[str, float]:
    """``method``'s gain over bicubic in each version of the degraded test split, and their mean.

    The mean, ``degraded_gain_db``, is the ``real`` generator's champion rule.
    """
    gains = {f"degraded_{version}_gain_db": entry[method]["gain_db"] for version, entry in report["versions"].items()}
    return {**gains, "degraded_gain_db": round(sum(gains.values()) / len(gains), 4)}
