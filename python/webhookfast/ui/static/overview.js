// The Overview: what fires now, the top firing and flappiest alerts, time to resolve and alerts
// over time for the chosen range. Every bar links to the Alerts page filtered to what it shows.

import { ApiError, getJSON } from "./api.js";
import { hbars, histogram } from "./charts.js";
import { addMatcher, fmtDuration, h, matcherFor } from "./dom.js";
import { RANGES, fromLocalInput, queryUrl, readQuery, toLocalInput, windowParams } from "./query.js";

const RANGE_LABELS = { "1h": "Last hour", "6h": "Last 6 hours", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", all: "All time", custom: "Custom…" };

function nameOf(labels) {
  const name = labels.alertname || "(no alertname)";
  const rest = Object.keys(labels).filter((k) => k !== "alertname").sort().slice(0, 2).map((k) => `${k}=${labels[k]}`);
  return rest.length ? `${name} {${rest.join(", ")}}` : name;
}

function card(title, id, chart, note) {
  return h("section", { class: "card", id }, [h("h2", { text: title }), note ? h("p", { class: "muted small", text: note }) : null, chart]);
}

function form(query, ctx) {
  const range = h("select", { id: "o-range", name: "range" }, RANGES.filter((r) => r !== "all").map((r) => h("option", { value: r, selected: r === query.range, text: RANGE_LABELS[r] })));
  const since = h("input", { id: "o-since", type: "datetime-local", value: toLocalInput(query.since) });
  const until = h("input", { id: "o-until", type: "datetime-local", value: toLocalInput(query.until) });
  const custom = h("div", { class: "custom-range", hidden: query.range !== "custom" }, [h("label", { for: "o-since", text: "From" }), since, h("label", { for: "o-until", text: "to" }), until]);
  range.addEventListener("change", () => { custom.hidden = range.value !== "custom"; });
  const match = h("input", { id: "o-match", value: query.match, spellcheck: "false", autocomplete: "off", placeholder: '{team="sre"}', "aria-describedby": "o-match-error" });
  const f = h("form", { class: "filters", role: "search" }, [
    h("div", { class: "field grow" }, [h("label", { for: "o-match", text: "Label matchers" }), match, h("p", { id: "o-match-error", class: "field-error", hidden: true })]),
    h("div", { class: "field" }, [h("label", { for: "o-range", text: "Range" }), h("div", { class: "range" }, [range, custom]), h("p", { id: "o-range-error", class: "field-error", hidden: true })]),
    h("div", { class: "field actions" }, h("button", { type: "submit", text: "Show" })),
  ]);
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    ctx.navigate(queryUrl("/overview", {
      range: range.value, match: match.value.trim(),
      since: range.value === "custom" ? fromLocalInput(since.value) : "",
      until: range.value === "custom" ? fromLocalInput(until.value) : "",
    }));
  });
  return f;
}

export async function render(main, ctx) {
  const query = readQuery();
  if (query.range === "all") query.range = "30d"; // the statistics need a window
  const win = windowParams(query);
  const f = form(query, ctx);
  const section = h("section", { class: "overview" }, [h("h1", { text: "Overview" }), f]);
  let stats, hist;
  try {
    [stats, hist] = await Promise.all([
      getJSON("/api/v1/stats", { ...win, match: query.match, top: 10 }, ctx.signal),
      getJSON("/api/v1/histogram", { ...win, match: query.match, buckets: 60 }, ctx.signal),
    ]);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    main.replaceChildren(section);
    const where = err.path === "match" ? "o-match" : err.path === "since" || err.path === "until" ? "o-range" : null;
    if (where) {
      const p = f.querySelector(`#${where}-error`);
      p.textContent = err.message;
      p.hidden = false;
      f.querySelector(`#${where}`).setAttribute("aria-invalid", "true");
    } else section.append(h("p", { class: "error", role: "alert", text: err.message }));
    return;
  }
  // Links keep the window the statistics used, as absolute times.
  const base = { range: "custom", since: stats.window.since, until: stats.window.until, match: query.match };
  const withMatcher = (extra) => ({ ...base, match: addMatcher(query.match, extra) });
  const sev = Object.entries(stats.firing_now.by_severity).sort((a, b) => b[1] - a[1]);
  const charts = h("div", { class: "cards" }, [
    card(`Firing now: ${stats.firing_now.total}`, "firing-now", hbars(sev.map(([k, n]) => ({
      label: k || "(no severity)", values: [n], title: `${n} firing with severity ${k || "(none)"}`,
      href: queryUrl("/", { range: "all", status: "firing", match: addMatcher(query.match, matcherFor("severity", k)) }),
    })), { series: ["firing"], id: "chart-firing", empty: "Nothing fires now." })),
    card("Alerts over time", "over-time", histogram(hist, (since, until) => queryUrl("/", { ...base, since, until })),
      `Instances started per ${fmtDuration(hist.bucket_seconds * 1000)}; the darker part is still firing.`),
    card("Top firing", "top-firing", hbars(stats.top_firing.map((t) => ({
      label: nameOf(t.labels), values: [t.firings], title: `${nameOf(t.labels)}: ${t.firings} instances started`,
      href: queryUrl("/", { ...base, fingerprint: t.fingerprint }),
    })), { series: ["instances started"], id: "chart-top" })),
    card("Flappiest", "flapping", hbars(stats.flapping.alerts.map((t) => ({
      label: nameOf(t.labels), values: [t.changes], title: `${nameOf(t.labels)}: ${t.changes} state changes`,
      href: queryUrl("/", { ...base, fingerprint: t.fingerprint }),
    })), { series: ["state changes"], id: "chart-flapping", empty: `No alert changed state ${stats.flapping.min_changes} times or more.` })),
    card("Time to resolve", "time-to-resolve", hbars(stats.time_to_resolve.map((t) => ({
      label: t.alertname || "(no alertname)", values: [t.p50_seconds, t.p90_seconds],
      title: `${t.alertname}: median ${fmtDuration(t.p50_seconds * 1000)}, p90 ${fmtDuration(t.p90_seconds * 1000)} over ${t.resolved} resolved`,
      href: queryUrl("/", { ...withMatcher(matcherFor("alertname", t.alertname)), status: "resolved" }),
    })), { series: ["median", "p90"], format: (v) => fmtDuration(v * 1000), id: "chart-ttr" }), "Median / p90 per alertname, over the instances resolved in the range."),
  ]);
  section.append(charts);
  main.replaceChildren(section);
}
