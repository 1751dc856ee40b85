// The API as the page uses it: the session (tokens in sessionStorage, never in a URL), requests with
// `Authorization: Bearer`, a new access token from the refresh token when the old one expired, and
// downloads through a Blob (an <a href> to a route could not send the token).

const KEY = "faice.session";
// A 401 for a script comes without the Basic realm, so the browser opens no password dialog of its own.
const SCRIPT = { "X-Requested-With": "XMLHttpRequest" };

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function keep(body) {
  sessionStorage.setItem(KEY, JSON.stringify({ access: body.access_token, refresh: body.refresh_token, username: body.username }));
}

export function signOut(why) {
  sessionStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent("faice:signed-out", { detail: why || "" }));
}

function basic(name, password) {
  const bytes = new TextEncoder().encode(name + ":" + password);
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return "Basic " + btoa(text);
}

// What an error answer says: faice's {"msg"}, CC-Agency's JSON string, or the status.
export async function messageOf(response) {
  const body = await response.clone().json().catch(() => null);
  if (body && typeof body === "object" && typeof body.msg === "string") return [body.msg, body];
  if (typeof body === "string") return [body, body];
  return [`${response.status} ${response.statusText}`.trim(), body];
}

export async function signIn(name, password) {
  const response = await fetch("/login", { method: "POST", headers: { ...SCRIPT, Authorization: basic(name, password) }, credentials: "same-origin" });
  if (!response.ok) {
    const [message, body] = await messageOf(response);
    throw new ApiError(response.status, message, body);
  }
  keep(await response.json());
}

async function refresh() {
  const current = session();
  if (!current || !current.refresh) return false;
  const response = await fetch("/refreshtoken", { method: "POST", headers: { ...SCRIPT, Authorization: "Bearer " + current.refresh } });
  if (!response.ok) return false;
  keep(await response.json());
  return true;
}

let refreshing = null;

// fetch() with the session's token; a 401 tries the refresh token once, then signs out.
export async function request(path, options = {}) {
  const send = () => {
    const current = session();
    const headers = { ...SCRIPT, ...(options.headers || {}) };
    if (current) headers.Authorization = "Bearer " + current.access;
    return fetch(path, { ...options, headers, credentials: "same-origin" });
  };
  let response = await send();
  if (response.status === 401 && session()) {
    refreshing = refreshing || refresh().finally(() => { refreshing = null; });
    if (await refreshing) response = await send();
    if (response.status === 401) {
      signOut("Your session has ended: sign in again.");
      throw new ApiError(401, "signed out");
    }
  }
  return response;
}

// A JSON answer and its X-Total-Count (lists); an ApiError for anything but 2xx.
export async function getJSON(path, options = {}) {
  const response = await request(path, options);
  if (!response.ok) {
    const [message, body] = await messageOf(response);
    throw new ApiError(response.status, message, body);
  }
  const total = response.headers.get("X-Total-Count");
  return { body: await response.json(), total: total === null ? null : Number(total) };
}

// A route's bytes saved as a file: fetched with the token, handed to the browser as an object URL.
export async function download(path, name) {
  const response = await request(path);
  if (!response.ok) {
    const [message, body] = await messageOf(response);
    throw new ApiError(response.status, message, body);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// A streamed text answer (a followed log), chunk by chunk, until it ends or `signal` aborts it.
export async function streamText(path, onText, signal) {
  const response = await request(path, { signal });
  if (!response.ok) {
    const [message] = await messageOf(response);
    throw new ApiError(response.status, message);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
  onText(decoder.decode());
}
