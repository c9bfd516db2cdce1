"""The report's figures: matplotlib (Agg canvas, no pyplot state) -> base64 PNG strings.

Every function returns the PNG as base64 text for an ``<img src="data:image/png;base64,...">``,
so the report needs no network and no files beside it. Fonts are matplotlib's bundled DejaVu
Sans (nothing is downloaded). Text that comes from data is drawn literally (a ``$`` never
switches to math mode).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

_DPI = 100
_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
            "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6")  # fmt: skip


def plain(text: object) -> str:
    """Text for matplotlib drawn as written: ``$`` escaped so it never starts math mode."""
    return str(text).replace("$", r"\$")


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def to_base64_png(fig: Figure) -> str:
    """Render a figure to PNG (no timestamp or software metadata) and return it as base64."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def deployment_map_png(
    deployments: pd.DataFrame,
    *,
    events_per_deployment: Mapping[str, int],
    regions: object | None = None,
    region_of: Mapping[str, str] | None = None,
) -> str:
    """Map of the deployments (WGS84 longitude/latitude), over region polygons when given.

    Args:
        deployments: ``deployment_id, location_id, latitude, longitude`` (degrees).
        events_per_deployment: deployment id -> independent events (sets marker size; colour
            when there are no regions).
        regions: a GeoDataFrame of polygons in EPSG:4326, or None.
        region_of: deployment id -> region name (colours the points when regions are given).

    Returns:
        Base64 PNG.
    """
    fig = _new_figure(8.0, 6.0)
    ax = fig.add_subplot()
    lon = deployments["longitude"].to_numpy(dtype=float)
    lat = deployments["latitude"].to_numpy(dtype=float)
    events = np.array([events_per_deployment.get(d, 0) for d in deployments["deployment_id"]], dtype=float)
    sizes = 40.0 + 160.0 * np.sqrt(events / events.max()) if events.max() > 0 else np.full(len(events), 60.0)
    if regions is not None and len(regions):
        regions.plot(ax=ax, facecolor="#e8f0e0", edgecolor="#5a7d4f", linewidth=0.8)
    if region_of is not None:
        names = [region_of.get(d, "") or "(outside every region)" for d in deployments["deployment_id"]]
        order = sorted(set(names))
        colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(order)}
        ax.scatter(lon, lat, s=sizes, c=[colours[n] for n in names], edgecolors="black", linewidths=0.6, zorder=3)
        handles = [Patch(facecolor=colours[n], edgecolor="black", label=plain(n)) for n in order]
        ax.legend(handles=handles, title="region", fontsize=8, title_fontsize=8, loc="best")
    else:
        points = ax.scatter(lon, lat, s=sizes, c=events, cmap="viridis", edgecolors="black", linewidths=0.6,
                            zorder=3, vmin=0, vmax=max(float(events.max()), 1.0))  # fmt: skip
        fig.colorbar(points, ax=ax, label="independent events", shrink=0.8)
    seen: set[tuple[float, float]] = set()
    for loc, x, y in zip(deployments["location_id"], lon, lat, strict=True):
        if (x, y) in seen:  # several deployments at one location: label it once
            continue
        seen.add((x, y))
        ax.annotate(plain(loc), (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8, zorder=4)
    _pad_extent(ax, lon, lat)
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_aspect(1.0 / max(np.cos(np.radians(float(np.mean(lat)))), 0.1))
    ax.grid(True, linewidth=0.3, alpha=0.5)
    return to_base64_png(fig)


def _pad_extent(ax: object, lon: np.ndarray, lat: np.ndarray) -> None:
    x0, x1 = ax.get_xlim()  # type: ignore[attr-defined]
    y0, y1 = ax.get_ylim()  # type: ignore[attr-defined]
    x0, x1 = min(x0, lon.min()), max(x1, lon.max())
    y0, y1 = min(y0, lat.min()), max(y1, lat.max())
    pad_x, pad_y = max((x1 - x0) * 0.08, 0.01), max((y1 - y0) * 0.08, 0.01)
    ax.set_xlim(x0 - pad_x, x1 + pad_x)  # type: ignore[attr-defined]
    ax.set_ylim(y0 - pad_y, y1 + pad_y)  # type: ignore[attr-defined]


def activity_png(grid_rad: np.ndarray, density: np.ndarray, times_rad: np.ndarray, *, title: str) -> str:
    """One activity curve: kernel density over the 24 h clock, with the events as a rug.

    Args:
        grid_rad: evaluation points, radians over [0, 2*pi).
        density: density per radian at ``grid_rad``.
        times_rad: the events' times of day, radians.
        title: the taxon's display name.

    Returns:
        Base64 PNG.
    """
    fig = _new_figure(4.2, 2.6)
    ax = fig.add_subplot()
    hours = np.append(grid_rad, 2 * np.pi) / (2 * np.pi) * 24.0
    per_hour = np.append(density, density[0]) * (2 * np.pi) / 24.0
    ax.fill_between(hours, per_hour, color="#1b9e77", alpha=0.25)
    ax.plot(hours, per_hour, color="#1b9e77", linewidth=1.5)
    rug = np.asarray(times_rad) / (2 * np.pi) * 24.0
    ax.plot(rug, np.zeros_like(rug), "|", color="black", markersize=8, alpha=0.6)
    ax.set_xlim(0, 24)
    ax.set_xticks([0, 6, 12, 18, 24])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time of day (h, camera clock)")
    ax.set_ylabel("density (per h)")
    ax.set_title(plain(title), fontsize=10)
    return to_base64_png(fig)


def calendar_png(operation: pd.DataFrame, labels: Sequence[str]) -> str:
    """Effort calendar: one row per camera, one column per day; colour = share of the day working.

    Args:
        operation: :func:`ecowatch.analysis.camera_operation` by deployment (NaN = not set up,
            0 = set up but not working).
        labels: row labels (one per row of ``operation``).

    Returns:
        Base64 PNG.
    """
    values = operation.to_numpy(dtype=float)
    n_rows, n_days = values.shape
    fig = _new_figure(min(max(6.0, 2.5 + n_days * 0.06), 12.0), 1.2 + 0.32 * n_rows)
    ax = fig.add_subplot()
    cmap = ListedColormap(["#d7301f", "#fdae61", "#a6d96a", "#1a9641"]).with_extremes(bad="#f0f0f0")
    binned = np.where(np.isnan(values), np.nan, np.digitize(values, [1e-9, 0.5, 0.999]))
    days = operation.columns
    ax.imshow(np.ma.masked_invalid(binned), aspect="auto", cmap=cmap, vmin=0, vmax=3, interpolation="nearest",
              extent=(-0.5, n_days - 0.5, n_rows - 0.5, -0.5))  # fmt: skip
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([plain(label) for label in labels], fontsize=8)
    step = max(1, n_days // 12)
    ticks = list(range(0, n_days, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([pd.Timestamp(days[i]).strftime("%Y-%m-%d") for i in ticks], rotation=45, ha="right",
                       fontsize=7)  # fmt: skip
    legend = [Patch(facecolor=c, label=t) for c, t in (("#1a9641", "working all day"), ("#a6d96a", "working ≥ half"),
              ("#fdae61", "working < half"), ("#d7301f", "set up, not working (outage)"),
              ("#f0f0f0", "not set up"))]  # fmt: skip
    ax.legend(handles=legend, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return to_base64_png(fig)


def accumulation_png(curve: pd.DataFrame, *, unit: str) -> str:
    """Species accumulation: expected number of taxa against sampling units, ± 1 sd band.

    Args:
        curve: ``n_units, mean, sd`` (:func:`ecowatch.analysis.accumulation_exact`).
        unit: the unit's name for the axis label (``deployment`` or ``camera-day``).

    Returns:
        Base64 PNG.
    """
    fig = _new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    x = curve["n_units"].to_numpy(dtype=float)
    mean = curve["mean"].to_numpy(dtype=float)
    sd = curve["sd"].to_numpy(dtype=float)
    ax.fill_between(x, mean - sd, mean + sd, color="#7570b3", alpha=0.25, label="± 1 sd")
    ax.plot(x, mean, color="#7570b3", marker="o" if len(x) <= 30 else None, markersize=3, label="expected taxa")
    ax.set_xlabel(f"{unit}s sampled")
    ax.set_ylabel("taxa")
    ax.set_ylim(bottom=0)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8, loc="lower right")
    return to_base64_png(fig)
