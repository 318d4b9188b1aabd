"""Spectra: per-layer alpha bars with bands, log-log ESDs with fits, covariance spectra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = ["alpha_bars", "esd_figure", "covariance_figure", "ALPHA_BANDS"]

# WeightWatcher's reading of the power-law exponent of a layer's ESD.
ALPHA_BANDS = (
    (0.0, 2.0, "rgba(214,39,40,0.12)", "below 2: over-fit risk"),
    (2.0, 6.0, "rgba(44,160,44,0.12)", "2–6: typical of well-trained layers"),
    (6.0, None, "rgba(255,127,14,0.12)", "above 6: under-trained or random-like"),
)
_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1")


def _short(name: str) -> str:
    return name.replace("encoder.layer.", "L").replace(".weight", "").replace("attention.", "att.")


def alpha_bars(models: dict[str, pd.DataFrame], column: str = "alpha", height: int = 480) -> go.Figure:
    """Grouped bars of ``column`` per layer for one or more models, over the alpha bands.

    ``models`` maps a model label to its per-layer table (columns ``name`` and ``column``).
    """
    fig = go.Figure()
    top = 8.0
    for i, (label, df) in enumerate(models.items()):
        vals = pd.to_numeric(df[column], errors="coerce")
        top = max(top, float(np.nanmax(vals.to_numpy())) if vals.notna().any() else top)
        fig.add_bar(x=[_short(n) for n in df["name"]], y=vals, name=label,
                    marker_color=_COLORS[i % len(_COLORS)],
                    hovertext=df["name"], hovertemplate="%{hovertext}<br>alpha %{y:.2f}<extra></extra>")
    for lo, hi, color, label in ALPHA_BANDS:
        fig.add_hrect(y0=lo, y1=hi if hi is not None else top * 1.05, fillcolor=color, line_width=0,
                      layer="below", annotation_text=label, annotation_position="top left",
                      annotation_font_size=10)
    fig.update_layout(barmode="group", height=height, margin=dict(l=10, r=10, t=10, b=10),
                      yaxis_title=column, legend=dict(orientation="h", y=1.08))
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9))
    return fig


def esd_figure(evals: np.ndarray, *, fit_x: np.ndarray | None = None, fit_y: np.ndarray | None = None,
               xmin: float | None = None, bulk_max: float | None = None, alpha: float | None = None,
               title: str = "", height: int = 420) -> go.Figure:
    """Log-log empirical spectral density of one layer, with the power-law fit and the MP bulk edge."""
    ev = np.asarray(evals, dtype=np.float64)
    ev = ev[ev > 0]
    if ev.size:  # numerically-zero eigenvalues would stretch the log axis over 20 decades
        ev = ev[ev >= ev.max() * 1e-8]
    fig = go.Figure()
    if ev.size:
        bins = np.geomspace(ev.min(), ev.max() * 1.0001, min(80, max(10, ev.size // 10)))
        dens, edges = np.histogram(ev, bins=bins, density=True)
        centers = np.sqrt(edges[:-1] * edges[1:])
        keep = dens > 0
        fig.add_scatter(x=centers[keep], y=dens[keep], mode="markers+lines", name="ESD",
                        line=dict(color="#4e79a7"))
    if fit_x is not None and len(fit_x):
        fig.add_scatter(x=fit_x, y=fit_y, mode="lines", name=f"power law (alpha={alpha:.2f})"
                        if alpha is not None else "power law", line=dict(color="#e15759", dash="dash"))
    if xmin:
        fig.add_vline(x=xmin, line=dict(color="#e15759", width=1, dash="dot"),
                      annotation_text="xmin", annotation_position="bottom right")
    if bulk_max and np.isfinite(bulk_max):
        fig.add_vline(x=bulk_max, line=dict(color="#59a14f", width=2),
                      annotation_text="MP bulk edge", annotation_position="top left")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), title=title,
                      xaxis_title="eigenvalue λ", yaxis_title="density", legend=dict(orientation="h"))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def covariance_figure(eigenvalues: np.ndarray, *, bulk_max: float | None = None, height: int = 320) -> go.Figure:
    """Covariance eigenvalues by rank (log scale), with the Marchenko–Pastur bulk edge."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    fig = go.Figure()
    fig.add_scatter(x=np.arange(1, len(ev) + 1), y=np.clip(ev, 1e-12, None), mode="lines+markers",
                    marker=dict(size=4), name="eigenvalue")
    if bulk_max and np.isfinite(bulk_max):
        fig.add_hline(y=bulk_max, line=dict(color="#59a14f", dash="dash"),
                      annotation_text="MP bulk edge", annotation_position="top right")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="rank",
                      yaxis_title="covariance eigenvalue", showlegend=False)
    fig.update_yaxes(type="log")
    return fig
