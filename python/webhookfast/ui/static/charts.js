// Charts drawn as SVG from DOM nodes (no library, no inline style: CSS classes give the colours).
// Labels are SVG <text> nodes filled with textContent, like everything else that comes from alerts.

import { fmtDuration, fmtTime, h, parseTime, s } from "./dom.js";

const W = 640;

function short(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function link(href, label, children) {
  return s("a", { href, "aria-label": label }, [s("title", { text: label }), ...children]);
}

// Horizontal bars, one row per item: [{label, values: [n, ...], href, title}], one class per series.
export function hbars(items, { series, format = String, id, empty = "Nothing in this range." }) {
  if (!items.length) return h("p", { class: "muted", text: empty });
  const row = 26, labelW = 220, valueW = 90, barW = W - labelW - valueW;
  const max = Math.max(1, ...items.flatMap((it) => it.values));
  const per = (row - 8) / items[0].values.length;
  const svg = s("svg", { class: "chart hbars", id, viewBox: `0 0 ${W} ${items.length * row}`, role: "group", "aria-label": series.join(", ") });
  items.forEach((it, i) => {
    const y = i * row;
    const bars = it.values.map((v, j) => s("rect", {
      class: `bar s${j}`, x: labelW, y: y + 4 + j * per, height: Math.max(1, per - 1), width: Math.max(1, (v / max) * barW),
    }));
    svg.append(link(it.href, it.title, [
      s("rect", { class: "hit", x: 0, y, width: W, height: row }),
      s("text", { class: "label", x: labelW - 8, y: y + row / 2 + 4, "text-anchor": "end", text: short(it.label, 28) }),
      ...bars,
      s("text", { class: "value", x: W - 4, y: y + row / 2 + 4, "text-anchor": "end", text: it.values.map(format).join(" / ") }),
    ]));
  });
  return svg;
}

// Vertical bars over time: started instances per bucket, the still-firing part darker.
export function histogram(data, hrefFor) {
  const buckets = data.buckets;
  const H = 180, top = 10, bottom = 22, left = 36;
  const max = Math.max(1, ...buckets.map((b) => b.started));
  const bw = (W - left) / Math.max(1, buckets.length);
  const scale = (v) => (v / max) * (H - top - bottom);
  const svg = s("svg", { class: "chart histogram", id: "histogram", viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": "Alerts started over time" });
  svg.append(
    s("line", { class: "axis", x1: left, x2: W, y1: H - bottom, y2: H - bottom }),
    s("text", { class: "tick", x: left - 4, y: top + 8, "text-anchor": "end", text: String(max) }),
    s("text", { class: "tick", x: left - 4, y: H - bottom, "text-anchor": "end", text: "0" }),
  );
  const ms = data.bucket_seconds * 1000;
  buckets.forEach((b, i) => {
    if (!b.started) return;
    const x = left + i * bw;
    const start = parseTime(b.start);
    const label = `${fmtTime(b.start)} – ${fmtTime(new Date(start + ms).toISOString())}: ${b.started} started, ${b.firing} still firing`;
    svg.append(link(hrefFor(b.start, new Date(start + ms).toISOString()), label, [
      s("rect", { class: "bar s0", x: x + 0.5, width: Math.max(1, bw - 1), y: H - bottom - scale(b.started), height: scale(b.started) }),
      b.firing ? s("rect", { class: "bar firing", x: x + 0.5, width: Math.max(1, bw - 1), y: H - bottom - scale(b.firing), height: scale(b.firing) }) : null,
    ]));
  });
  const first = buckets[0], last = buckets[buckets.length - 1];
  if (first) {
    svg.append(
      s("text", { class: "tick", x: left, y: H - 6, text: fmtTime(first.start) }),
      s("text", { class: "tick", x: W, y: H - 6, "text-anchor": "end", text: fmtTime(new Date(parseTime(last.start) + ms).toISOString()) }),
    );
  }
  return svg;
}

// An alert's episodes on one time axis: bars from start to end; firing ones run to now, open.
export function timeline(episodes, now) {
  if (!episodes.length) return h("p", { class: "muted", text: "No episodes." });
  const W = 1000, H = 64, pad = 8; // wider than the other charts: it spans the page
  const spans = episodes.map((ep) => {
    const a = parseTime(ep.starts_at);
    const firing = ep.status !== "resolved";
    return { ep, a, b: firing ? now : parseTime(ep.ends_at), firing };
  });
  const t0 = Math.min(...spans.map((x) => x.a));
  const t1 = Math.max(now, ...spans.map((x) => x.b));
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * pad);
  const svg = s("svg", { class: "chart timeline", id: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Episodes on a time axis" });
  svg.append(s("line", { class: "axis", x1: pad, x2: W - pad, y1: 40, y2: 40 }));
  for (const sp of spans) {
    const label = `${fmtTime(sp.ep.starts_at)} → ${sp.firing ? "firing" : fmtTime(sp.ep.ends_at)} (${fmtDuration(sp.b - sp.a)})`;
    svg.append(s("g", { class: sp.firing ? "episode open" : "episode" }, [
      s("title", { text: label }),
      s("rect", { class: sp.firing ? "bar firing" : "bar s0", x: x(sp.a), y: 14, height: 20, width: Math.max(2, x(sp.b) - x(sp.a)) }),
      sp.firing ? s("path", { class: "open-end", d: `M${x(sp.b)} 10 l6 14 l-6 14` }) : null,
    ]));
  }
  svg.append(
    s("text", { class: "tick", x: pad, y: H - 6, text: fmtTime(new Date(t0).toISOString()) }),
    s("text", { class: "tick", x: W - pad, y: H - 6, "text-anchor": "end", text: "now" }),
  );
  return svg;
}
