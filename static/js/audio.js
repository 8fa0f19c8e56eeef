// audio.js — the microphone and every WebRTC connection of a Space page.
//
//   import { AudioEngine } from "./audio.js";
//   const audio = new AudioEngine({
//     send: (msg) => socket.send(msg),   // a {type:"signal", to, kind, data} frame for the Space websocket
//     mode: "p2p" | "janus",             // config.audio.mode (rooms.audio.audio_config)
//     iceServers,                        // config.audio.iceServers (STUN, TURN with short-lived credentials)
//     me,                                // {user_id, role}
//     onSpeaking(level),                 // P2P mode: your mic level 0..1, ~10×/s while you publish
//                                        //   (Janus mode: not called; the server reports "speaking" itself)
//     onConnectionState(state),          // "connecting" | "connected" | "failed" | "idle"
//     onAutoplayBlocked(),               // show "Tap to listen"; its click calls audio.resumePlayback()
//     onMicError(message),               // a sentence for people; you stay a listener meanwhile
//   });
//   audio.handleSignal(msg)      // every server→client {type:"signal", from, kind, data}
//   audio.updateState(snapshot)  // after the snapshot and every change: whom to connect to is worked out here;
//                                // promotion starts publishing, demotion or removal stops it at once
//   audio.setMuted(bool)         // muted = the published track is silent (track.enabled = false)
//   audio.resumePlayback()       // from the "Tap to listen" button
//   audio.micTrack               // the MediaStreamTrack being published, or null (captions.js reads it)
//   audio.close()
//
// Peer-to-peer: one RTCPeerConnection per pair of people where at least one is on stage
// (listeners never connect to listeners). A listener opens the connection to each stage member
// (stage members cannot know every listener); between two stage members the lower user id opens
// it. After that either side renegotiates with the "perfect negotiation" pattern: promotion turns
// the transceiver to sendrecv with the mic, demotion back to recvonly. Signals carry the id of the
// connection they belong to; a newer id for the same pair replaces the older connection.
//
// Janus: one connection to the media server (user id 0). A stage member offers and the server
// joins them to the Space's AudioBridge (they hear the mix of everyone else); anyone else asks
// to "watch" and answers the Streaming mountpoint's offer. A change of role replaces the
// connection. The server checks the role before talking to Janus for you.
//
// A connection that fails is ICE-restarted; if it does not recover it is rebuilt.

const MEDIA_SERVER = 0;
const STAGE_ROLES = new Set(["host", "cohost", "speaker"]);
const DISCONNECT_GRACE_MS = 4000; // "disconnected" often heals by itself; "failed" does not
const REBUILD_AFTER_MS = 12000; // an ICE restart that has not worked by then: start over
const ANSWER_TIMEOUT_MS = 10000;
const LEVEL_INTERVAL_MS = 100;

const MIC_MESSAGES = {
  NotAllowedError:
    "Your microphone is blocked, so you're listening only. Allow the microphone for this site in your browser's settings, then tap the mic.",
  SecurityError:
    "Your microphone is blocked, so you're listening only. Allow the microphone for this site in your browser's settings, then tap the mic.",
  NotFoundError: "No microphone was found, so you're listening only. Plug one in, then tap the mic.",
  OverconstrainedError: "No microphone was found, so you're listening only. Plug one in, then tap the mic.",
  NotReadableError:
    "Your microphone is in use by another app or failed to start, so you're listening only. Close the other app, then tap the mic.",
};
const MIC_UNSUPPORTED =
  "This browser can't use a microphone here (it needs HTTPS), so you're listening only.";

function newId() {
  // Sortable by creation time, so "newer wins" picks the same connection on both sides.
  const t = Date.now().toString(36).padStart(9, "0");
  return `${t}-${Math.random().toString(36).slice(2, 8)}`;
}

function isStage(role) {
  return STAGE_ROLES.has(role);
}

export class AudioEngine {
  constructor({
    send,
    mode = "p2p",
    iceServers = [],
    me,
    onSpeaking = () => {},
    onConnectionState = () => {},
    onAutoplayBlocked = () => {},
    onMicError = () => {},
    micConstraints = null,
  }) {
    this.send = send;
    this.mode = mode === "janus" ? "janus" : "p2p";
    this.iceServers = iceServers || [];
    this.me = { user_id: me.user_id, role: me.role || "listener" };
    this.cb = { onSpeaking, onConnectionState, onAutoplayBlocked, onMicError };
    this.micConstraints = micConstraints || {
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    };
    this.links = new Map(); // peer user id (0 = media server) → Link
    this.stage = new Map(); // user id → participant, from the last state
    this.live = false;
    this.muted = true;
    this.mic = null; // MediaStreamTrack while publishing
    this.micPending = null;
    this.micError = null; // the error name after a refusal; retried when the person unmutes
    this.closed = false;
    this.autoplayBlocked = false;
    this.lastConnState = null;
    this.sinks = document.createElement("div");
    this.sinks.hidden = true;
    this.sinks.dataset.audioSinks = "";
    document.body.append(this.sinks);
    this.levelTimer = null;
    // The page's console and browser tests reach the engine here (like window.spaceSocket).
    globalThis.spacesAudio = this;
  }

  // --- the public contract -------------------------------------------------------------

  handleSignal(msg) {
    if (this.closed || !msg || msg.type !== "signal") return;
    const from = Number(msg.from);
    const data = msg.data || {};
    if (this.mode === "janus") {
      if (from === MEDIA_SERVER) this.links.get(MEDIA_SERVER)?.onSignal(msg.kind, data);
      return;
    }
    if (from === MEDIA_SERVER || from === this.me.user_id) return;
    let link = this.links.get(from);
    if (data.bye && data.id === undefined) {
      // The server says this person left or was removed: hang up whatever we had with them.
      if (link) link.onSignal("ice", data);
      return;
    }
    if (msg.kind === "offer") {
      if (link && link.id !== data.id) {
        // Two connections for one pair: the newer one wins, on both sides.
        if (String(data.id) < link.id) return;
        link.close();
        link = null;
      }
      if (!link) {
        link = new PeerLink(this, from, data.id, { initiator: false });
        this.links.set(from, link);
      }
    }
    if (link && link.id === data.id) link.onSignal(msg.kind, data);
  }

  updateState(snapshot) {
    if (this.closed || !snapshot) return;
    const me = snapshot.me || {};
    if (me.role) this.me.role = me.role;
    this.live = !snapshot.space || snapshot.space.state === "live";
    if (me.removed) this.live = false;
    this.stage = new Map((snapshot.stage || []).map((p) => [p.user_id, p]));
    if (typeof me.muted === "boolean") this.setMuted(me.muted);
    this.reconcile();
  }

  setMuted(muted) {
    const wasMuted = this.muted;
    this.muted = Boolean(muted);
    if (this.mic) this.mic.enabled = !this.muted;
    // Unmuting is the person asking for their mic again after a refusal.
    if (wasMuted && !this.muted && this.micError) {
      this.micError = null;
      this.reconcile();
    }
  }

  resumePlayback() {
    this.autoplayBlocked = false;
    for (const sink of this.sinks.querySelectorAll("audio")) this.play(sink);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links.values()) link.close({ notify: true });
    this.links.clear();
    this.stopMic();
    this.sinks.remove();
    this.reportConnection();
  }

  // --- what we should be connected to ----------------------------------------------------

  get onStage() {
    return this.live && isStage(this.me.role);
  }

  get publishing() {
    return this.onStage && this.mic !== null;
  }

  get micTrack() {
    return this.publishing ? this.mic : null;
  }

  reconcile() {
    if (this.closed) return;
    if (this.onStage && !this.mic && !this.micError) {
      this.startMic();
      // Listeners keep hearing while the browser asks for the mic.
    } else if (!this.onStage && (this.mic || this.micPending)) {
      this.stopMic();
    }
    if (this.mode === "janus") this.reconcileJanus();
    else this.reconcilePeers();
    this.reportConnection();
  }

  reconcilePeers() {
    const myId = this.me.user_id;
    const wanted = new Set();
    if (this.live) {
      for (const p of this.stage.values()) {
        if (p.user_id !== myId && p.present !== false) wanted.add(p.user_id);
      }
    }
    for (const [peerId, link] of this.links) {
      // Keep connections a listener opened to us while we are on stage; drop everything else
      // that is not a present stage member.
      const keep = wanted.has(peerId) || (this.onStage && !link.initiator && !this.stage.has(peerId));
      if (keep) {
        link.applyDirection();
      } else {
        link.close({ notify: true });
        this.links.delete(peerId);
      }
    }
    for (const peerId of wanted) {
      if (this.links.has(peerId)) continue;
      // Listeners open connections to stage members; between two stage members the lower id does.
      const initiator = !this.onStage || myId < peerId;
      if (initiator) {
        const created = new PeerLink(this, peerId, newId(), { initiator: true });
        this.links.set(peerId, created);
        created.start();
      }
    }
  }

  reconcileJanus() {
    const wantShape = !this.live ? null : this.onStage && this.mic ? "publish" : "watch";
    const link = this.links.get(MEDIA_SERVER);
    if (link && link.shape === wantShape && !link.dead) return;
    if (link) {
      link.close({ notify: true });
      this.links.delete(MEDIA_SERVER);
    }
    if (!wantShape) return;
    // A stage member waits for the mic before joining the AudioBridge; meanwhile they watch.
    const created = new JanusLink(this, wantShape);
    this.links.set(MEDIA_SERVER, created);
    created.start();
  }

  // --- microphone --------------------------------------------------------------------------

  startMic() {
    if (this.micPending) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.micError = "unsupported";
      this.cb.onMicError(MIC_UNSUPPORTED);
      return;
    }
    const pending = navigator.mediaDevices.getUserMedia(this.micConstraints).then(
      (stream) => {
        if (this.micPending !== pending) {
          for (const t of stream.getTracks()) t.stop();
          return;
        }
        this.micPending = null;
        if (this.closed || !this.onStage) {
          for (const t of stream.getTracks()) t.stop();
          return;
        }
        this.mic = stream.getAudioTracks()[0];
        this.mic.enabled = !this.muted;
        this.mic.addEventListener("ended", () => {
          if (this.mic && this.mic.readyState === "ended") {
            this.stopMic();
            this.micError = "NotReadableError";
            this.cb.onMicError(MIC_MESSAGES.NotReadableError);
            this.reconcile();
          }
        });
        this.startLevels(stream);
        this.reconcile();
      },
      (err) => {
        if (this.micPending !== pending) return;
        this.micPending = null;
        this.micError = err.name || "Error";
        this.cb.onMicError(MIC_MESSAGES[err.name] || `The microphone didn't start (${err.message || err.name}), so you're listening only. Tap the mic to try again.`);
        this.reconcile();
      },
    );
    this.micPending = pending;
  }

  stopMic() {
    this.micPending = null;
    if (this.mic) {
      this.mic.stop();
      this.mic = null;
    }
    if (this.levelTimer) {
      clearInterval(this.levelTimer);
      this.levelTimer = null;
    }
    if (this.levelContext) {
      this.levelContext.close().catch(() => {});
      this.levelContext = null;
    }
    for (const link of this.links.values()) link.applyDirection?.();
  }

  startLevels(stream) {
    if (this.mode === "janus") return; // the AudioBridge's talking events say who is speaking
    try {
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 512;
      ctx.createMediaStreamSource(stream).connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      this.levelContext = ctx;
      this.levelTimer = setInterval(() => {
        if (!this.mic) return;
        let level = 0;
        if (!this.muted) {
          analyser.getFloatTimeDomainData(buf);
          let sum = 0;
          for (const x of buf) sum += x * x;
          level = Math.min(1, Math.sqrt(sum / buf.length) * 4);
        }
        this.cb.onSpeaking(level);
      }, LEVEL_INTERVAL_MS);
    } catch {
      // No WebAudio: no level meter; audio itself still flows.
    }
  }

  // --- playback and state ------------------------------------------------------------------

  attachSink(peerId, stream) {
    let sink = this.sinks.querySelector(`audio[data-peer="${peerId}"]`);
    if (!sink) {
      sink = document.createElement("audio");
      sink.dataset.peer = String(peerId);
      sink.autoplay = true;
      this.sinks.append(sink);
    }
    if (sink.srcObject !== stream) sink.srcObject = stream;
    this.play(sink);
  }

  detachSink(peerId) {
    const sink = this.sinks.querySelector(`audio[data-peer="${peerId}"]`);
    if (sink) {
      sink.srcObject = null;
      sink.remove();
    }
  }

  play(sink) {
    const attempt = sink.play();
    if (attempt && attempt.catch) {
      attempt.catch((err) => {
        if (err && err.name === "NotAllowedError" && !this.autoplayBlocked) {
          this.autoplayBlocked = true;
          this.cb.onAutoplayBlocked();
        }
      });
    }
  }

  reportConnection() {
    let state = "idle";
    if (!this.closed && this.links.size) {
      const states = [...this.links.values()].map((l) => l.state());
      if (states.includes("failed")) state = "failed";
      else if (states.every((s) => s === "connected")) state = "connected";
      else state = "connecting";
    }
    if (state !== this.lastConnState) {
      this.lastConnState = state;
      this.cb.onConnectionState(state);
    }
  }

  signal(to, kind, data) {
    if (!this.closed) this.send({ type: "signal", to, kind, data });
  }

  // For the page's console and tests: received bytes and the connections' states.
  async stats() {
    const out = { inboundBytes: 0, outboundBytes: 0, links: {} };
    for (const [peerId, link] of this.links) {
      let inbound = 0;
      let outbound = 0;
      if (link.pc) {
        const report = await link.pc.getStats();
        report.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "audio") inbound += s.bytesReceived || 0;
          if (s.type === "outbound-rtp" && s.kind === "audio") outbound += s.bytesSent || 0;
        });
      }
      out.inboundBytes += inbound;
      out.outboundBytes += outbound;
      out.links[peerId] = { state: link.state(), inboundBytes: inbound, outboundBytes: outbound, id: link.id };
    }
    return out;
  }
}

// --- one RTCPeerConnection, with ICE restart and rebuild ---------------------------------------

class BaseLink {
  constructor(engine, peerId, id) {
    this.engine = engine;
    this.peerId = peerId;
    this.id = id;
    this.dead = false;
    this.pendingCandidates = [];
    this.failTimer = null;
    this.rebuildTimer = null;
    this.pc = new RTCPeerConnection({ iceServers: engine.iceServers, bundlePolicy: "max-bundle" });
    this.pc.addEventListener("icecandidate", (e) => {
      if (e.candidate) this.sendSignal("ice", { candidate: e.candidate.toJSON() });
    });
    this.pc.addEventListener("track", (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      engine.attachSink(this.peerId, stream);
    });
    this.pc.addEventListener("connectionstatechange", () => this.onConnectionChange());
  }

  state() {
    if (this.dead) return "failed";
    const s = this.pc.connectionState;
    if (s === "connected") return "connected";
    if (s === "failed") return "failed";
    return "connecting";
  }

  sendSignal(kind, data) {
    if (!this.dead) this.engine.signal(this.peerId, kind, { id: this.id, ...data });
  }

  onConnectionChange() {
    if (this.dead) return;
    const s = this.pc.connectionState;
    clearTimeout(this.failTimer);
    if (s === "connected") {
      clearTimeout(this.rebuildTimer);
      this.rebuildTimer = null;
    } else if (s === "failed") {
      this.recover();
    } else if (s === "disconnected") {
      this.failTimer = setTimeout(() => this.recover(), DISCONNECT_GRACE_MS);
    }
    this.engine.reportConnection();
  }

  recover() {
    if (this.dead) return;
    this.restart();
    if (!this.rebuildTimer) {
      this.rebuildTimer = setTimeout(() => {
        this.rebuildTimer = null;
        if (!this.dead && this.pc.connectionState !== "connected") this.rebuild();
      }, REBUILD_AFTER_MS);
    }
  }

  rebuild() {
    // Drop this connection and let the engine make a fresh one (new id) where it should.
    const engine = this.engine;
    this.close({ notify: false });
    if (engine.links.get(this.peerId) !== this) return; // already replaced
    engine.links.delete(this.peerId);
    engine.reconcile();
  }

  async addCandidate(candidate) {
    if (!candidate) return;
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) console.warn("audio: bad ICE candidate", err);
    }
  }

  async flushCandidates() {
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of queued) await this.addCandidate(c);
  }

  close({ notify = false } = {}) {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.failTimer);
    clearTimeout(this.rebuildTimer);
    clearTimeout(this.answerTimer);
    if (notify) this.engine.signal(this.peerId, "ice", { id: this.id, bye: true });
    this.pc.close();
    this.engine.detachSink(this.peerId);
  }
}

class PeerLink extends BaseLink {
  constructor(engine, peerId, id, { initiator }) {
    super(engine, peerId, id);
    this.initiator = initiator;
    this.polite = engine.me.user_id > peerId;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.pc.addEventListener("negotiationneeded", () => this.negotiate());
  }

  start() {
    // The initiator's transceiver; the other side gets its own from the offer.
    this.transceiver = this.pc.addTransceiver("audio", { direction: "recvonly" });
    this.applyDirection();
  }

  applyDirection() {
    if (this.dead) return;
    const t = this.transceiver || this.pc.getTransceivers()[0];
    if (!t || t.stopped) return;
    this.transceiver = t;
    const track = this.engine.publishing ? this.engine.mic : null;
    if (t.sender.track !== track) t.sender.replaceTrack(track).catch(() => {});
    const direction = track ? "sendrecv" : "recvonly";
    if (t.direction !== direction) t.direction = direction; // fires negotiationneeded
  }

  async negotiate() {
    if (this.dead) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.sendSignal("offer", { sdp: this.pc.localDescription.toJSON() });
      clearTimeout(this.answerTimer);
      this.answerTimer = setTimeout(() => {
        if (!this.dead && this.pc.signalingState === "have-local-offer") this.rebuild();
      }, ANSWER_TIMEOUT_MS);
    } catch (err) {
      console.warn("audio: offer failed", err);
    } finally {
      this.makingOffer = false;
    }
  }

  restart() {
    this.pc.restartIce(); // negotiationneeded → an offer with new ICE credentials
  }

  async onSignal(kind, data) {
    if (this.dead) return;
    if (data.bye) {
      this.close();
      if (this.engine.links.get(this.peerId) === this) this.engine.links.delete(this.peerId);
      this.engine.reportConnection();
      return;
    }
    try {
      if (kind === "offer" || kind === "answer") {
        const description = data.sdp;
        if (!description || description.type !== kind) return;
        const collision = kind === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
        this.ignoreOffer = !this.polite && collision;
        if (this.ignoreOffer) return;
        if (kind === "answer") clearTimeout(this.answerTimer);
        await this.pc.setRemoteDescription(description);
        await this.flushCandidates();
        if (kind === "offer") {
          this.applyDirection();
          await this.pc.setLocalDescription();
          this.sendSignal("answer", { sdp: this.pc.localDescription.toJSON() });
        }
      } else if (kind === "ice") {
        await this.addCandidate(data.candidate);
      }
    } catch (err) {
      console.warn(`audio: ${kind} from ${this.peerId} failed`, err);
    }
  }
}

class JanusLink extends BaseLink {
  constructor(engine, shape) {
    super(engine, MEDIA_SERVER, newId());
    this.shape = shape; // "publish" (AudioBridge) or "watch" (Streaming)
  }

  async start() {
    try {
      if (this.shape === "publish") {
        this.pc.addTransceiver(this.engine.mic, { direction: "sendrecv" });
        await this.offer();
      } else {
        this.sendSignal("watch", {});
        this.armAnswerTimer();
      }
    } catch (err) {
      console.warn("audio: joining the media server failed", err);
      this.recover();
    }
  }

  async offer({ iceRestart = false } = {}) {
    const offer = await this.pc.createOffer({ iceRestart });
    await this.pc.setLocalDescription(offer);
    this.sendSignal("offer", { sdp: this.pc.localDescription.toJSON() });
    this.armAnswerTimer();
  }

  armAnswerTimer() {
    clearTimeout(this.answerTimer);
    this.answerTimer = setTimeout(() => {
      if (!this.dead && this.pc.connectionState !== "connected") this.rebuild();
    }, ANSWER_TIMEOUT_MS);
  }

  applyDirection() {
    // A change of role replaces the whole connection (engine.reconcileJanus).
  }

  restart() {
    // Janus answers ICE restarts of a publisher; a watcher simply starts over.
    if (this.shape === "publish" && this.pc.signalingState === "stable") {
      this.offer({ iceRestart: true }).catch(() => this.rebuild());
    } else {
      this.rebuild();
    }
  }

  async onSignal(kind, data) {
    if (this.dead || data.id !== this.id) return;
    try {
      if (data.error) {
        // The server refused (e.g. no longer on stage): start over from the current state.
        console.warn("audio: media server refused", data.error);
        this.close();
        setTimeout(() => this.rebuild(), 1000);
        return;
      }
      if (kind === "answer" && this.pc.signalingState === "have-local-offer") {
        clearTimeout(this.answerTimer);
        await this.pc.setRemoteDescription(data.sdp);
      } else if (kind === "offer") {
        clearTimeout(this.answerTimer);
        await this.pc.setRemoteDescription(data.sdp);
        await this.pc.setLocalDescription();
        this.sendSignal("answer", { sdp: this.pc.localDescription.toJSON() });
      } else if (kind === "ice") {
        await this.addCandidate(data.candidate);
      }
    } catch (err) {
      console.warn(`audio: ${kind} from the media server failed`, err);
      this.recover();
    }
  }
}
