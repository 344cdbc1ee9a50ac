// The page's entry point: routes on the path (/, /overview, /alerts/<fingerprint>), intercepts
// same-origin links so navigation keeps the tab's token, asks for a token when the API wants one,
// and refreshes the view in "Live" mode without losing the query or the scroll position.

import { NeedToken, setToken, token } from "./api.js";
import { h } from "./dom.js";
import * as alerts from "./alerts.js";

const LIVE_KEY = "webhookfast.live";
const LIVE_EVERY_MS = 10000;

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const tokenForm = document.getElementById("token-form");
const signout = document.getElementById("signout");
const live = document.getElementById("live");

let controller = null;
let timer = null;
let tokenJustGiven = false;

async function view(path) {
  if (path === "/") return (m, ctx) => alerts.render(m, ctx);
  if (path === "/overview") return (await import("./overview.js")).render;
  const m = path.match(/^\/alerts\/([^/]+)$/);
  if (m) {
    const mod = await import("./alert.js");
    return (main, ctx) => mod.render(main, ctx, decodeURIComponent(m[1]));
  }
  return (main) => main.replaceChildren(h("p", { class: "error", text: "No such page." }));
}

function navigate(url) {
  history.pushState(null, "", url);
  render({ focus: true });
}

async function render({ focus = false, keepScroll = false } = {}) {
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  const scroll = keepScroll ? window.scrollY : 0;
  for (const a of document.querySelectorAll("[data-nav]")) {
    const here = a.dataset.nav === (location.pathname === "/overview" ? "overview" : "alerts");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  signout.hidden = !token();
  try {
    const fn = await view(location.pathname);
    await fn(main, { navigate, signal });
    tokenJustGiven = false;
    banner.hidden = true;
    tokenForm.hidden = true;
    main.hidden = false;
    main.setAttribute("aria-busy", "false");
    document.title = `${main.querySelector("h1")?.textContent || "Alerts"} · webhookfast`;
    if (keepScroll) window.scrollTo(0, scroll);
    else if (focus) main.focus({ preventScroll: false });
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof NeedToken) {
      main.hidden = true;
      tokenForm.hidden = false;
      signout.hidden = true;
      const error = document.getElementById("token-error");
      error.textContent = tokenJustGiven ? "That token was refused." : "";
      error.hidden = !tokenJustGiven;
      tokenJustGiven = false;
      document.getElementById("token").focus();
      return;
    }
    banner.textContent = `Could not load: ${err.message}`;
    banner.hidden = false;
  }
}

tokenForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token");
  setToken(input.value.trim());
  input.value = "";
  tokenJustGiven = true;
  render({ focus: true });
});

signout.addEventListener("click", () => {
  setToken(null);
  render();
});

document.addEventListener("click", (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest("a");
  if (!a || a.getAttribute("target")) return;
  const href = a.getAttribute("href");
  if (!href) return;
  const url = new URL(href, location.origin);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/ui/")) return;
  ev.preventDefault();
  if (href.startsWith("#")) return;
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => render());

function setLive(on) {
  live.checked = on;
  sessionStorage.setItem(LIVE_KEY, on ? "1" : "");
  clearInterval(timer);
  timer = null;
  if (!on) return;
  timer = setInterval(() => {
    // Not while the tab is hidden or the user is typing in a filter.
    const typing = document.activeElement && main.contains(document.activeElement) && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    if (!document.hidden && !typing && tokenForm.hidden) render({ keepScroll: true });
  }, LIVE_EVERY_MS);
}

live.addEventListener("change", () => setLive(live.checked));
setLive(sessionStorage.getItem(LIVE_KEY) === "1");
render();
