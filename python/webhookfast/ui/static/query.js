// The page's query lives in the URL, so a view can be linked from a chat or a post-mortem. This
// module maps between the URL's parameters and the API's.

export const RANGES = ["1h", "6h", "24h", "7d", "30d", "all", "custom"];
export const DEFAULT_RANGE = "24h";

export function readQuery() {
  const p = new URLSearchParams(location.search);
  const get = (k) => p.get(k) || "";
  let range = get("range");
  if (!range) range = get("since") || get("until") ? "custom" : DEFAULT_RANGE;
  if (!RANGES.includes(range)) range = DEFAULT_RANGE;
  return {
    range,
    since: get("since"),
    until: get("until"),
    match: get("match"),
    status: get("status"),
    q: get("q"),
    sort: get("sort"),
    order: get("order"),
    fingerprint: get("fingerprint"),
    cursor: get("cursor"),
  };
}

// The window in the API's terms: presets are durations before now ("24h"), custom is RFC 3339.
export function windowParams(query) {
  if (query.range === "custom") return { since: query.since, until: query.until };
  if (query.range === "all") return {};
  return { since: query.range };
}

export function queryUrl(path, query) {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === "" || v === null || v === undefined) continue;
    if (k === "range" && v === DEFAULT_RANGE) continue;
    if ((k === "since" || k === "until") && query.range !== "custom") continue;
    out.set(k, v);
  }
  const qs = out.toString();
  return qs ? `${path}?${qs}` : path;
}

// datetime-local (the user's local time) ↔ RFC 3339 UTC.
export function toLocalInput(iso) {
  const t = Date.parse(iso);
  if (!isFinite(t)) return "";
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export function fromLocalInput(value) {
  if (!value) return "";
  const t = new Date(value);
  return isFinite(t.getTime()) ? t.toISOString() : "";
}
