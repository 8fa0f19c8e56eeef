// embed.js — the embeddable player (/spaces/<id>/embed/): listen to a live Space from another site.
//
// Nothing connects until the visitor presses Listen (a click also lets the browser play audio
// inside an iframe). Then it is the Space page's socket and audio engine, listening only: the
// stage's faces and the counts stay live; there are no controls but Listen and Stop.

import { SpaceSocket } from "./socket.js";
import { avatar, el, setSpeaking, sortStage } from "./stage.js";

const config = JSON.parse(document.getElementById("space-config").textContent);
const $ = (sel) => document.querySelector(sel);
const STAGE_ROLES = new Set(["host", "cohost", "speaker"]);

let state = null;
let socket = null;
let audio = null;
let refusal = "";

function render() {
  const stage = sortStage(state.stage.filter((p) => STAGE_ROLES.has(p.role)));
  $("#embed-stage").replaceChildren(
    ...stage.map((p) =>
      el(
        "li",
        { class: `seat embed-seat${p.present === false ? " away" : ""}`, dataset: { userId: p.user_id } },
        el("span", { class: "seat-avatar" }, avatar(p, "md")),
        el("span", { class: "seat-name" }, p.name),
      ),
    ),
  );
  const guests = state.guest_count || 0;
  $("#listener-count").textContent = state.listener_count.toLocaleString();
  $("#guest-count").textContent = guests ? `(+ ${guests.toLocaleString()} ${guests === 1 ? "guest" : "guests"})` : "";
  if (audio) audio.updateState(asListener());
}

// The player only listens, even for someone signed in who is on stage in another tab.
function asListener() {
  return { ...state, me: { ...state.me, role: "listener", muted: true } };
}

function place(p) {
  state.stage = state.stage.filter((x) => x.user_id !== p.user_id);
  if (STAGE_ROLES.has(p.role)) state.stage.push(p);
}

function onMessage(msg) {
  if (msg.type === "error" && msg.code === "entry_refused") refusal = msg.message;
  if (msg.type === "snapshot") {
    state = msg;
    render();
    return;
  }
  if (!state) return;
  if (typeof msg.v === "number") {
    if (msg.v <= state.v) return;
    if (msg.v > state.v + 1) {
      socket.send({ type: "resync" });
      return;
    }
    state.v = msg.v;
  }
  switch (msg.type) {
    case "role_changed":
      place(msg.participant);
      break;
    case "muted":
      for (const p of state.stage) if (p.user_id === msg.user_id) p.muted = msg.muted;
      break;
    case "participant_joined":
      place(msg.participant);
      break;
    case "participant_left":
      for (const p of state.stage) if (p.user_id === msg.user_id) p.present = false;
      if (audio) audio.handleSignal({ type: "signal", from: msg.user_id, kind: "ice", data: { bye: true } });
      break;
    case "listener_count":
      state.listener_count = msg.count;
      state.guest_count = msg.guests ?? state.guest_count;
      break;
    case "speaking":
      setSpeaking(msg.user_id, msg.on);
      return;
    case "signal":
      if (audio) audio.handleSignal(msg);
      return;
    case "space_ended":
      stop("This Space has ended.");
      return;
    default:
      return;
  }
  render();
}

function setStatus(status, detail = {}) {
  $("#embed-player").dataset.status = status;
  if (status === "reconnecting") $("#embed-note").textContent = "Reconnecting…";
  if (status === "open") $("#embed-note").textContent = "";
  if (status === "closed" && detail.code !== 1000) {
    stop(detail.code === 4410 ? "This Space has ended." : detail.reason || refusal || "You can't listen to this Space here. Open it in Spaces.");
  }
}

async function listen() {
  $("#listen").hidden = true;
  $("#stop").hidden = false;
  $("#embed-note").textContent = "Connecting…";
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new SpaceSocket(`${scheme}://${window.location.host}${config.ws_path}`, { onMessage, onStatus: setStatus });
  window.spaceSocket = socket; // for browser tests, as on the Space page
  socket.connect();
  const { AudioEngine } = await import("./audio.js");
  audio = new AudioEngine({
    send: (msg) => socket.send(msg),
    mode: config.audio.mode,
    iceServers: config.audio.iceServers,
    me: { user_id: config.user_id, role: "listener" },
    onConnectionState(s) {
      $("#embed-player").dataset.audio = s;
      if (s === "connected") $("#embed-note").textContent = "";
    },
    onAutoplayBlocked() {
      $("#tap-to-listen").hidden = false;
    },
  });
  if (state) audio.updateState(asListener());
}

function stop(message = "") {
  if (socket) socket.close();
  socket = null;
  if (audio) audio.close();
  audio = null;
  $("#listen").hidden = Boolean(message);
  $("#stop").hidden = true;
  $("#tap-to-listen").hidden = true;
  $("#embed-note").textContent = message;
}

$("#listen").addEventListener("click", listen);
$("#stop").addEventListener("click", () => stop());
$("#tap-to-listen").addEventListener("click", () => {
  $("#tap-to-listen").hidden = true;
  if (audio) audio.resumePlayback();
});
