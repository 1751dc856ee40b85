// faice's web page: sign in, experiments, batches, a batch, registering a RED file.
// Views are chosen by the URL's hash (#/experiments, #/batches?..., #/batch/ID, #/upload).
// Every text from the server is put in the page as text (h() makes text nodes), never as HTML.

import { ApiError, download, getJSON, messageOf, request, session, signIn, signOut, streamText } from "./api.js";
import { subscribe } from "./live.js";

const STATES = ["registered", "scheduled", "processing", "succeeded", "failed", "cancelled"];
const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const BATCH_PAGE = 50;
const EXPERIMENT_PAGE = 20;
const LOG_KEEP = 200000; // characters of a log tail kept in the page

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const liveStatus = document.getElementById("live");
let current = { live: null, abort: null }; // what the view on screen holds open
let rendered = 0; // views rendered so far: the first keeps the browser's focus, later ones take it

// --- small helpers -------------------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function time(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return new Date(seconds * 1000).toLocaleString();
}

function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

function stateBadge(state) {
  return h("span", { class: "state state-" + state, "data-state": state }, state);
}

function tableWrap(label, head, body) {
  return h("div", { class: "table-wrap", role: "region", "aria-label": label, tabindex: "0" },
    h("table", {}, h("thead", {}, h("tr", {}, head.map((name) => h("th", { scope: "col", class: STATES.includes(name) || name === "#" ? "num" : null }, name)))), body));
}

function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/experiments";
  const [path, search] = hash.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(search || "") };
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function leave() {
  if (current.live) current.live.close();
  if (current.abort) current.abort.abort();
  current = { live: null, abort: new AbortController() };
  announce(""); // a message belongs to the view it was said in
}

function show(title, ...content) {
  const heading = h("h2", { tabindex: "-1", id: "view-title" }, title);
  main.replaceChildren(heading, ...content);
  document.title = title + " · faice";
  if (rendered++ > 0) heading.focus();
  return heading;
}

function live(filters, handlers) {
  current.live = subscribe(filters, {
    ...handlers,
    onMode(mode) {
      liveStatus.textContent = { stream: "Live updates: streaming", polling: "Live updates: polling every second", reconnecting: "Live updates: reconnecting" }[mode] || "";
    },
  });
  return current.live;
}

// Calls `fn` at most once a second however often it is asked (a burst of events, one reload).
function debounced(fn, ms = 1000) {
  let timer = null;
  return () => {
    if (timer === null) timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

async function cancel(path, what, button) {
  if (!confirm(`Cancel ${what}?`)) return;
  button.disabled = true;
  try {
    const response = await request(path, { method: "DELETE" });
    if (!response.ok) throw new ApiError(response.status, (await messageOf(response))[0]);
    announce(`Cancelled ${what}.`);
  } catch (error) {
    announce(`Could not cancel ${what}: ${error.message}`);
    button.disabled = false;
  }
}

function announce(text) {
  const status = document.getElementById("status");
  status.textContent = text;
}

// --- sign in -------------------------------------------------------------------------------------

function signInView(message) {
  nav.hidden = true;
  const error = h("p", { class: "error", role: "alert", id: "signin-error" }, message || "");
  const user = h("input", { id: "signin-user", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { id: "signin", class: "card", "aria-describedby": "signin-error" },
    h("label", { for: "signin-user" }, "User name"), user,
    h("label", { for: "signin-password" }, "Password"), password,
    button, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await signIn(user.value, password.value);
      password.value = "";
      route();
    } catch (failure) {
      error.textContent = "Sign-in failed: " + failure.message;
      password.select();
    } finally {
      button.disabled = false;
    }
  });
  show("Sign in to faice", form);
}

// --- experiments ---------------------------------------------------------------------------------

async function experimentsView(params) {
  const page = Math.max(0, Number(params.get("page")) || 0);
  const body = h("tbody");
  const info = h("p", { class: "muted" }, "Loading…");
  const pager = h("nav", { class: "pager", "aria-label": "Experiment pages" });
  show("Experiments", info, tableWrap("Experiments", ["Experiment", "User", "Registered", ...STATES, ""], body), pager);
  const rows = new Map();

  function counts(row, event) {
    STATES.forEach((state, i) => { row.cells[3 + i].textContent = String(event.batches?.[state] ?? 0); });
    const actions = row.cells[3 + STATES.length];
    if (event.finished) actions.replaceChildren();
    else if (!actions.firstChild) {
      const id = row.dataset.id;
      const button = h("button", { type: "button", class: "danger", onclick: () => cancel(`/experiments/${id}`, `experiment ${id}`, button) }, "Cancel");
      actions.replaceChildren(button);
    }
  }

  const load = async () => {
    const { body: list, total } = await getJSON(`/experiments?limit=${EXPERIMENT_PAGE}&skip=${page * EXPERIMENT_PAGE}`);
    rows.clear();
    body.replaceChildren(...list.map((e) => {
      const row = h("tr", { "data-id": e._id },
        h("td", {}, h("a", { href: `#/batches?experimentId=${e._id}`, class: "id" }, e._id)),
        h("td", {}, e.username), h("td", {}, time(e.registrationTime)),
        STATES.map((state) => h("td", { class: "num", "data-state": state }, "…")), h("td", {}));
      rows.set(e._id, row);
      return row;
    }));
    info.textContent = total ? `${total} experiment${total === 1 ? "" : "s"}` : "No experiments yet: register one with Upload.";
    pager.replaceChildren(...pagerLinks(page, total, EXPERIMENT_PAGE, (p) => `#/experiments?page=${p}`));
    await Promise.allSettled(list.map(async (e) => { // one that went away meanwhile keeps its "…"
      const { body: doc } = await getJSON(`/experiments/${e._id}`);
      const row = rows.get(e._id);
      if (row) counts(row, { batches: doc.batchStates, finished: doc.finished });
    }));
    subscription.watch({ experiments: [...rows.keys()], experimentList: page === 0 ? `limit=${EXPERIMENT_PAGE}` : null });
  };
  const reload = debounced(() => load().catch(() => {}));
  const subscription = live({}, {
    onExperiment(event) {
      const row = rows.get(event.experimentId);
      if (row) counts(row, event);
      else if (page === 0) reload();
    },
  });
  await load();
}

function pagerLinks(page, total, size, hrefOf) {
  const pages = Math.max(1, Math.ceil((total || 0) / size));
  return [
    page > 0 ? h("a", { href: hrefOf(page - 1), rel: "prev" }, "← Previous") : h("span", { class: "muted" }, "← Previous"),
    h("span", {}, `Page ${page + 1} of ${pages}`),
    page + 1 < pages ? h("a", { href: hrefOf(page + 1), rel: "next" }, "Next →") : h("span", { class: "muted" }, "Next →"),
  ];
}

// --- batches -------------------------------------------------------------------------------------

async function batchesView(params) {
  const page = Math.max(0, Number(params.get("page")) || 0);
  const state = STATES.includes(params.get("state")) ? params.get("state") : "";
  const experimentId = /^[0-9a-fA-F]{24}$/.test(params.get("experimentId") || "") ? params.get("experimentId").toLowerCase() : "";
  const stateSelect = h("select", { id: "filter-state", name: "state" },
    h("option", { value: "" }, "any"), STATES.map((s) => h("option", { value: s, selected: s === state }, s)));
  const experimentInput = h("input", { id: "filter-experiment", name: "experimentId", value: experimentId, pattern: "[0-9a-fA-F]{24}",
    placeholder: "24 hex digits", autocomplete: "off", spellcheck: "false" });
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter batches" },
    h("label", { for: "filter-state" }, "State"), stateSelect,
    h("label", { for: "filter-experiment" }, "Experiment"), experimentInput,
    h("button", { type: "submit" }, "Apply"), h("a", { href: "#/batches" }, "Clear filters"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (stateSelect.value) next.set("state", stateSelect.value);
    if (experimentInput.value.trim()) next.set("experimentId", experimentInput.value.trim());
    go("#/batches" + (next.toString() ? "?" + next : ""));
  });
  const body = h("tbody");
  const info = h("p", { class: "muted", id: "batch-total", "aria-live": "polite" }, "Loading…");
  const pager = h("nav", { class: "pager", "aria-label": "Batch pages" });
  const extra = [];
  if (experimentId) {
    const button = h("button", { type: "button", class: "danger", id: "cancel-experiment",
      onclick: () => cancel(`/experiments/${experimentId}`, `experiment ${experimentId}`, button) }, "Cancel this experiment");
    extra.push(h("p", {}, "Experiment ", h("code", {}, experimentId), " ", button));
  }
  show("Batches", filters, ...extra, info, tableWrap("Batches", ["Batch", "Experiment", "#", "State", "Node", "Registered", "Changed"], body), pager);

  const query = new URLSearchParams();
  if (state) query.set("state", state);
  if (experimentId) query.set("experimentId", experimentId);
  const listQuery = new URLSearchParams(query);
  listQuery.set("limit", String(BATCH_PAGE));
  listQuery.set("skip", String(page * BATCH_PAGE));
  const rows = new Map();

  function update(row, event) {
    row.cells[3].replaceChildren(stateBadge(event.state));
    if (event.node) row.cells[4].textContent = event.node;
    if (event.time) row.cells[6].textContent = time(event.time);
  }

  const load = async () => {
    const { body: list, total } = await getJSON("/batches?" + listQuery);
    rows.clear();
    body.replaceChildren(...list.map((b) => {
      const last = b.history && b.history.length ? b.history[b.history.length - 1].time : null;
      const row = h("tr", { "data-id": b._id },
        h("td", {}, h("a", { href: `#/batch/${b._id}`, class: "id" }, b._id)),
        h("td", {}, h("a", { href: `#/batches?experimentId=${b.experimentId}`, class: "id" }, b.experimentId)),
        h("td", { class: "num" }, String(b.batchesListIndex)), h("td", {}, stateBadge(b.state)),
        h("td", {}, b.node || ""), h("td", {}, time(b.registrationTime)), h("td", {}, time(last)));
      rows.set(b._id, row);
      return row;
    }));
    info.textContent = `${total} batch${total === 1 ? "" : "es"}` + (state || experimentId ? " match the filters" : "");
    pager.replaceChildren(...pagerLinks(page, total, BATCH_PAGE, (p) => {
      const next = new URLSearchParams(query);
      next.set("page", String(p));
      return "#/batches?" + next;
    }));
    subscription.watch({ batches: listQuery.toString() });
  };
  const reload = debounced(() => load().catch(() => {}));
  const subscription = live({ experimentId }, {
    onBatch(event) {
      const row = rows.get(event.batchId);
      if (row) update(row, event);
      if ((!row && page === 0) || (state && event.state !== state)) reload();
    },
  });
  await load();
}

// --- one batch -----------------------------------------------------------------------------------

async function batchView(batchId) {
  const details = h("dl", { class: "details" });
  const actions = h("p", { class: "actions" });
  const history = h("tbody");
  const outputs = h("div", { id: "outputs" }, h("p", { class: "muted" }, "None yet: a batch records its outputs when it ends."));
  const logs = { stdout: h("pre", { class: "log", id: "log-stdout", tabindex: "0", "aria-label": "stdout" }),
    stderr: h("pre", { class: "log", id: "log-stderr", tabindex: "0", "aria-label": "stderr" }) };
  show(`Batch ${batchId}`, details, actions,
    h("h3", {}, "History"), tableWrap("History", ["State", "Time", "Node", "Reason"], history),
    h("h3", {}, "Live log"), h("h4", {}, "stdout"), logs.stdout, h("h4", {}, "stderr"), logs.stderr,
    h("h3", {}, "Outputs"), outputs);
  let state = null;
  let outputsShown = false;

  const render = (b) => {
    state = b.state;
    const entries = [["State", stateBadge(b.state)], ["Experiment", h("a", { href: `#/batches?experimentId=${b.experimentId}`, class: "id" }, b.experimentId)],
      ["Index", String(b.batchesListIndex)], ["User", b.username], ["Node", b.node || ""], ["Attempts", String(b.attempts ?? "")],
      ["Exit code", b.exitCode === null || b.exitCode === undefined ? "" : String(b.exitCode)], ["Error", b.error || ""], ["Registered", time(b.registrationTime)]];
    details.replaceChildren(...entries.flatMap(([name, value]) => [h("dt", {}, name), h("dd", { "data-field": name.toLowerCase() }, value)]));
    history.replaceChildren(...(b.history || []).map((e) => h("tr", {}, h("td", {}, stateBadge(e.state)), h("td", {}, time(e.time)), h("td", {}, e.node || ""), h("td", {}, e.reason || ""))));
    if (FINAL.has(b.state)) actions.replaceChildren();
    else if (!actions.querySelector("button")) {
      const button = h("button", { type: "button", class: "danger", id: "cancel-batch", onclick: () => cancel(`/batches/${batchId}`, `batch ${batchId}`, button) }, "Cancel batch");
      actions.replaceChildren(button);
    }
    if (FINAL.has(b.state) && !outputsShown) {
      outputsShown = true;
      showOutputs(batchId, outputs).catch((error) => outputs.replaceChildren(errorBox(error)));
    }
  };
  const refresh = async () => render((await getJSON(`/batches/${batchId}`)).body);
  await refresh();
  const subscription = live({ batchId }, {
    onBatch(event) {
      if (event.batchId === batchId && event.state !== state) refresh().catch(() => {});
    },
  });
  subscription.watch({ batch: batchId });
  for (const name of ["stdout", "stderr"]) follow(batchId, name, logs[name], current.abort.signal);
}

function follow(batchId, name, pre, signal) {
  let text = "";
  const append = (chunk) => {
    if (!chunk) return;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    text = (text + chunk).slice(-LOG_KEEP);
    pre.textContent = text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  streamText(`/batches/${batchId}/${name}?follow=true`, append, signal)
    .then(() => { pre.dataset.ended = "true"; if (!text) pre.textContent = "(nothing)"; })
    .catch((error) => {
      if (signal.aborted) return;
      pre.dataset.ended = "true";
      if (!text) pre.textContent = error.status === 404 ? "(no output recorded)" : `(${error.message})`;
    });
}

async function showOutputs(batchId, box) {
  const { body } = await getJSON(`/batches/${batchId}/outputs`);
  const items = [];
  for (const [key, value] of Object.entries(body)) {
    const list = Array.isArray(value) ? value.map((item, i) => [`${key}[${i}]`, item]) : [[key, value]];
    for (const [label, item] of list) {
      if (!item) {
        items.push(h("li", {}, `${label}: nothing matched`));
        continue;
      }
      const name = item.class === "Directory" ? item.name + ".zip" : item.name;
      const button = h("button", { type: "button", onclick: () => download(item.url, name).catch((error) => announce(error.message)) }, `Download ${name}`);
      items.push(h("li", {}, h("span", {}, `${label}: ${item.class} ${item.name} (${size(item.size)}) `), button));
    }
  }
  box.replaceChildren(items.length ? h("ul", { class: "outputs" }, items) : h("p", { class: "muted" }, "This batch recorded no outputs."));
}

// --- register a RED file -------------------------------------------------------------------------

function uploadView() {
  const file = h("input", { id: "red-file", name: "red", type: "file", accept: ".yml,.yaml,.json,application/json,application/yaml,text/yaml", required: true });
  const noRetry = h("input", { id: "no-retry", type: "checkbox" });
  const button = h("button", { type: "submit" }, "Register");
  const result = h("div", { id: "upload-result" });
  const form = h("form", { id: "upload", class: "card" },
    h("label", { for: "red-file" }, "RED file (YAML or JSON)"), file,
    h("label", { class: "check" }, noRetry, " Do not retry failed batches"), button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    button.disabled = true;
    result.replaceChildren(h("p", { class: "muted" }, "Sending…"));
    try {
      const text = await chosen.text();
      const json = /\.json$/i.test(chosen.name) || /^\s*[{[]/.test(text);
      const response = await request("/red" + (noRetry.checked ? "?disableRetry=1" : ""),
        { method: "POST", headers: { "Content-Type": json ? "application/json" : "application/yaml" }, body: text });
      if (response.ok) {
        const { experimentId } = await response.json();
        result.replaceChildren(h("p", { class: "ok", role: "status" }, "Registered experiment ",
          h("a", { href: `#/batches?experimentId=${experimentId}`, id: "registered-link" }, experimentId), "."));
      } else {
        const [message, body] = await messageOf(response);
        result.replaceChildren(...problemsView(chosen.name, text, message, body && Array.isArray(body.problems) ? body.problems : []));
        const first = result.querySelector(".problem-link");
        (first || result.querySelector("[role=alert]")).focus();
      }
    } catch (error) {
      result.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  show("Register an experiment", form, result);
}

// The refusal: every problem as a link to its line, and the file's lines with each problem under its line and column.
function problemsView(name, text, message, problems) {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop(); // the file's last line break starts no line
  const byLine = new Map();
  for (const p of problems) {
    const line = Math.min(Math.max(1, p.line || 1), lines.length);
    if (!byLine.has(line)) byLine.set(line, []);
    byLine.get(line).push(p);
  }
  const where = (p) => `${name}:${p.line}:${p.column}`;
  const summary = h("div", { class: "error", role: "alert", tabindex: "-1", id: "upload-error" },
    h("p", {}, message),
    problems.length ? h("ul", { class: "problems" }, problems.map((p) => h("li", {},
      h("a", { href: `#line-${Math.min(Math.max(1, p.line || 1), lines.length)}`, class: "problem-link",
        onclick: (event) => { event.preventDefault(); const target = document.getElementById(`line-${Math.min(Math.max(1, p.line || 1), lines.length)}`); target.focus(); target.scrollIntoView({ block: "center" }); } },
      where(p)), ": ", p.path ? h("code", {}, p.path) : null, p.path ? ": " : null, p.message))) : null);
  const source = h("ol", { class: "source", "aria-label": `${name}, line by line` }, lines.map((line, i) => {
    const number = i + 1;
    const here = byLine.get(number) || [];
    return h("li", { id: `line-${number}`, tabindex: "-1", class: here.length ? "has-problem" : null },
      h("code", {}, line || " "),
      here.map((p) => {
        const marker = h("span", { class: "marker", "aria-hidden": "true" }, "^");
        marker.style.marginLeft = `${Math.max(0, (p.column || 1) - 1)}ch`;
        return h("div", { class: "problem", "data-line": p.line, "data-column": p.column }, marker, h("span", {}, ` ${where(p)}: ${p.message}`));
      }));
  }));
  return [summary, h("h3", {}, name), h("div", { class: "source-wrap" }, source)];
}

// --- routing -------------------------------------------------------------------------------------

async function route() {
  leave();
  if (!session()) {
    signInView();
    return;
  }
  nav.hidden = false;
  document.getElementById("whoami").textContent = session().username || "";
  const { parts, params } = parseHash();
  for (const link of nav.querySelectorAll("a[data-view]")) {
    if (link.dataset.view === (parts[0] === "batch" ? "batches" : parts[0])) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (parts[0] === "batches") await batchesView(params);
    else if (parts[0] === "batch" && parts[1]) await batchView(parts[1]);
    else if (parts[0] === "upload") uploadView();
    else await experimentsView(params);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    main.append(errorBox(error));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("faice:signed-out", (event) => { leave(); signInView(event.detail); });
document.getElementById("sign-out").addEventListener("click", () => { signOut(); });
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  const target = document.getElementById("view-title") || main;
  target.focus();
});
route();
