// The Alerts page: alert instances of a time range, newest first, filtered by label matchers,
// status and text, paged with the API's cursors (no counts: a million rows would need a scan).

import { ApiError, getJSON } from "./api.js";
import { addMatcher, fmtDuration, fmtTime, h, matcherFor, parseTime, severityBadge, statusBadge } from "./dom.js";
import { RANGES, fromLocalInput, queryUrl, readQuery, toLocalInput, windowParams } from "./query.js";

const SORTS = [
  ["starts_at:desc", "Started, newest first"],
  ["starts_at:asc", "Started, oldest first"],
  ["last_seen:desc", "Last seen, newest first"],
  ["last_seen:asc", "Last seen, oldest first"],
];
const RANGE_LABELS = { "1h": "Last hour", "6h": "Last 6 hours", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", all: "All time", custom: "Custom…" };
// The API takes matcher values up to 4 KB (history/params.py MAX_VALUE_LEN); a longer label value
// cannot be a filter, and would not fit in a URL either.
const MAX_MATCHER_VALUE = 4096;
const FIELD_OF_PARAM = { match: "match", q: "q", since: "range", until: "range", status: "status", fingerprint: "match" };

let marked = false;

function field(id, label, control, extraClass) {
  return h("div", { class: `field ${extraClass || ""}` }, [
    h("label", { for: id, text: label }),
    control,
    h("p", { id: `${id}-error`, class: "field-error", hidden: true }),
  ]);
}

function options(values, selected) {
  return values.map(([v, label]) => h("option", { value: v, selected: v === selected, text: label }));
}

function filterForm(query, ctx) {
  const sortValue = `${query.sort || "starts_at"}:${query.order || "desc"}`;
  const match = h("input", {
    id: "f-match", name: "match", value: query.match, spellcheck: "false", autocomplete: "off",
    placeholder: '{severity="critical",job=~"api.*"}', "aria-describedby": "f-match-error",
  });
  const q = h("input", { id: "f-q", name: "q", type: "search", value: query.q, placeholder: "in annotations", "aria-describedby": "f-q-error" });
  const status = h("select", { id: "f-status", name: "status" }, options([["", "Any"], ["firing", "Firing"], ["resolved", "Resolved"]], query.status));
  const range = h("select", { id: "f-range", name: "range", "aria-describedby": "f-range-error" }, options(RANGES.map((r) => [r, RANGE_LABELS[r]]), query.range));
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", value: toLocalInput(query.since) });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", value: toLocalInput(query.until) });
  const custom = h("div", { class: "custom-range", hidden: query.range !== "custom" }, [
    h("label", { for: "f-since", text: "From" }), since, h("label", { for: "f-until", text: "to" }), until,
  ]);
  range.addEventListener("change", () => { custom.hidden = range.value !== "custom"; });
  const sort = h("select", { id: "f-sort", name: "sort" }, options(SORTS, sortValue));
  const form = h("form", { class: "filters", id: "filters", role: "search" }, [
    field("f-match", "Label matchers", match, "grow"),
    field("f-q", "Text", q),
    field("f-status", "Status", status),
    field("f-range", "Range", h("div", { class: "range" }, [range, custom])),
    field("f-sort", "Sort", sort),
    h("div", { class: "field actions" }, [h("button", { type: "submit", text: "Search" })]),
  ]);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const [s, o] = sort.value.split(":");
    ctx.navigate(queryUrl("/", {
      range: range.value,
      since: range.value === "custom" ? fromLocalInput(since.value) : "",
      until: range.value === "custom" ? fromLocalInput(until.value) : "",
      match: match.value.trim(), q: q.value.trim(), status: status.value,
      sort: s === "starts_at" ? "" : s, order: o === "desc" ? "" : o,
      fingerprint: query.fingerprint,
    }));
  });
  return form;
}

function chip(name, value, onAdd) {
  return h("button", {
    type: "button", class: "chip", title: `${name}=${value.length > 512 ? value.slice(0, 512) + "…" : value}`,
    "aria-label": `Filter by ${name}`, on: { click: () => onAdd(name, value) },
  }, [h("span", { class: "k", text: name }), h("span", { class: "eq", text: "=" }), h("span", { class: "v", text: value })]);
}

function row(a, now, onAdd) {
  const labels = a.labels || {};
  const starts = parseTime(a.starts_at);
  const ends = a.status === "resolved" ? parseTime(a.ends_at) : null;
  const others = Object.keys(labels).filter((k) => k !== "alertname" && k !== "severity").sort();
  const name = labels.alertname || "(no alertname)";
  return h("tr", { "data-fingerprint": a.fingerprint }, [
    h("td", {}, statusBadge(a.status)),
    h("td", { class: "name" }, h("a", { href: `/alerts/${a.fingerprint}`, text: name })),
    h("td", { class: "sev-cell" }, labels.severity ? chip("severity", labels.severity, onAdd) : severityBadge("")),
    h("td", { class: "labels" }, others.map((k) => chip(k, labels[k], onAdd))),
    h("td", { class: "time" }, h("time", { datetime: a.starts_at, text: fmtTime(a.starts_at) })),
    h("td", { class: "time" }, ends ? h("time", { datetime: a.ends_at, text: fmtTime(a.ends_at) }) : h("span", { class: "muted", text: "firing" })),
    h("td", { class: "num" }, fmtDuration((ends || now) - starts)),
    h("td", { class: "num", text: String(a.notifications) }),
  ]);
}

function showFieldError(form, err) {
  const fieldName = FIELD_OF_PARAM[err.path];
  if (!fieldName) return false;
  const id = fieldName === "range" ? "f-range" : `f-${fieldName}`;
  const p = form.querySelector(`#${id}-error`);
  const input = form.querySelector(`#${id}`);
  if (!p || !input) return false;
  p.textContent = err.message;
  p.hidden = false;
  input.setAttribute("aria-invalid", "true");
  return true;
}

export async function render(main, ctx) {
  const query = readQuery();
  const form = filterForm(query, ctx);
  const onAdd = (name, value) => {
    if (value.length > MAX_MATCHER_VALUE) {
      showFieldError(form, { path: "match", message: `The value of ${name.slice(0, 64)} is too long to filter by (${value.length} characters; at most ${MAX_MATCHER_VALUE}).` });
      return;
    }
    ctx.navigate(queryUrl("/", { ...readQuery(), match: addMatcher(query.match, matcherFor(name, value)), cursor: "" }));
  };
  const heading = h("h1", { text: "Alerts" });
  const section = h("section", { class: "alerts" }, [heading, form]);
  const params = {
    ...windowParams(query), match: query.match, status: query.status, q: query.q,
    sort: query.sort, order: query.order, fingerprint: query.fingerprint, cursor: query.cursor,
  };
  let page;
  try {
    page = await getJSON("/api/v1/alerts", params, ctx.signal);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    main.replaceChildren(section);
    if (!showFieldError(form, err)) section.append(h("p", { class: "error", role: "alert", text: err.message }));
    return;
  }
  const now = Date.now();
  const tbody = h("tbody", {}, page.alerts.map((a) => row(a, now, onAdd)));
  const table = h("table", { id: "alerts-table" }, [
    h("caption", { class: "visually-hidden", text: "Alert instances" }),
    h("thead", {}, h("tr", {}, ["Status", "Alert", "Severity", "Labels", "Started", "Ended", "Duration", "Deliveries"].map((t) => h("th", { scope: "col", text: t })))),
    tbody,
  ]);
  const notes = [];
  if (query.fingerprint) notes.push(h("span", { class: "muted" }, ["Only the label set ", h("code", { text: query.fingerprint }), ". "]));
  const summary = h("p", { class: "summary", id: "summary" }, [
    ...notes,
    page.alerts.length ? `${page.alerts.length} instance${page.alerts.length === 1 ? "" : "s"} on this page${query.cursor ? " (continued)" : ""}.` : "No alert instances match.",
  ]);
  const pager = h("nav", { class: "pager", "aria-label": "Pages" }, [
    query.cursor ? h("a", { href: queryUrl("/", { ...query, cursor: "" }), id: "first-page", text: "← First page" }) : null,
    page.next_cursor ? h("a", { href: queryUrl("/", { ...query, cursor: page.next_cursor }), id: "next-page", rel: "next", text: "Next page →" }) : null,
  ]);
  section.append(summary, h("div", { class: "table-wrap" }, table), pager);
  main.replaceChildren(section);
  if (!marked) {
    marked = true;
    performance.mark("wf:rows"); // read by scripts/bench_ui.py: navigation → first rows rendered
  }
}
