// Reads from the history API with the tab's credentials. Basic auth: the browser sends what the
// user typed at its prompt when the page loaded. Bearer tokens: the page asks once and keeps the
// token in sessionStorage (this tab only); a refused token is forgotten and asked for again.

const TOKEN_KEY = "webhookfast.token";

export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
  }
}

export class NeedToken extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// URLs are built on location.origin: a page opened as http://user:pass@host/ would otherwise make
// fetch refuse every relative URL (it carries credentials).
export function apiUrl(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url;
}

export async function getJSON(path, params, signal) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const resp = await fetch(apiUrl(path, params), { headers, credentials: "same-origin", signal });
  if (resp.status === 401) {
    const challenge = resp.headers.get("www-authenticate") || "";
    if (/bearer/i.test(challenge)) {
      setToken(null);
      throw new NeedToken("a token is required");
    }
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(resp.status, "bad_response", `the server answered ${resp.status} without JSON`);
  }
  if (!resp.ok) {
    const e = (body && body.error) || {};
    throw new ApiError(resp.status, e.code || "error", e.message || `HTTP ${resp.status}`, e.path);
  }
  return body;
}
