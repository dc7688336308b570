"""The report's fixed look: one colour (and line style) per policy in every chart, distinct ones for
grid zones, and the layout every chart shares (legend above the plot, inside the figure; dates on
time axes)."""

from __future__ import annotations

from wattwise.simulations.policies import KNOWN_POLICIES

# Okabe-Ito (colour-blind safe), with a dark ochre for its yellow, which is hard to see on white.
# Its vermillion and orange are close as thin lines, so carbon-aware-keda's is dash-dotted; peaks
# takes a wine (Paul Tol's muted set) rather than a third orange-brown.
POLICY_COLORS: dict[str, str] = {
    "default": "#D55E00",
    "carbon-aware-keda": "#E69F00",
    "peaks": "#882255",
    "keda-tuned": "#0072B2",
    "keda-tuned-ca": "#56B4E9",
    "keda-tuned-karpenter": "#CC79A7",
    "keda-tuned-pinned-ca": "#332288",
    "wattwise": "#009E73",
    "oracle": "#000000",
    "wattwise-reactive": "#00563F",      # wattwise without pre-warming: a darker green, dashed
}
assert set(POLICY_COLORS) == set(KNOWN_POLICIES), "every policy needs its colour"
assert len(set(POLICY_COLORS.values())) == len(POLICY_COLORS), "bars tell policies apart by colour alone"
# oracle: the bound, not a policy anyone runs
POLICY_DASH = {"oracle": "dot", "wattwise-reactive": "dash", "carbon-aware-keda": "dashdot"}
POLICY_WIDTH = {"wattwise": 2.6}

# Grid zones and the demand (context, not policies): greys and a slate blue, unlike any policy's colour.
ZONE_COLORS = ("#4D4D4D", "#8C8C8C", "#5B6C8F", "#B3B3B3", "#2F3E5C", "#707070")
ZONE_DASH = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
DEMAND_COLOR = "#333333"

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
HEIGHT_PX = 340


def policy_line(name: str) -> dict:
    return {"color": POLICY_COLORS[name], "dash": POLICY_DASH.get(name, "solid"), "width": POLICY_WIDTH.get(name, 1.6)}


def zone_line(i: int) -> dict:
    return {"color": ZONE_COLORS[i % len(ZONE_COLORS)], "dash": ZONE_DASH[i % len(ZONE_DASH)], "width": 1.6}


def base_layout(y_title: str, *, time_axis: bool, y_format: str | None = None, legend: bool = True) -> dict:
    """Legend in a horizontal band above the plot (plotly widens the top margin to fit it, wrapping
    its rows at narrow widths), so it never covers data or runs off the figure."""
    layout: dict = {
        "template": "plotly_white",
        "height": HEIGHT_PX,
        "autosize": True,
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 64, "r": 16, "t": 16, "b": 48},
        "showlegend": legend,
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02,
                   "yanchor": "bottom", "font": {"size": 11}},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "automargin": True,
                  "hoverformat": y_format or ",.4~g"},
        "xaxis": {"automargin": True},
    }
    if y_format:
        layout["yaxis"]["tickformat"] = y_format
    if time_axis:   # plotly's own date ticks: whole days, 12 or 6 hours, as the width allows
        layout["xaxis"].update({"type": "date", "title": {"text": "date and time of day (UTC)"},
                                "hoverformat": "%b %-d, %H:%M UTC"})
        layout["hovermode"] = "x unified"
    return layout
