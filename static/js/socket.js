// socket.js — one job: keep a websocket to a Space open, reconnecting with backoff.
//
// The server sends a full snapshot on every (re)connect, so resynchronising is simply
// "replace the state with the next snapshot" (docs/protocol.md). Close codes 44xx are
// final (ended, removed, refused…): we stop and tell the page why.

const FINAL_CLOSE_CODES = new Set([1000, 4401, 4403, 4404, 4410, 4411, 4412, 4429]);

export class SpaceSocket {
  /**
   * @param {string} url  ws(s)://host/ws/spaces/<id>/
   * @param {{onMessage:(msg:object)=>void, onStatus:(status:string, detail?:object)=>void}} handlers
   */
  constructor(url, { onMessage, onStatus }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.refCounter = 0;
    this.timer = null;
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  connect() {
    if (this.stopped) return;
    this.onStatus(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.onStatus("open");
    });
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      this.onMessage(msg);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.stopped = true;
        this.onStatus("closed", { code: event.code, reason: event.reason });
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    this.attempt += 1;
    // 0.5 s, 1 s, 2 s … capped at 10 s, with jitter so a restarted server isn't stampeded.
    const base = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = base / 2 + Math.random() * (base / 2);
    this.onStatus("reconnecting", { attempt: this.attempt, delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send an action; returns its ref (echoed by the server's ok/error), or null if offline. */
  send(action) {
    if (!this.isOpen) return null;
    const ref = action.ref ?? `r${++this.refCounter}`;
    this.ws.send(JSON.stringify({ ...action, ref }));
    return ref;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}
