// One alert (a label set): its labels and annotations, every episode on a time axis, and the log
// of its state changes and deliveries.

import { ApiError, getJSON } from "./api.js";
import { timeline } from "./charts.js";
import { fmtDuration, fmtTime, h, matcherFor, parseTime, statusBadge, textOrLink } from "./dom.js";
import { queryUrl } from "./query.js";

// "What was firing together": the episode's start ± this much, on the Alerts page.
const AROUND_MS = 15 * 60 * 1000;

function labelLinks(labels) {
  return h("ul", { class: "chips" }, Object.keys(labels).sort().map((k) =>
    h("li", {}, h("a", {
      class: "chip", href: queryUrl("/", { range: "all", match: `{${matcherFor(k, labels[k])}}` }),
      title: "All alerts with this label",
    }, [h("span", { class: "k", text: k }), h("span", { class: "eq", text: "=" }), h("span", { class: "v", text: labels[k] })]))));
}

function annotationList(annotations) {
  const keys = Object.keys(annotations || {}).sort();
  if (!keys.length) return h("p", { class: "muted", text: "No annotations." });
  return h("dl", { class: "annotations" }, keys.flatMap((k) => [h("dt", { text: k }), h("dd", {}, textOrLink(annotations[k]))]));
}

function logTable(episodes, now) {
  const rows = [];
  for (const ep of episodes) {
    const starts = parseTime(ep.starts_at);
    const ends = ep.status === "resolved" ? parseTime(ep.ends_at) : null;
    rows.push(h("tr", { class: "episode" }, [
      h("th", { scope: "row", colspan: 2 }, ["Episode from ", h("time", { datetime: ep.starts_at, text: fmtTime(ep.starts_at) })]),
      h("td", {}, statusBadge(ep.status)),
      h("td", { text: ends ? `resolved after ${fmtDuration(ends - starts)}` : `firing for ${fmtDuration(now - starts)}` }),
      h("td", { class: "num", text: `${ep.notifications} deliver${ep.notifications === 1 ? "y" : "ies"}` }),
      h("td", {}, [`last seen ${fmtTime(ep.last_seen)} · `, h("a", {
        class: "around", href: queryUrl("/", { range: "custom", since: new Date(starts - AROUND_MS).toISOString(), until: new Date(starts + AROUND_MS).toISOString() }),
        title: "Alerts that started within 15 minutes of this episode", text: "what else started then",
      })]),
    ]));
    for (const ev of ep.timeline) {
      rows.push(h("tr", {}, [
        h("td", { class: "time" }, h("time", { datetime: ev.received_at, text: fmtTime(ev.received_at) })),
        h("td", { class: "muted", text: "received" }),
        h("td", {}, statusBadge(ev.status)),
        h("td", {}, [ev.receiver ? h("span", { text: ev.receiver }) : null, ev.source ? h("span", { class: "muted", text: ` via ${ev.source}` }) : null]),
        h("td", { class: "group" }, h("span", { class: "text", text: ev.group_key || "" })),
        h("td", {}, ev.generator_url ? textOrLink(ev.generator_url) : null),
      ]));
    }
  }
  return h("div", { class: "table-wrap" }, h("table", { id: "log-table" }, [
    h("caption", { class: "visually-hidden", text: "State changes and deliveries" }),
    h("thead", {}, h("tr", {}, ["Received", "", "State", "Receiver, source", "Group key", "Generator"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows),
  ]));
}

export async function render(main, ctx, fingerprint) {
  const cursor = new URLSearchParams(location.search).get("cursor") || "";
  let body;
  try {
    body = await getJSON(`/api/v1/alerts/${encodeURIComponent(fingerprint)}`, { cursor }, ctx.signal);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    main.replaceChildren(h("section", {}, [h("h1", { text: "Alert" }), h("p", { class: "error", role: "alert", text: err.message })]));
    return;
  }
  const now = Date.now();
  const sum = body.summary;
  const latest = body.episodes[0];
  const name = body.labels.alertname || "(no alertname)";
  main.replaceChildren(h("section", { class: "alert" }, [
    h("p", { class: "crumbs" }, [h("a", { href: "/", text: "Alerts" }), " / ", h("code", { text: body.fingerprint })]),
    h("h1", {}, [h("span", { class: "text", text: name }), " ", latest ? statusBadge(latest.status) : null]),
    h("p", { class: "summary" }, [
      `${sum.episodes} episode${sum.episodes === 1 ? "" : "s"}, ${sum.notifications} deliveries, first started ${fmtTime(sum.first_started_at)}, last seen ${fmtTime(sum.last_seen)}. `,
      h("a", { href: queryUrl("/", { range: "all", fingerprint: body.fingerprint }), text: "All its instances" }),
    ]),
    h("h2", { text: "Labels" }),
    labelLinks(body.labels),
    h("h2", { text: "Annotations" }),
    annotationList(latest ? latest.annotations : {}),
    h("h2", { text: "Episodes" }),
    timeline(body.episodes, now),
    h("h2", { text: "State changes and deliveries" }),
    logTable(body.episodes, now),
    body.next_cursor ? h("nav", { class: "pager" }, h("a", { href: `/alerts/${body.fingerprint}?cursor=${encodeURIComponent(body.next_cursor)}`, rel: "next", text: "Older episodes →" })) : null,
  ]));
}
