#!/usr/bin/env python3
"""The failover timeline of `make demo`: as a table, and as a small SVG. Standard library only.

    timeline_svg.py table RECORD.json CHANGE_EPOCH SEEN_EPOCH
    timeline_svg.py svg OUT.svg FAILOVER.json DOWN_EPOCH SEEN_EPOCH FAILBACK.json UP_EPOCH SEEN_EPOCH

RECORD.json is a GlobalIngress's `status.lastFailover` (kind, from, to, detectedAt, submittedAt,
inSyncAt, answerSeenAt; RFC 3339). CHANGE_EPOCH is when the demo stopped (Failover) or restarted
(Failback) the region's data plane, SEEN_EPOCH when the demo's own kdig first saw the new answer,
both in Unix seconds from the same clock as the operator's.
"""

import datetime
import html
import json
import sys

# (label, record field) in the order they happen.
STEPS = [
    ("detected", "detectedAt"),
    ("submitted", "submittedAt"),
    ("in sync", "inSyncAt"),
    ("answer seen (operator)", "answerSeenAt"),
]
COLOURS = {
    "region down": "#c0392b",
    "region up": "#27ae60",
    "detected": "#e67e22",
    "submitted": "#2980b9",
    "in sync": "#8e44ad",
    "answer seen (operator)": "#16a085",
    "answer changed (kdig)": "#2c3e50",
}


def epoch(rfc3339: str) -> float:
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def marks(record: dict, change: float, seen: float) -> list:
    """[(label, unix seconds)] in the order the steps are meant to happen."""
    first = "region down" if record.get("kind") == "Failover" else "region up"
    out = [(first, change)]
    out += [(label, epoch(record[key])) for label, key in STEPS if record.get(key)]
    out.append(("answer changed (kdig)", seen))
    return out


def clock(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def table(record: dict, change: float, seen: float) -> None:
    detected = epoch(record["detectedAt"])
    print(f"  {record['kind']}: traffic moved from {record['from'] or '-'} to {record['to'] or '-'}")
    first = "region down" if record["kind"] == "Failover" else "region up"
    print(f"  {'step':<24} {'time (UTC)':<13} {'from ' + first:>17} {'from detected':>14}")
    for label, t in marks(record, change, seen):
        print(f"  {label:<24} {clock(t):<13} {t - change:>+15.3f} s {t - detected:>+12.3f} s")


def svg(out: str, events: list) -> None:
    """One horizontal timeline per event; seconds since the region's change on the axis."""
    width, left, right, row = 760, 30, 30, 150
    span = max(t - change for _, ms, change in events for _, t in ms)
    span = max(1.0, float(int(span) + 1))
    scale = (width - left - right) / span
    parts, labels = [], []  # labels last, over every line
    for i, (kind, ms, change) in enumerate(events):
        top = 20 + i * row
        axis = top + row - 45
        since = "went down" if kind == "Failover" else "came back"
        parts.append(
            f'<text x="{left}" y="{top + 4}"><tspan font-weight="bold">{kind}</tspan> '
            f"(seconds since the region {since})</text>"
        )
        parts.append(f'<line x1="{left}" y1="{axis}" x2="{width - right}" y2="{axis}" stroke="#555"/>')
        step = 0.5 if span <= 4 else 1.0 if span <= 12 else 2.0
        tick = 0.0
        while tick <= span + 1e-9:
            x = left + tick * scale
            parts.append(f'<line x1="{x:.1f}" y1="{axis}" x2="{x:.1f}" y2="{axis + 5}" stroke="#555"/>')
            parts.append(f'<text x="{x:.1f}" y="{axis + 18}" text-anchor="middle" font-size="10">{tick:g}s</text>')
            tick += step
        # A label that would overlap the one before it on a line goes one line higher.
        levels: list = []  # where the last label on each line ends
        for label, t in sorted(ms, key=lambda m: m[1]):
            x = left + (t - change) * scale
            text = f"{label} +{t - change:.2f}s"
            wide = 6.5 * len(text)
            level = next((n for n, end in enumerate(levels) if x > end + 4), len(levels))
            if level == len(levels):
                levels.append(0.0)
            levels[level] = x + wide
            y = axis - 14 - 14 * level
            colour = COLOURS.get(label, "#333")
            parts.append(f'<line x1="{x:.1f}" y1="{y + 3}" x2="{x:.1f}" y2="{axis}" stroke="{colour}" stroke-dasharray="2,2"/>')
            parts.append(f'<circle cx="{x:.1f}" cy="{axis}" r="4" fill="{colour}"/>')
            # Near the right edge the label goes to the left of its mark.
            anchor, tx = ("end", x - 3) if x + wide > width else ("start", x + 3)
            labels.append(
                f'<text x="{tx:.1f}" y="{y}" font-size="11" fill="{colour}" text-anchor="{anchor}" '
                f'stroke="white" stroke-width="3" paint-order="stroke">{html.escape(text)}</text>'
            )
    height = 20 + row * len(events)
    body = "\n  ".join(parts + labels)
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="12">\n'
            f'  <rect width="100%" height="100%" fill="white"/>\n  {body}\n</svg>\n'
        )


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv: list) -> None:
    if len(argv) == 5 and argv[1] == "table":
        table(load(argv[2]), float(argv[3]), float(argv[4]))
    elif len(argv) == 9 and argv[1] == "svg":
        events = []
        for path, change, seen in (argv[3:6], argv[6:9]):
            record = load(path)
            events.append((record["kind"], marks(record, float(change), float(seen)), float(change)))
        svg(argv[2], events)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
