// captions.js — one job: while asked to, stream the published mic track to the captions socket.
//
//   import { startCaptions, stopCaptions } from "./captions.js";
//   startCaptions({ track, url })  // track: the MediaStreamTrack audio.js publishes (audio.micTrack);
//                                  // url: ws(s)://host/ws/spaces/<id>/captions/
//   stopCaptions()                 // muted, off stage, captions off, leaving: nothing more is sent
//
// An AudioWorklet (captions-worklet.js) turns the track into 16 kHz mono s16le frames of 100 ms;
// each is one binary websocket message (docs/protocol.md, "The captions uplink"). Frames are sent
// only while the server's last `captions_status` said `sending: true`, and dropped (never queued)
// when the socket is backed up: late captions are worth less than the room's own audio.

const FINAL_CLOSE_CODES = new Set([1000, 4401, 4403, 4404, 4409, 4410, 4411, 4412]);
const MAX_BUFFERED_BYTES = 64 * 1024; // 2 s of audio: more than that waiting means the link is struggling
const RETRY_MS = [1000, 2000, 5000, 10000];

let current = null;

class CaptionsUplink {
  constructor({ track, url }) {
    this.track = track;
    this.url = url;
    this.stopped = false;
    this.ws = null;
    this.serverSending = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.ctx = null;
    this.node = null;
    this.sent = 0;
    this.failed = false;
  }

  async start() {
    this.connect();
    try {
      const ctx = new AudioContext();
      this.ctx = ctx;
      await ctx.audioWorklet.addModule(new URL("./captions-worklet.js", import.meta.url));
      if (this.stopped) return;
      const source = ctx.createMediaStreamSource(new MediaStream([this.track]));
      const node = new AudioWorkletNode(ctx, "captions-downsampler", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
      node.port.onmessage = (e) => this.sendFrame(e.data);
      source.connect(node);
      node.connect(ctx.destination); // pulls the graph; the node outputs silence
      this.node = node;
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
    } catch (err) {
      console.error("captions: the microphone can't be captioned in this browser", err);
      this.failed = true; // not retried for this track: a new track (or a reload) tries again
      this.stop();
    }
  }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.serverSending = false;
    ws.addEventListener("open", () => {
      this.attempt = 0;
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "captions_status") this.serverSending = Boolean(msg.sending);
      else if (msg.type === "error" && msg.code !== "entry_refused") console.warn("captions:", msg.code, msg.message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.serverSending = false;
      if (this.stopped || FINAL_CLOSE_CODES.has(event.code)) return;
      const wait = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.connect(), wait);
    });
  }

  sendFrame(buffer) {
    const ws = this.ws;
    if (this.stopped || !ws || ws.readyState !== WebSocket.OPEN || !this.serverSending) return;
    if (!this.track.enabled || this.track.readyState !== "live") return; // muted: send nothing
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) return;
    ws.send(buffer);
    this.sent += 1;
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.node) {
      this.node.port.postMessage("stop");
      this.node.disconnect();
    }
    if (this.ctx) this.ctx.close().catch(() => {});
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

export function startCaptions({ track, url }) {
  if (current && current.track === track && current.url === url && (!current.stopped || current.failed)) return;
  stopCaptions();
  current = new CaptionsUplink({ track, url });
  current.start();
}

export function stopCaptions() {
  if (current) current.stop();
  current = null;
}

// For people debugging in the console, and for browser tests.
export function captionsUplink() {
  return current;
}
