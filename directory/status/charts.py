"""Small server-rendered SVG charts: stacked bars and lines, for the status pages.

Inline in the page, no script, no external asset, no ``style`` attribute (the site's CSP has
no ``unsafe-inline``): shapes carry classes (``chart__mark--<key>``) that ``site.css``
colours. Every mark says its numbers twice: ``data-label``/``data-series``/``data-value`` for
tests and scrapers, and a ``<title>`` a pointer or screen reader can show. Every text and
attribute is escaped. Pages put the same numbers in a table beside each chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 32, 16, 64  # room for the value axis, the legend, the labels
MAX_LABELS = 8  # at most this many category labels under the axis (every n-th otherwise)


@dataclass(frozen=True)
class Series:
    name: str  # shown in the legend and each mark's title
    key: str  # the class modifier: chart__mark--<key>
    values: Sequence[float | None]  # one per label; None: no value (a gap in a line)


def number(value: float | None) -> str:
    """A value as the chart writes it: whole numbers without a point, others to 3 places."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def axis_number(value: float) -> str:
    """A value on the axis, short: 15000 is "15k"."""
    return f"{number(value / 1000)}k" if value >= 10_000 else number(value)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at least ``value`` (1 for nothing)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def _attrs(**values) -> str:
    return "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(str(value))}"'
        for name, value in values.items()
    )


class _Frame:
    """The plot area, the value axis with its grid, the labels and the legend."""

    def __init__(self, title: str, labels: Sequence[str], series: Sequence[Series], top: float):
        self.title, self.labels, self.series = title, list(labels), list(series)
        self.top = nice_ceiling(top)
        self.plot_w = WIDTH - LEFT - RIGHT
        self.plot_h = HEIGHT - TOP - BOTTOM
        self.slot = self.plot_w / max(1, len(self.labels))

    def y(self, value: float) -> float:
        return TOP + self.plot_h * (1 - value / self.top)

    def x(self, index: int) -> float:  # the middle of a label's slot
        return LEFT + self.slot * (index + 0.5)

    def open(self, unit: str) -> list[str]:
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg"{_attrs(viewBox=f"0 0 {WIDTH} {HEIGHT}")}'
            f"{_attrs(class_='chart', role='img', aria_label=self.title)}>",
            f"<title>{escape(self.title)}</title>",
        ]
        for fraction in (0, 0.5, 1):
            value, y = self.top * fraction, self.y(self.top * fraction)
            grid = _attrs(x1=LEFT, x2=WIDTH - RIGHT, y1=_r(y), y2=_r(y))
            parts.append(f'<line class="chart__grid"{grid}/>')
            parts.append(
                f'<text class="chart__axis"{_attrs(x=LEFT - 6, y=_r(y + 4), text_anchor="end")}>'
                f"{escape(axis_number(value) + unit)}</text>"
            )
        every = max(1, math.ceil(len(self.labels) / MAX_LABELS))
        last = len(self.labels) - 1
        for index, label in enumerate(self.labels):
            if (last - index) % every:  # counted from the newest, which is always labelled
                continue
            parts.append(
                f'<text class="chart__label"'
                f"{_attrs(x=_r(self.x(index)), y=TOP + self.plot_h + 16, text_anchor='middle')}>"
                f"{escape(label)}</text>"
            )
        x = LEFT
        for s in self.series:
            y = HEIGHT - 16
            parts.append(
                f'<rect class="chart__mark chart__mark--{escape(s.key)}"'
                f"{_attrs(x=x, y=y - 10, width=10, height=10)}/>"
            )
            parts.append(
                f'<text class="chart__legend"{_attrs(x=x + 14, y=y)}>{escape(s.name)}</text>'
            )
            x += 24 + 8 * len(s.name)
        return parts


def _r(value: float) -> str:
    return f"{value:.1f}"


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> Markup:
    """Bars, one per label, the series stacked in order (one series: plain bars)."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    frame = _Frame(title, labels, series, max(2, *totals))  # counts: an axis of 0, 1, 2 at least
    parts = frame.open(unit)
    width = frame.slot * 0.7
    for index, label in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[index] or 0
            y_top, y_base = frame.y(base + value), frame.y(base)
            parts.append(
                f'<rect class="chart__mark chart__mark--{escape(s.key)}"'
                f"{_attrs(x=_r(frame.x(index) - width / 2), y=_r(y_top), width=_r(width))}"
                f"{_attrs(height=_r(y_base - y_top))}"
                f"{_attrs(data_label=label, data_series=s.key, data_value=number(value))}>"
                f"<title>{escape(f'{label}: {s.name} {number(value)}{unit}')}</title></rect>"
            )
            base += value
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    top: float | None = None,
) -> Markup:
    """A line per series over the labels; a None value breaks the line. ``top``: the value
    axis's end (e.g. 100 for percentages); the largest value, rounded up, otherwise."""
    largest = max((v for s in series for v in s.values if v is not None), default=0)
    frame = _Frame(title, labels, series, top if top is not None else largest)
    parts = frame.open(unit)
    for s in series:
        segment: list[str] = []
        segments = [segment]
        for index, value in enumerate(s.values):
            if value is None:
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{_r(frame.x(index))},{_r(frame.y(value))}")
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline class="chart__line chart__line--{escape(s.key)}"'
                    f"{_attrs(points=' '.join(points), fill='none')}/>"
                )
        for index, value in enumerate(s.values):
            if value is None:
                continue
            label = labels[index]
            parts.append(
                f'<circle class="chart__mark chart__mark--{escape(s.key)}"'
                f"{_attrs(cx=_r(frame.x(index)), cy=_r(frame.y(value)), r=3)}"
                f"{_attrs(data_label=label, data_series=s.key, data_value=number(value))}>"
                f"<title>{escape(f'{label}: {s.name} {number(value)}{unit}')}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
