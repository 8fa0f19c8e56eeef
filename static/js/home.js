// home.js — one job: keep the home page's live bar and "Live now" current over /ws/home/.
// The server sends both sections' HTML on connect and at most once a second while they change
// (schema: spaces_project/consumers.py, docs/protocol.md). Reconnects with backoff; each connect
// brings a fresh copy, so nothing is missed while away.
const liveBar = document.querySelector("[data-home-live-bar]");
const liveNow = document.querySelector("[data-home-live-now]");

function replace(container, html) {
  // Same markup as a reload would give; left alone when unchanged, so focus and hover stay put.
  if (container && container.innerHTML !== html) container.innerHTML = html;
}

let delay = 1000;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/home/`);
  socket.addEventListener("open", () => { delay = 1000; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type !== "home") return;
    liveNow.dataset.live = "on"; // the page is being kept current
    replace(liveBar, message.live_bar);
    replace(liveNow, message.live_now);
  });
  socket.addEventListener("close", () => {
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

if (liveNow) connect();
