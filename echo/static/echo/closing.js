// Turns a WebSocket close into a sentence a person understands.
// Close codes are those of RFC 6455 section 7.4.1 that this server, or a network, can produce.

const CODE_MEANINGS = {
  1001: "The server is going away (restarting or shutting down).",
  1002: "The server saw a WebSocket protocol error from this client.",
  1003: "The server cannot accept this kind of data.",
  1006: "The connection was lost without a closing handshake (network failure or server crash).",
  1007: "The server received text that was not valid UTF-8.",
  1008: "The server closed the connection because it broke a policy.",
  1011: "The server hit an unexpected error.",
  1013: "The server is at its connection limit. Try again later.",
};

/**
 * Why a connection ended, in words.
 * @param {{code: number, reason: string, wasOpen: boolean, closedByUser: boolean,
 *          offered: string[], subprotocol: string, maxMessageSize: number,
 *          idleTimeout: number | null}} close
 * @returns {string}
 */
export function explainClose(close) {
  const suffix = ` (close code ${close.code}${close.reason ? `, “${close.reason}”` : ""})`;
  if (!close.wasOpen) {
    if (!close.offered.includes(close.subprotocol)) {
      const offered = close.offered.length ? close.offered.join(", ") : "none";
      return (
        `The server refused the handshake: it accepts only clients that offer the ` +
        `“${close.subprotocol}” subprotocol, and this connection offered ${offered}.`
      );
    }
    return (
      "The handshake failed: the server refused it or could not be reached. " +
      "Check the URL; a page on another site is refused too."
    );
  }
  if (close.closedByUser) {
    return `You closed the connection${suffix}.`;
  }
  if (close.code === 1009) {
    return (
      `The message was too big: the server accepts messages of up to ` +
      `${close.maxMessageSize} bytes${suffix}.`
    );
  }
  if (close.code === 1000 && close.reason === "idle timeout") {
    const after = close.idleTimeout ? ` after ${close.idleTimeout} s without a message` : "";
    return `The server closed the idle connection${after}${suffix}.`;
  }
  if (close.code === 1000) {
    return `The server closed the connection normally${suffix}.`;
  }
  const meaning = CODE_MEANINGS[close.code] ?? "The connection closed.";
  return `${meaning.replace(/\.$/, "")}${suffix}.`;
}
