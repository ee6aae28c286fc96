// A metric over time, one line per version, drawn as SVG. The Airflow UI shares React and
// Chakra with plugins but not its chart library, and a plugin has no build step to bundle
// one, so this draws the few things a trend needs: lines, points, two axes and a legend.

import { C, fmt, h } from "./ui.js";

const PALETTE = ["blue", "orange", "green", "purple", "red", "teal", "pink", "yellow"];
const color = (index) => `var(--chakra-colors-${PALETTE[index % PALETTE.length]}-500)`;
const SIZE = { width: 760, height: 240, left: 64, right: 16, top: 12, bottom: 28 };

function extent(values) {
  const low = Math.min(...values);
  const high = Math.max(...values);
  return low === high ? [low - 1, high + 1] : [low, high];
}

/** ``lines``: [{label, points: [[ISO time, value], ...]}]. */
export function TrendChart({ lines, title }) {
  const points = lines.flatMap((line) => line.points.map(([at, value]) => [Date.parse(at), value]));
  if (!points.length) {
    return h(C.Text, { color: "fg.muted" }, "No values in this window.");
  }
  const [t0, t1] = extent(points.map(([t]) => t));
  const single = points.every(([t]) => t === points[0][0]);
  const [v0, v1] = extent(points.map(([, v]) => v));
  const x = (t) => SIZE.left + ((t - t0) / (t1 - t0)) * (SIZE.width - SIZE.left - SIZE.right);
  const y = (v) => SIZE.top + (1 - (v - v0) / (v1 - v0)) * (SIZE.height - SIZE.top - SIZE.bottom);
  const axis = { stroke: "currentColor", strokeOpacity: 0.3 };
  const label = { fill: "currentColor", fontSize: 11 };
  return h(
    C.Box, { "data-testid": "trend-chart" },
    h("svg", { viewBox: `0 0 ${SIZE.width} ${SIZE.height}`, width: "100%", role: "img", "aria-label": title,
      style: { maxWidth: `${SIZE.width}px` } },
    h("line", { x1: SIZE.left, y1: y(v0), x2: SIZE.width - SIZE.right, y2: y(v0), ...axis }),
    h("line", { x1: SIZE.left, y1: SIZE.top, x2: SIZE.left, y2: y(v0), ...axis }),
    h("text", { x: SIZE.left - 6, y: y(v1) + 4, textAnchor: "end", ...label }, fmt(v1)),
    h("text", { x: SIZE.left - 6, y: y(v0), textAnchor: "end", ...label }, fmt(v0)),
    h("text", { x: SIZE.left, y: SIZE.height - 8, ...label }, new Date(t0).toLocaleString()),
    single ? null : h("text", { x: SIZE.width - SIZE.right, y: SIZE.height - 8, textAnchor: "end", ...label },
      new Date(t1).toLocaleString()),
    lines.map((line, index) => h(
      "g", { key: line.label, stroke: color(index), fill: color(index) },
      h("polyline", { fill: "none", strokeWidth: 2,
        points: line.points.map(([at, value]) => `${x(Date.parse(at))},${y(value)}`).join(" ") }),
      line.points.map(([at, value]) => h(
        "circle", { key: at, cx: x(Date.parse(at)), cy: y(value), r: 3 },
        h("title", null, `${line.label}: ${fmt(value)} at ${new Date(at).toLocaleString()}`),
      )),
    ))),
    h(C.HStack, { gap: 4, fontSize: "sm", mt: 1 }, lines.map((line, index) => h(
      C.HStack, { key: line.label, gap: 1 },
      h(C.Box, { width: 3, height: 3, borderRadius: "sm", style: { background: color(index) } }),
      h(C.Text, null, line.label),
    ))),
  );
}
