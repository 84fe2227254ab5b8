// The echo client page: connect, send text, random bytes or a file, and check every echo.
// Echoes come back in the order messages were sent, so each one is matched to the oldest
// message still waiting, which gives its round-trip time and what it must be identical to.
// The round trip runs from the send to the message event, and the page changes nothing on
// screen while an echo is due: the browser lays out and paints every change before it runs
// the next task, so a row shown after the send would count in the echo's round trip.

import { explainClose } from "./closing.js";
import { TrafficStats, formatBytes, formatMs } from "./stats.js";

const MAX_LOG_ROWS = 500;
const PREVIEW_CHARS = 80;
const RANDOM_CHUNK = 65_536; // crypto.getRandomValues fills at most 64 KiB per call.
// Changes held while an echo is due are made after this long all the same.
const ECHO_OVERDUE_MS = 1000;

const root = document.getElementById("echo-client");
const server = {
  subprotocol: root.dataset.subprotocol,
  maxMessageSize: Number(root.dataset.maxMessageSize),
  idleTimeout: root.dataset.idleTimeout ? Number(root.dataset.idleTimeout) : null,
};
const byId = (id) => document.getElementById(id);
const ui = {
  state: byId("state"),
  negotiated: byId("negotiated"),
  compression: byId("compression"),
  connectForm: byId("connect-form"),
  url: byId("url"),
  protocols: byId("protocols"),
  connect: byId("connect"),
  disconnect: byId("disconnect"),
  notice: byId("notice"),
  noticeText: byId("notice-text"),
  reconnect: byId("reconnect"),
  sendForms: [byId("text-form"), byId("binary-form"), byId("file-form")],
  text: byId("text"),
  binarySize: byId("binary-size"),
  file: byId("file"),
  log: byId("log"),
  sentSummary: byId("sent-summary"),
  echoedSummary: byId("echoed-summary"),
  rttMedian: byId("rtt-median"),
  rttP95: byId("rtt-p95"),
};

const encoder = new TextEncoder();
const stats = new TrafficStats();
let connection = null; // { socket, offered, wasOpen, closedByUser, waiting: [] }
const heldChanges = [];
let overdueTimer = null;

function setState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  const active = state === "connecting" || state === "open";
  ui.connect.disabled = active;
  ui.disconnect.disabled = !active;
  for (const form of ui.sendForms) {
    for (const control of form.elements) control.disabled = state !== "open";
  }
}

function showNotice(text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
}

// Makes a change to the page, with the summary, at once; or while an echo is due, once none
// is (ECHO_OVERDUE_MS at most), in the order they were asked for.
function show(change) {
  heldChanges.push(change);
  if (connection?.waiting.length) overdueTimer ??= setTimeout(showHeld, ECHO_OVERDUE_MS);
  else showHeld();
}

function showHeld() {
  clearTimeout(overdueTimer);
  overdueTimer = null;
  for (const change of heldChanges.splice(0)) change();
  renderSummary();
}

function logEvent(entry) {
  const time = new Date();
  show(() => appendRow({ time, ...entry }));
}

function appendRow({
  time,
  event,
  type = "",
  size = null,
  roundTrip = null,
  detail = "",
  check = "",
}) {
  const row = document.createElement("tr");
  row.dataset.event = event;
  if (check) row.dataset.check = check;
  const cells = [
    time.toLocaleTimeString([], { hour12: false }),
    event,
    type,
    size === null ? "" : formatBytes(size),
    roundTrip === null ? "" : formatMs(roundTrip),
    detail,
  ];
  for (const text of cells) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  ui.log.prepend(row);
  while (ui.log.rows.length > MAX_LOG_ROWS) ui.log.lastElementChild.remove();
}

function describeTraffic({ messages, bytes }) {
  return `${messages} ${messages === 1 ? "message" : "messages"} · ${formatBytes(bytes)}`;
}

function renderSummary() {
  ui.sentSummary.textContent = describeTraffic(stats.sent);
  ui.echoedSummary.textContent = describeTraffic(stats.echoed);
  ui.rttMedian.textContent = formatMs(stats.roundTripQuantile(0.5));
  ui.rttP95.textContent = formatMs(stats.roundTripQuantile(0.95));
}

function preview(text) {
  return text.length > PREVIEW_CHARS ? `“${text.slice(0, PREVIEW_CHARS)}…”` : `“${text}”`;
}

// The negotiated extensions, "permessage-deflate; client_max_window_bits=12", as
// "permessage-deflate (client_max_window_bits=12)"; "none" when there are none.
function describeExtensions(extensions) {
  if (!extensions) return "none";
  return extensions
    .split(",")
    .map((extension) => {
      const [name, ...params] = extension.split(";").map((part) => part.trim());
      return params.length ? `${name} (${params.join(", ")})` : name;
    })
    .join(", ");
}

function sameBytes(a, b) {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function connect() {
  ui.notice.hidden = true;
  const offered = ui.protocols.value.split(",").map((name) => name.trim()).filter(Boolean);
  let socket;
  try {
    socket = new WebSocket(ui.url.value, offered);
  } catch (error) {
    logEvent({ event: "error", detail: error.message });
    showNotice(`Cannot connect: ${error.message}`);
    return;
  }
  socket.binaryType = "arraybuffer";
  const current = { socket, offered, wasOpen: false, closedByUser: false, waiting: [] };
  connection = current;
  setState("connecting");
  ui.negotiated.textContent = "–";
  ui.compression.textContent = "–";

  socket.addEventListener("open", () => {
    current.wasOpen = true;
    setState("open");
    const subprotocol = socket.protocol || "none";
    const compression = describeExtensions(socket.extensions);
    ui.negotiated.textContent = subprotocol;
    ui.compression.textContent = compression;
    logEvent({ event: "opened", detail: `subprotocol ${subprotocol}, compression ${compression}` });
    ui.text.focus();
  });
  socket.addEventListener("message", (event) => receiveEcho(current, event.data));
  socket.addEventListener("error", () => {
    logEvent({ event: "error", detail: "The browser reported a WebSocket error." });
  });
  socket.addEventListener("close", (event) => {
    current.waiting.length = 0;
    const explanation = explainClose({
      code: event.code,
      reason: event.reason,
      wasOpen: current.wasOpen,
      closedByUser: current.closedByUser,
      offered: current.offered,
      subprotocol: server.subprotocol,
      maxMessageSize: server.maxMessageSize,
      idleTimeout: server.idleTimeout,
    });
    logEvent({ event: "closed", detail: explanation });
    if (connection === current) {
      connection = null;
      setState("closed");
      showNotice(explanation);
    }
  });
}

function send(payload, label) {
  if (connection?.socket.readyState !== WebSocket.OPEN) {
    logEvent({ event: "error", detail: "Not connected: connect first." });
    return;
  }
  const type = typeof payload === "string" ? "text" : "binary";
  const size = type === "text" ? encoder.encode(payload).byteLength : payload.byteLength;
  const notes = [label ?? (type === "text" ? preview(payload) : "")];
  if (size > server.maxMessageSize) notes.push("over the server's limit");
  connection.waiting.push({ type, payload, sentAt: performance.now() });
  connection.socket.send(payload);
  stats.recordSent(size);
  logEvent({ event: "sent", type, size, detail: notes.filter(Boolean).join(" · ") });
}

function receiveEcho(current, data) {
  const receivedAt = performance.now();
  const type = typeof data === "string" ? "text" : "binary";
  const bytes = type === "text" ? encoder.encode(data) : new Uint8Array(data);
  const sent = current.waiting.shift();
  if (!sent) {
    logEvent({ event: "echoed", type, size: bytes.byteLength, detail: "nothing was waiting" });
    return;
  }
  const roundTrip = receivedAt - sent.sentAt;
  const identical =
    sent.type === type &&
    (type === "text" ? sent.payload === data : sameBytes(sent.payload, bytes));
  const verdict = identical ? "identical" : "different";
  const detail =
    type === "text"
      ? `${preview(data)} · ${identical ? "same text" : "DIFFERENT text"}`
      : identical
        ? "byte-identical ✓"
        : "NOT byte-identical ✗";
  stats.recordEcho(bytes.byteLength, roundTrip);
  logEvent({ event: "echoed", type, size: bytes.byteLength, roundTrip, detail, check: verdict });
}

function randomBytes(count) {
  const bytes = new Uint8Array(count);
  for (let start = 0; start < count; start += RANDOM_CHUNK) {
    crypto.getRandomValues(bytes.subarray(start, Math.min(count, start + RANDOM_CHUNK)));
  }
  return bytes;
}

ui.connectForm.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
ui.reconnect.addEventListener("click", connect);
ui.disconnect.addEventListener("click", () => {
  if (!connection) return;
  connection.closedByUser = true;
  setState("closing");
  connection.socket.close(1000, "closed by the user");
});
byId("text-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value;
  send(text);
  // Whatever was typed after Enter stays.
  show(() => {
    if (ui.text.value.startsWith(text)) ui.text.value = ui.text.value.slice(text.length);
  });
});
byId("binary-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const count = ui.binarySize.valueAsNumber;
  send(randomBytes(count), `${count} random bytes`);
});
byId("file-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const [file] = ui.file.files;
  send(new Uint8Array(await file.arrayBuffer()), `file ${file.name}`);
});

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
ui.url.value = `${scheme}//${location.host}/echo`;
setState("disconnected");
renderSummary();
connect();
