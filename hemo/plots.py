"""Plotly figures for the app and reports: training curves, evaluation, attention, series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hemo.history import sides, smooth

TRAIN, VALIDATION = "#1f77b4", "#ff7f0e"
COLOUR = {"train": TRAIN, "validation": VALIDATION}


#: Fixed scales for the training curves: accuracy on 0..1, a loss from 0, so that a run's curve is not magnified into
#: a cliff by an axis fitted to it, and two runs' charts read alike.
ACCURACY_AXIS = {"range": [0, 1.02], "title": "accuracy"}
LOSS_AXIS = {"rangemode": "tozero"}


def curves(history: pd.DataFrame) -> go.Figure:
    """Accuracy and loss per epoch, train and validation (the paper's Figs. 5 and 6), on fixed scales."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Accuracy", "Loss"))
    for column, metric in enumerate(("accuracy", "loss"), start=1):
        for prefix, name in sides(history):
            figure.add_scatter(x=history["epoch"], y=history[prefix + metric], name=f"{name} {metric}",
                               line={"color": COLOUR[name], "dash": "solid" if metric == "accuracy" else "dot"},
                               row=1, col=column)
    figure.update_yaxes(ACCURACY_AXIS, row=1, col=1).update_yaxes({**LOSS_AXIS, "title": "loss (cross-entropy)"},
                                                                  row=1, col=2)
    return figure.update_xaxes(title="epoch").update_layout(height=360, margin={"t": 40})


def bleed_loss(history: pd.DataFrame) -> go.Figure:
    """The bleed decoder's loss on the masks per epoch (a model trained with ``--mask-weight``): a decoder that
    stops learning shows here as a flat line from the first epochs."""
    figure = go.Figure()
    for prefix, name in [("", "train"), ("val_", "validation")]:
        if prefix + "bleed_loss" in history:
            figure.add_scatter(x=history["epoch"], y=history[prefix + "bleed_loss"], name=name, mode="lines+markers",
                               line={"color": COLOUR[name]})
    return figure.update_layout(title="Bleed decoder loss (the masks)", xaxis_title="epoch",
                                yaxis={**LOSS_AXIS, "title": "cross-entropy + Dice"}, height=320)


def gap(history: pd.DataFrame) -> go.Figure:
    """Train minus validation accuracy per epoch: a growing bar is overfitting."""
    colours = np.where(history["gap"] > 0, TRAIN, VALIDATION)
    figure = go.Figure(go.Bar(x=history["epoch"], y=history["gap"], marker_color=colours))
    return figure.update_layout(title="Train - validation accuracy", xaxis_title="epoch", yaxis_title="gap", height=320)


def loss_vs_accuracy(history: pd.DataFrame) -> go.Figure:
    """Each epoch as a point of (loss, accuracy), train and validation."""
    figure = go.Figure()
    for prefix, name in sides(history):
        figure.add_scatter(x=history[prefix + "loss"], y=history[prefix + "accuracy"], mode="markers+lines", name=name,
                           text=[f"epoch {e}" for e in history["epoch"]], marker={"color": COLOUR[name]})
    return figure.update_layout(title="Loss vs accuracy", xaxis={**LOSS_AXIS, "title": "loss"}, yaxis=ACCURACY_AXIS,
                                height=320)


def smoothed_accuracy(history: pd.DataFrame, weight: float = 0.6) -> go.Figure:
    """Accuracy with an exponential moving average over epochs."""
    figure = go.Figure()
    for prefix, name in sides(history):
        figure.add_scatter(x=history["epoch"], y=history[prefix + "accuracy"], name=f"{name} (raw)",
                           line={"color": COLOUR[name], "width": 1}, opacity=0.35)
        figure.add_scatter(x=history["epoch"], y=smooth(history[prefix + "accuracy"], weight),
                           name=f"{name} (smoothed)", line={"color": COLOUR[name], "width": 3})
    return figure.update_layout(title="Smoothed accuracy", xaxis_title="epoch", yaxis=ACCURACY_AXIS, height=320)


def learning_rate(history: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Scatter(x=history["epoch"], y=history["learning_rate"], mode="lines+markers"))
    return figure.update_layout(title="Learning rate", xaxis_title="epoch", yaxis={"type": "log", "title": "rate"},
                                height=300)


def confusion(metrics: dict) -> go.Figure:
    matrix = np.array(metrics["confusion_matrix"])
    classes = list(metrics["per_class"])  # the evaluation names its classes, in the matrix's order
    figure = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, text=matrix, texttemplate="%{text}",
                                  colorscale="Blues", showscale=False))
    return figure.update_layout(title=f"Confusion matrix at threshold {metrics['threshold']:.3f}",
                                xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed", height=340)


def roc(metrics: dict) -> go.Figure:
    figure = go.Figure(go.Scatter(x=metrics["roc"]["fpr"], y=metrics["roc"]["tpr"], mode="lines",
                                  name=f"AUC {metrics['auc']:.3f}"))
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "gray"}, name="chance")
    if metrics.get("sensitivity") is not None and metrics.get("specificity") is not None:
        figure.add_scatter(x=[1 - metrics["specificity"]], y=[metrics["sensitivity"]], mode="markers",
                           marker={"size": 12, "color": "red"}, name="operating threshold")
    return figure.update_layout(title="ROC curve", xaxis_title="1 - specificity", yaxis_title="sensitivity", height=360)


#: Attention is drawn as the deviation from uniform (1/10 per key step) on this fixed, symmetric scale,
#: the same for every slice: the paper's attention is nearly uniform (0.092-0.111 over 384 validation
#: slices), and a per-figure colour range would make that noise look like structure.
ATTENTION_RANGE = 0.1


def attention_summary(weights: np.ndarray) -> dict:
    """Distance from uniform (mean |w - 1/10|) and normalised entropy (1 = perfectly uniform) of the rows."""
    weights = np.asarray(weights, dtype=float)
    entropy = -(weights * np.log(np.clip(weights, 1e-12, 1))).sum(-1) / np.log(weights.shape[-1])
    return {"distance_from_uniform": float(np.abs(weights - 1.0 / weights.shape[-1]).mean()),
            "entropy": float(entropy.mean())}


def attention(weights: np.ndarray) -> go.Figure:
    """The 2 heads' attention over the 10 pseudo-time steps and their mean, as deviation from uniform."""
    panels = [*weights, weights.mean(axis=0)]
    titles = [f"head {i + 1}" for i in range(len(weights))] + ["mean"]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.06)
    count = weights.shape[-1]  # pseudo-time steps, read from the weights: no Keras import for a constant
    steps = list(range(1, count + 1))
    for column, panel in enumerate(panels, start=1):
        figure.add_heatmap(z=np.asarray(panel) - 1.0 / count, x=steps, y=steps, coloraxis="coloraxis", row=1,
                           col=column, customdata=panel,
                           hovertemplate="query step %{y} -> key step %{x}: %{customdata:.3f}<extra></extra>")
    figure.update_yaxes(autorange="reversed")  # every panel the same way up: step 1 at the top
    figure.update_yaxes(title_text="query step", col=1)
    figure.update_xaxes(title_text="key step")
    summary = attention_summary(weights)
    return figure.update_layout(
        coloraxis={"colorscale": "RdBu_r", "cmin": -ATTENTION_RANGE, "cmax": ATTENTION_RANGE,
                   "colorbar": {"title": {"text": "weight − 1/10"}}},
        title={"text": f"Attention, deviation from uniform (fixed scale ±{ATTENTION_RANGE}): mean distance "
                       f"{summary['distance_from_uniform']:.4f}, entropy {summary['entropy']:.3f} of 1",
               "font": {"size": 13}},
        height=320, margin={"t": 70, "b": 10})


def series(positions: list[float], probabilities: list[float], threshold: float, labels: list[str],
           with_positions: bool = True, current: int | None = None, refined: list[float] | None = None,
           refined_threshold: float | None = None) -> go.Figure:
    """Probability per slice along the scan axis (mm, or scan order without geometry), with the threshold.

    ``current`` (an index) marks the slice shown in the viewer; ``refined`` (with its own threshold)
    is each slice read with its neighbours (``hemo.context``), drawn beside the slice alone. The
    thresholds are named in the legend with their values, not written on the plot: the two lie a
    hundredth apart, and labels on the lines would sit on each other and on the curves.
    """
    numbers = list(range(1, len(positions) + 1))  # what a click on a curve hands back (``clicked_slice``)
    figure = go.Figure(go.Scatter(x=positions, y=probabilities, mode="lines+markers", text=labels,
                                  customdata=numbers, name="each slice alone",
                                  hovertemplate="%{text}<br>%{x:.1f}<br>p=%{y:.3f}<extra></extra>"))
    _threshold_line(figure, positions, threshold, f"slice threshold {threshold:.3f}", "dash", "red")
    if refined is not None:
        figure.add_trace(go.Scatter(x=positions, y=refined, mode="lines", text=labels, line_color="purple",
                                    customdata=numbers, name="with its neighbours",
                                    hovertemplate="%{text}<br>%{x:.1f}<br>with neighbours p=%{y:.3f}<extra></extra>"))
        if refined_threshold is not None:
            _threshold_line(figure, positions, refined_threshold,
                            f"threshold with neighbours {refined_threshold:.3f}", "dot", "purple")
    if current is not None:
        figure.add_vline(x=positions[current], line_color="orange")
    figure.update_layout(clickmode="event+select",
                         legend={"orientation": "h", "yanchor": "top", "y": -0.28, "font": {"size": 11}})
    return figure.update_layout(title="Probability of haemorrhage per slice",
                                xaxis_title="slice position (mm)" if with_positions else "slice (scan order)",
                                yaxis_title="probability", yaxis_range=[0, 1], height=400,
                                margin={"t": 50, "b": 10, "l": 50, "r": 10})


def clicked_slice(points: list[dict]) -> int | None:
    """The slice number (from 1) of the first clicked point on a curve of ``series``; None for a threshold."""
    numbers = [point["customdata"] for point in points if point.get("customdata") is not None]
    return int(numbers[0]) if numbers else None


def _threshold_line(figure: go.Figure, positions: list[float], threshold: float, name: str, dash: str,
                    colour: str) -> None:
    """A horizontal threshold across the series, as a legend entry (not a hoverable point)."""
    ends = [min(positions), max(positions)] if len(positions) > 1 else [positions[0] - 0.5, positions[0] + 0.5]
    figure.add_trace(go.Scatter(x=ends, y=[threshold, threshold], mode="lines", name=name, hoverinfo="skip",
                                line={"dash": dash, "color": colour, "width": 1.5}))
