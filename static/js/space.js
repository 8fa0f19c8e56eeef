// space.js — the live part of a Space page: state from the websocket, controls, audio.
//
// State comes only from the server: a snapshot on every (re)connect, then events applied
// by the version rule in docs/protocol.md. Controls send actions; nothing changes on
// screen until the server's event says so.

import { SpaceSocket } from "./socket.js";
import { el, renderHands, renderListeners, renderStage, setSpeaking, showReaction } from "./stage.js";

const config = JSON.parse(document.getElementById("space-config").textContent);
const $ = (sel) => document.querySelector(sel);
const STAGE_ROLES = new Set(["host", "cohost", "speaker"]);

let state = null;
let refusal = ""; // the words of the last entry_refused frame
let audio = null;
let captionsHidden = localStorage.getItem("spaces.captionsHidden") === "1";
const partialCaptions = new Map();

// --- helpers -----------------------------------------------------------------

function toast(message, kind = "info") {
  const box = $("#live-toasts");
  const node = el("div", { class: `toast toast-${kind}`, role: "status" }, message);
  box.append(node);
  setTimeout(() => node.remove(), 4500);
}

function hidesCaptions() {
  return captionsHidden && state?.me?.role !== "host";
}

// Recognition falling behind is worth one notice, not one per speaker every few seconds.
const LAG_NOTICE_MS = 30_000;
// A `reactions` frame holds up to this long of reactions (REACTIONS_INTERVAL in rooms/protocol.py):
// they pop one after another across it, as they were sent, not all at once.
const REACTIONS_SPREAD_MS = 500;
let lastLagNotice = -Infinity;

function isStage(role) {
  return STAGE_ROLES.has(role);
}

function canManage() {
  return state && (state.me.role === "host" || state.me.role === "cohost");
}

function findPerson(userId) {
  return state.stage.find((p) => p.user_id === userId) || state.listeners.find((p) => p.user_id === userId);
}

function nameOf(userId) {
  const p = findPerson(userId) || state.hands.find((h) => h.user_id === userId);
  return p ? p.name : "Someone";
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function postForm(url) {
  try {
    const response = await fetch(url, { method: "POST", headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }, credentials: "same-origin" });
    return response.ok;
  } catch {
    return false;
  }
}

// Screen readers hear stage changes as one sentence in a polite live region (the stage grid
// itself is re-rendered on every change, which would read out everyone again).
const ROLE_WORDS = { host: "the host", cohost: "a co-host", speaker: "a speaker" };
function announceStage(p, previous) {
  let text = "";
  if (isStage(p.role) && !isStage(previous)) text = `${p.name} is on stage as ${ROLE_WORDS[p.role]}.`;
  else if (!isStage(p.role) && isStage(previous)) text = `${p.name} left the stage.`;
  else if (p.role !== previous) text = `${p.name} is now ${ROLE_WORDS[p.role]}.`;
  if (text) $("#stage-announcer").textContent = text;
}

function send(action) {
  const ref = socket.send(action);
  if (ref === null) toast("You're offline — reconnecting…", "error");
  return ref;
}

// --- applying server messages --------------------------------------------------

function placeParticipant(p) {
  state.stage = state.stage.filter((x) => x.user_id !== p.user_id);
  state.listeners = state.listeners.filter((x) => x.user_id !== p.user_id);
  if (isStage(p.role)) state.stage.push(p);
  else if (state.listeners.length < 50) state.listeners.push(p);
  if (p.user_id === state.me.user_id) {
    state.me.role = p.role;
    state.me.muted = p.muted;
    if (isStage(p.role)) state.me.hand_raised = false;
  }
}

const versioned = {
  role_changed(msg) {
    placeParticipant(msg.participant);
    announceStage(msg.participant, msg.previous);
    if (msg.participant.user_id === state.me.user_id) {
      if (isStage(msg.participant.role) && !isStage(msg.previous)) toast("You're on stage. Your mic is muted — tap the mic to talk.", "success");
      if (!isStage(msg.participant.role) && isStage(msg.previous)) toast("You're a listener now.");
      if (msg.participant.role === "cohost") toast("You're a co-host now.", "success");
    }
  },
  muted(msg) {
    for (const p of state.stage) if (p.user_id === msg.user_id) p.muted = msg.muted;
    if (msg.user_id === state.me.user_id) {
      state.me.muted = msg.muted;
      if (msg.muted && msg.by && msg.by !== state.me.user_id) toast(`${nameOf(msg.by)} muted you.`);
    }
  },
  hand_raised(msg) {
    state.hands = state.hands.filter((h) => h.user_id !== msg.hand.user_id).concat([msg.hand]);
    if (msg.hand.user_id === state.me.user_id) state.me.hand_raised = true;
  },
  hand_lowered(msg) {
    state.hands = state.hands.filter((h) => h.user_id !== msg.user_id);
    if (msg.user_id === state.me.user_id) {
      state.me.hand_raised = false;
      if (msg.reason === "dismissed") toast("The host lowered your hand.");
    }
  },
  invited(msg) {
    state.invited = [...new Set([...(state.invited || []), msg.user_id])];
    if (msg.user_id === state.me.user_id) state.me.invited = true;
  },
  invite_cleared(msg) {
    state.invited = (state.invited || []).filter((id) => id !== msg.user_id);
    if (msg.user_id === state.me.user_id) state.me.invited = false;
  },
  captions_toggled(msg) {
    state.space.captions = msg.on;
  },
  recording_toggled(msg) {
    state.space.recording = msg.on;
  },
};

const ephemeral = {
  snapshot(msg) {
    state = msg;
    partialCaptions.clear();
  },
  participant_joined(msg) {
    placeParticipant(msg.participant);
  },
  participant_left(msg) {
    state.listeners = state.listeners.filter((p) => p.user_id !== msg.user_id);
    state.hands = state.hands.filter((h) => h.user_id !== msg.user_id);
    if (msg.reason === "removed") state.stage = state.stage.filter((p) => p.user_id !== msg.user_id);
    else for (const p of state.stage) if (p.user_id === msg.user_id) p.present = false;
  },
  listeners_left(msg) {
    const gone = new Set(msg.user_ids);
    state.listeners = state.listeners.filter((p) => !gone.has(p.user_id));
    state.hands = state.hands.filter((h) => !gone.has(h.user_id));
    // A speaker's page hangs up the audio it was sending each of them (peer-to-peer).
    if (audio) for (const id of gone) audio.handleSignal({ type: "signal", from: id, kind: "ice", data: { bye: true } });
  },
  listener_count(msg) {
    state.listener_count = msg.count;
    state.guest_count = msg.guests ?? state.guest_count;
  },
  reactions(msg) {
    const gap = REACTIONS_SPREAD_MS / msg.items.length;
    msg.items.forEach((r, i) => {
      if (i === 0) showReaction(r.user_id, r.emoji);
      else setTimeout(() => showReaction(r.user_id, r.emoji), i * gap);
    });
    return "no-render";
  },
  speaking(msg) {
    setSpeaking(msg.user_id, msg.on);
    return "no-render";
  },
  captions(msg) {
    for (const line of msg.lines) showCaption(line);
    return "no-render";
  },
  captions_lagging(msg) {
    if (state.me.role === "host" && performance.now() - lastLagNotice >= LAG_NOTICE_MS) {
      lastLagNotice = performance.now();
      toast(msg.message || "Captions are lagging behind.", "error");
    }
    return "no-render";
  },
  signal(msg) {
    if (audio) audio.handleSignal(msg);
    return "no-render";
  },
  space_ended(msg) {
    state.space.state = "ended";
    state.space.ended_reason = msg.reason;
  },
  ok() {
    return "no-render";
  },
  pong() {
    return "no-render";
  },
  error(msg) {
    toast(msg.message || "That didn't work.", "error");
    return "no-render";
  },
};

function onMessage(msg) {
  if (msg.type === "snapshot") {
    // A new socket sends captions until told otherwise; a page that hid them says so.
    if (captionsHidden) socket.send({ type: "captions_view", on: false });
    ephemeral.snapshot(msg);
    render();
    return;
  }
  if (msg.type === "error" && msg.code === "entry_refused") {
    refusal = msg.message; // the close that follows carries no reason through daphne
  }
  if (!state) return;
  if (msg.type in versioned) {
    if (typeof msg.v === "number") {
      if (msg.v <= state.v) return; // already in our snapshot
      if (msg.v > state.v + 1) {
        socket.send({ type: "resync" }); // we missed something; the snapshot will fix it
        return;
      }
      state.v = msg.v;
    }
    versioned[msg.type](msg);
    render();
    return;
  }
  const handler = ephemeral[msg.type];
  if (handler && handler(msg) !== "no-render") render();
}

// --- rendering ------------------------------------------------------------------

function render() {
  const me = state.me;
  document.body.dataset.role = me.role;
  $("#listener-count").textContent = state.listener_count.toLocaleString();
  renderStage($("#stage"), state, { onPerson: openPersonSheet });
  renderHands($("#hands"), state, {
    canManage: canManage(),
    onAccept: (h) => send({ type: "speaker_accept", user_id: h.user_id }),
    onDismiss: (h) => send({ type: "hand_dismiss", user_id: h.user_id }),
  });
  renderListeners($("#listeners"), state, { onPerson: openPersonSheet });

  const onStage = isStage(me.role);
  const live = state.space.state === "live";
  $("#mic-button").hidden = !onStage || !live;
  $("#mic-button").setAttribute("aria-pressed", String(!me.muted));
  $("#mic-button").classList.toggle("on", !me.muted);
  $("#mic-label").textContent = me.muted ? "Unmute" : "Mute";
  $("#hand-button").hidden = onStage || !live || !me.can_raise_hand;
  $("#hand-button").setAttribute("aria-pressed", String(me.hand_raised));
  $("#hand-label").textContent = me.hand_raised ? "Lower hand" : "Raise hand";
  $("#step-down-button").hidden = !(me.role === "speaker" || me.role === "cohost") || !live;
  $("#end-button").hidden = me.role !== "host" || !live;
  $("#stage-count").textContent = String(state.stage.filter((p) => p.present !== false).length);
  $("#invite-banner").hidden = !me.invited || onStage;
  $("#captions-host-toggle").hidden = me.role !== "host" || !live;
  $("#captions-host-toggle").setAttribute("aria-pressed", String(state.space.captions));
  $("#captions-host-label").textContent = state.space.captions ? "Captions on" : "Captions off";
  // The host has one CC control (on/off for everyone) and always sees the captions it turned on.
  $("#captions").hidden = !state.space.captions || hidesCaptions();
  $("#captions-viewer-toggle").hidden = !state.space.captions || me.role === "host";
  $("#captions-viewer-label").textContent = captionsHidden ? "Show captions" : "Hide captions";
  const recording = Boolean(state.space.recording);
  $("#rec-mark").hidden = !recording || !live;
  $("#invite-recording").hidden = !recording;
  $("#recording-toggle").hidden = !(me.role === "host" || me.role === "cohost") || !live;
  $("#recording-toggle").setAttribute("aria-pressed", String(recording));
  $("#recording-label").textContent = recording ? "Stop recording" : "Record";
  syncRecorder();
  if (state.space.state === "ended") showEnded(state.space.ended_reason);
  if (audio) audio.updateState(state);
  if (audio) audio.setMuted(me.muted);
  syncCaptions();
}

function showEnded(reason) {
  const overlay = $("#ended");
  const iAmHost = state?.me?.user_id === state?.space?.host_id;
  const text = {
    host: iAmHost ? "You ended this Space. Here is how it went." : "The host ended this Space.",
    moderator: "This Space was ended by a moderator.",
    host_gone: "This Space ended because the host left.",
  }[reason] || "This Space has ended.";
  $("#ended-reason").textContent = text;
  // Loads the rating prompt (listeners and speakers) or the summary (the host).
  if (overlay.hidden) document.body.dispatchEvent(new CustomEvent("spaces:ended"));
  overlay.hidden = false;
  document.body.classList.add("space-ended");
  if (audio) {
    audio.close();
    audio = null;
  }
}

function showClosed(code, reason) {
  reason = reason || refusal;
  const messages = {
    4401: reason || "Sign in to join this Space.",
    4403: reason || "You can't join this Space.",
    4404: "This Space doesn't exist.",
    4410: "This Space has ended.",
    4411: "You were removed from this Space.",
    4412: reason || "Your connection was closed by a moderator.",
    4429: reason || "Too many people are listening without an account from your network. Sign in to listen.",
  };
  if (code === 4410) return showEnded(state?.space?.ended_reason);
  if (code === 1000) return;
  $("#ended-reason").textContent = messages[code] || reason || "You left this Space.";
  $("#ended-title").textContent = code === 4411 ? "Removed" : "Can't stay in this Space";
  $("#ended").hidden = false;
  if (audio) {
    audio.close();
    audio = null;
  }
}

function showCaption(msg) {
  if (hidesCaptions() || !state.space.captions) return;
  const box = $("#caption-lines");
  const key = `${msg.user_id}:${msg.utterance ?? ""}`;
  let line = partialCaptions.get(key);
  if (!line) {
    line = el("p", { class: "caption-line" }, el("strong", {}, `${msg.name || nameOf(msg.user_id)}: `), el("span", {}));
    box.append(line);
    partialCaptions.set(key, line);
  }
  line.querySelector("span").textContent = msg.text;
  line.classList.toggle("partial", !msg.final);
  if (msg.final) partialCaptions.delete(key);
  while (box.children.length > 6) box.firstElementChild.remove();
}

// --- the person sheet (host / co-host tools, and everyone's view of a person) ----

function personActions(p) {
  const me = state.me;
  const actions = [];
  const host = me.role === "host";
  const cohost = me.role === "cohost";
  if (p.user_id === me.user_id) return actions;
  if (host || cohost) {
    if (p.role === "speaker" || (host && p.role === "cohost")) {
      if (!p.muted) actions.push(["Mute", { type: "mute_other", user_id: p.user_id }]);
      actions.push(["Move to audience", { type: "speaker_move_to_audience", user_id: p.user_id }]);
    }
    if (p.role === "listener" && !(state.invited || []).includes(p.user_id)) actions.push(["Invite to speak", { type: "speaker_invite", user_id: p.user_id }]);
    if (host && p.role === "speaker") actions.push(["Make co-host", { type: "cohost_appoint", user_id: p.user_id }]);
    if (host && p.role === "cohost") actions.push(["Remove co-host", { type: "cohost_remove", user_id: p.user_id }]);
    if (p.role !== "host" && (host || p.role === "speaker" || p.role === "listener")) actions.push(["Remove from Space", { type: "participant_remove", user_id: p.user_id }, "danger"]);
    if (host) actions.push(["Block from all my Spaces", { http: `/u/${encodeURIComponent(p.username)}/block/` }, "danger"]);
  }
  return actions;
}

function openPersonSheet(p) {
  const sheet = $("#person-sheet");
  $("#sheet-name").textContent = p.name;
  $("#sheet-handle").textContent = `@${p.username}`;
  $("#sheet-profile").href = `/u/${encodeURIComponent(p.username)}/`;
  const box = $("#sheet-actions");
  box.replaceChildren(
    ...personActions(p).map(([label, action, kind]) =>
      el("button", {
        class: `btn ${kind === "danger" ? "btn-danger" : "btn-ghost"}`,
        type: "button",
        onclick: () => {
          if (action.type === "participant_remove" && !confirm(`Remove ${p.name} from this Space? They won't be able to come back.`)) return;
          sheet.close();
          if (action.http) {
            if (!confirm(`Block ${p.name} from all your Spaces? They'll be removed now and can't join again.`)) return;
            postForm(action.http).then((ok) => toast(ok ? `${p.name} is blocked from your Spaces.` : "Couldn't block them. Try again.", ok ? "success" : "error"));
            return;
          }
          send(action);
        },
      }, label),
    ),
  );
  sheet.showModal();
}

// --- controls -----------------------------------------------------------------

function wireControls() {
  $("#mic-button").addEventListener("click", () => send({ type: state.me.muted ? "unmute_self" : "mute_self" }));
  $("#hand-button").addEventListener("click", () => send({ type: state.me.hand_raised ? "hand_lower" : "hand_raise" }));
  $("#step-down-button").addEventListener("click", () => send({ type: "speaker_step_down" }));
  $("#end-button").addEventListener("click", () => {
    if (confirm("End this Space for everyone?")) send({ type: "space_end" });
  });
  $("#leave-button").addEventListener("click", () => {
    send({ type: "leave" });
    socket.close();
    window.location.href = config.leave_url;
  });
  $("#invite-accept").addEventListener("click", () => send({ type: "invite_accept" }));
  $("#invite-decline").addEventListener("click", () => send({ type: "invite_decline" }));
  $("#captions-host-toggle").addEventListener("click", () => send({ type: "captions_toggle", on: !state.space.captions }));
  $("#recording-toggle").addEventListener("click", () => send({ type: "recording_toggle", on: !state.space.recording }));
  $("#captions-viewer-toggle").addEventListener("click", () => {
    captionsHidden = !captionsHidden;
    localStorage.setItem("spaces.captionsHidden", captionsHidden ? "1" : "0");
    send({ type: "captions_view", on: !captionsHidden });
    render();
  });
  for (const button of document.querySelectorAll("[data-emoji]")) {
    button.addEventListener("click", () => {
      send({ type: "reaction", emoji: button.dataset.emoji });
      $("#reaction-picker").removeAttribute("open");
    });
  }
  $("#share-button").addEventListener("click", async () => {
    const url = window.location.href;
    try {
      if (navigator.share) await navigator.share({ title: document.title, url });
      else {
        await navigator.clipboard.writeText(url);
        toast("Link copied.", "success");
      }
    } catch (err) {
      if (err?.name === "AbortError") return; // the share sheet was closed
      // No clipboard (plain http, or refused): a small sheet with the link ready to copy.
      const input = $("#share-url");
      input.value = url;
      $("#share-sheet").showModal();
      input.select();
    }
  });
  $("#share-close").addEventListener("click", () => $("#share-sheet").close());
  $("#sheet-close").addEventListener("click", () => $("#person-sheet").close());
  $("#tap-to-listen").addEventListener("click", () => {
    $("#tap-to-listen").hidden = true;
    if (audio) audio.resumePlayback();
  });
}

function setConnection(status, detail = {}) {
  const dot = $("#connection");
  dot.dataset.status = status;
  const label = {
    connecting: "Connecting…",
    open: "Connected", // the LIVE badge beside it already says the Space is live
    reconnecting: "Reconnecting…",
    closed: "Disconnected",
  }[status];
  dot.title = label;
  $("#connection-label").textContent = label;
  if (status === "closed") showClosed(detail.code, detail.reason);
}

// --- audio ------------------------------------------------------------------------

async function startAudio() {
  if (!config.audio) return;
  try {
    const { AudioEngine } = await import("./audio.js");
    let lastSpeaking = false;
    let lastSent = 0;
    audio = new AudioEngine({
      send: (msg) => socket.send(msg),
      mode: config.audio.mode,
      iceServers: config.audio.iceServers,
      me: { user_id: config.user_id, role: state ? state.me.role : "listener" },
      onSpeaking(level) {
        const on = level > 0.04;
        const now = performance.now();
        if (on !== lastSpeaking && now - lastSent > 300) {
          lastSpeaking = on;
          lastSent = now;
          socket.send({ type: "speaking", on });
        }
      },
      onConnectionState(s) {
        $("#audio-state").dataset.state = s;
        $("#audio-state-label").textContent = { connecting: "Connecting audio…", connected: "Audio connected", failed: "Audio lost — retrying", idle: "" }[s] ?? "";
      },
      onAutoplayBlocked() {
        $("#tap-to-listen").hidden = false;
      },
      onMicError(message) {
        toast(message, "error");
      },
    });
    if (state) {
      audio.updateState(state);
      audio.setMuted(state.me.muted);
    }
  } catch (err) {
    console.error("audio unavailable", err);
    toast("Audio isn't available in this browser.", "error");
  }
}

// --- captions: an unmuted stage member's mic goes to the recogniser while captions are on ---------

let captions = null; // the captions.js module, loaded the first time it is needed

function syncCaptions() {
  const track = audio ? audio.micTrack : null;
  const wanted = track && state && state.space.captions && state.space.state === "live" && isStage(state.me.role) && !state.me.muted;
  if (!wanted) {
    if (captions && typeof captions !== "string") captions.stopCaptions();
    return;
  }
  if (captions === null) {
    captions = "loading";
    import("./captions.js").then((module) => {
      captions = module;
      syncCaptions();
    });
    return;
  }
  if (captions !== "loading") captions.startCaptions({ track, url: `${scheme}://${window.location.host}${config.ws_path}captions/` });
}

// --- recording: peer-to-peer, the host's browser records what it hears and uploads chunks ---------

let recorder = null; // the recorder.js module once loaded

function syncRecorder() {
  const wanted = Boolean(audio && config.recording && config.audio && config.audio.mode !== "janus" && state && state.space.recording && state.space.state === "live" && state.me.role === "host");
  if (!wanted) {
    if (recorder && typeof recorder !== "string") recorder.stopRecorder();
    return;
  }
  if (recorder === null) {
    recorder = "loading";
    import("./recorder.js").then((module) => {
      recorder = module;
      syncRecorder();
    });
    return;
  }
  if (recorder !== "loading") recorder.startRecorder({ audio, url: config.recording.chunks_url, chunkMs: config.recording.chunk_ms, csrf: csrfToken() });
}

// --- start ------------------------------------------------------------------------

const scheme = window.location.protocol === "https:" ? "wss" : "ws";
const socket = new SpaceSocket(`${scheme}://${window.location.host}${config.ws_path}`, {
  onMessage,
  onStatus: setConnection,
});
window.spaceSocket = socket; // for people debugging in the console, and for browser tests
wireControls();
socket.connect();
startAudio();
setInterval(syncCaptions, 1000);
setInterval(syncRecorder, 1000); // the mic arrives a moment after the state that asks for it
