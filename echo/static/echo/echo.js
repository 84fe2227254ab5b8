"use strict";
// Connects to this server's /echo with the "echo" subprotocol and shows every echo.
(() => {
  const root = document.getElementById("echo-client");
  const state = document.getElementById("state");
  const negotiated = document.getElementById("subprotocol");
  const form = document.getElementById("send-form");
  const input = document.getElementById("message");
  const log = document.getElementById("log");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/echo`, root.dataset.subprotocol);

  const addRow = (text) => {
    const row = document.createElement("li");
    row.textContent = text;
    log.append(row);
  };

  socket.addEventListener("open", () => {
    state.textContent = "open";
    negotiated.textContent = socket.protocol || "-";
  });
  socket.addEventListener("message", (event) => addRow(`echo: ${event.data}`));
  socket.addEventListener("close", (event) => {
    state.textContent = `closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    socket.send(input.value);
    addRow(`sent: ${input.value}`);
    input.value = "";
  });
})();
