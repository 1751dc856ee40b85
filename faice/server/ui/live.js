// Every live change the page shows comes through here: subscribe(filters, handlers).
//
// It reads GET /events (server-sent events) with fetch() and a stream reader -- EventSource cannot
// send the Authorization header -- and, when the server has no /events (404), polls the REST routes
// every second instead: the objects the page says it shows (watch()), reported as the same events.
//
//   const live = subscribe({ experimentId, batchId }, { onBatch, onExperiment, onMode });
//   live.watch({ batches: "state=running&limit=50", batch: "ID", experiments: ["ID", ...], experimentList: "limit=20" });
//   live.close();
//
// onBatch({batchId, experimentId, state, time, node}); onExperiment({experimentId, batches:
// {state: count}, finished}); onMode("stream" | "polling" | "reconnecting").

import { ApiError, getJSON, request } from "./api.js";

const POLL_MS = 1000;
const RETRY_MS = 2000;

export function subscribe(filters, handlers) {
  const query = new URLSearchParams();
  if (filters.experimentId) query.set("experimentId", filters.experimentId);
  if (filters.batchId) query.set("batchId", filters.batchId);
  const controller = new AbortController();
  let closed = false;
  let lastEventId = null;
  let watched = { batches: null, batch: null, experiments: [], experimentList: null };
  let seen = new Map(); // what polling last reported, per object: only changes are reported again
  let pollTimer = null;

  const mode = (name) => handlers.onMode && handlers.onMode(name);
  const batch = (event) => handlers.onBatch && handlers.onBatch(event);
  const experiment = (event) => handlers.onExperiment && handlers.onExperiment(event);

  function dispatch(type, data) {
    if (type === "overflow") throw new Reconnect();
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (type === "batch") batch(event);
    else if (type === "experiment") experiment(event);
  }

  async function stream() {
    const headers = { Accept: "text/event-stream" };
    if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
    const response = await request("/events" + (query.toString() ? "?" + query : ""), { headers, signal: controller.signal });
    if (response.status === 404) return false;
    if (!response.ok) throw new ApiError(response.status, "GET /events: " + response.status);
    mode("stream");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let type = "message";
    let data = [];
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (data.length) dispatch(type, data.join("\n"));
            type = "message";
            data = [];
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") type = value;
            else if (field === "data") data.push(value);
            else if (field === "id") lastEventId = value;
          }
        }
      }
    } catch (error) {
      if (!(error instanceof Reconnect)) throw error;
    } finally {
      reader.cancel().catch(() => {});
    }
    return true;
  }

  async function run() {
    while (!closed) {
      try {
        if (!(await stream())) {
          mode("polling");
          poll();
          return;
        }
      } catch (error) {
        if (closed || (error instanceof ApiError && error.status === 401)) return;
      }
      if (closed) return;
      mode("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  function changed(key, value) {
    const text = JSON.stringify(value);
    if (seen.get(key) === text) return false;
    seen.set(key, text);
    return true;
  }

  function report(row) {
    const history = row.history || [];
    const last = history.length ? history[history.length - 1] : {};
    const event = { batchId: row._id, experimentId: row.experimentId, state: row.state, time: last.time ?? null, node: row.node ?? null };
    if (changed("b" + row._id, [row.state, event.time])) batch(event);
  }

  async function pollOnce() {
    const tasks = [];
    if (watched.batches !== null) tasks.push(getJSON("/batches?" + watched.batches).then(({ body }) => body.forEach(report)));
    if (watched.batch) tasks.push(getJSON("/batches/" + watched.batch).then(({ body }) => report(body)));
    let experiments = watched.experiments;
    if (watched.experimentList !== null) {
      const listed = await getJSON("/experiments?" + watched.experimentList).then(({ body }) => body.map((e) => e._id), () => []);
      experiments = [...new Set([...experiments, ...listed])]; // a new one is reported too: the page shows it
    }
    for (const id of experiments) {
      if (seen.get("f" + id)) continue; // finished: its counts no longer change
      tasks.push(getJSON("/experiments/" + id).then(({ body }) => {
        const event = { experimentId: id, batches: body.batchStates, finished: body.finished };
        if (changed("e" + id, event)) experiment(event);
        if (body.finished) seen.set("f" + id, true);
      }));
    }
    await Promise.allSettled(tasks);
  }

  async function poll() {
    if (closed) return;
    await pollOnce();
    if (!closed) pollTimer = setTimeout(poll, POLL_MS);
  }

  run();
  return {
    // What the page shows now (polling reports it; the stream reports everything that matches the filters).
    watch(what) {
      watched = { batches: what.batches ?? null, batch: what.batch ?? null, experiments: what.experiments || [], experimentList: what.experimentList ?? null };
      seen = new Map();
    },
    close() {
      closed = true;
      clearTimeout(pollTimer);
      controller.abort();
    },
  };
}

class Reconnect extends Error {}
