// DOM helpers. Every string that comes from an alert goes in through textContent or an attribute
// set with setAttribute (never innerHTML), so a label value can never become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of [].concat(children || [])) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

export function h(tag, attrs, children) {
  return fill(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

// Links only for http(s) URLs; anything else (javascript:, data:, relative text) stays text.
export function safeHref(value) {
  if (typeof value !== "string" || !/^https?:\/\//i.test(value.trim())) return null;
  try {
    const url = new URL(value.trim());
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

export function textOrLink(value) {
  const href = safeHref(value);
  if (!href) return h("span", { class: "text", text: value });
  return h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", class: "ext", text: value });
}

const MS = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 };

export function parseTime(iso) {
  return iso ? Date.parse(iso) : null;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "";
  if (ms < 0) ms = 0;
  if (ms < MS.m) return `${Math.round(ms / MS.s)}s`;
  if (ms < MS.h) return `${Math.floor(ms / MS.m)}m ${Math.round((ms % MS.m) / MS.s)}s`;
  if (ms < MS.d) return `${Math.floor(ms / MS.h)}h ${Math.round((ms % MS.h) / MS.m)}m`;
  return `${Math.floor(ms / MS.d)}d ${Math.round((ms % MS.d) / MS.h)}h`;
}

// A Prometheus matcher for one label: the value quoted with Go escapes (JSON's are a subset).
export function matcherFor(name, value) {
  const safeName = /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) ? name : JSON.stringify(name);
  return `${safeName}=${JSON.stringify(value)}`;
}

// Adds a matcher to a selector such as {a="b"} or HighCPU{a="b"} (or an empty one).
export function addMatcher(selector, matcher) {
  const sel = (selector || "").trim();
  if (!sel) return `{${matcher}}`;
  const close = sel.lastIndexOf("}");
  if (close < 0) return `${sel}{${matcher}}`;
  const inner = sel.slice(sel.indexOf("{") + 1, close).trim();
  return `${sel.slice(0, close).trimEnd()}${inner ? "," : ""}${matcher}}`;
}

export function statusBadge(status) {
  return h("span", { class: `badge ${status === "firing" ? "firing" : "resolved"}`, text: status });
}

export function severityBadge(sev) {
  return sev ? h("span", { class: "sev", "data-severity": sev, text: sev }) : h("span", { class: "muted", text: "—" });
}

export function clear(node) {
  node.replaceChildren();
  return node;
}
