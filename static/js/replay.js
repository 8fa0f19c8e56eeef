// The replay page's player: play/pause, seek on the waveform, speeds, next speaker, captions shown
// under the player, a share link that starts at the current time, and one play counted per page.
const $ = (s) => document.querySelector(s);
const player = $(".player");
const audio = $("#replay-audio");
const play = $("#replay-play");
const wave = $("#replay-waveform");
const chapters = [...document.querySelectorAll(".chapters a")].map((a) => ({ start: Number(a.dataset.start), link: a }));
let counted = false;

const clock = (s) => {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
};

function seek(seconds) {
  audio.currentTime = Math.max(0, Math.min(seconds, audio.duration || seconds));
}

const total = $("#replay-duration");
total.textContent = clock(Number(total.dataset.seconds));

const start = Number(player.dataset.start || 0);
if (start > 0) {
  if (audio.readyState >= 1) seek(start);
  else audio.addEventListener("loadedmetadata", () => seek(start), { once: true });
}

play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
audio.addEventListener("play", () => {
  play.textContent = "❚❚";
  play.setAttribute("aria-label", "Pause");
  if (!counted) {
    counted = true;
    fetch(player.dataset.playedUrl, { method: "POST" }).catch(() => {});
  }
});
audio.addEventListener("pause", () => {
  play.textContent = "▶";
  play.setAttribute("aria-label", "Play");
});
audio.addEventListener("timeupdate", () => {
  const d = audio.duration || 1;
  $("#replay-progress").style.width = `${(100 * audio.currentTime) / d}%`;
  $("#replay-time").textContent = clock(audio.currentTime);
  wave.setAttribute("aria-valuenow", String(Math.floor(audio.currentTime)));
  let current = null;
  for (const c of chapters) if (c.start <= audio.currentTime + 0.05) current = c;
  chapters.forEach((c) => c.link.classList.toggle("current", c === current));
});

wave.addEventListener("click", (e) => {
  const box = wave.getBoundingClientRect();
  seek(((e.clientX - box.left) / box.width) * (audio.duration || 0));
});
wave.addEventListener("keydown", (e) => {
  if (e.key === "ArrowRight") seek(audio.currentTime + 10);
  else if (e.key === "ArrowLeft") seek(audio.currentTime - 10);
  else return;
  e.preventDefault();
});

document.querySelectorAll("[data-speed]").forEach((button) =>
  button.addEventListener("click", () => {
    audio.playbackRate = Number(button.dataset.speed);
    document.querySelectorAll("[data-speed]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
  }),
);

$("#replay-next")?.addEventListener("click", () => {
  const next = chapters.find((c) => c.start > audio.currentTime + 0.5);
  if (next) seek(next.start);
});
chapters.forEach((c) =>
  c.link.addEventListener("click", (e) => {
    e.preventDefault();
    seek(c.start);
    audio.play();
  }),
);

// Captions: the <track> feeds the cues; they are shown in the page's own style under the player.
const track = audio.textTracks[0];
const caption = $("#replay-caption");
if (track) {
  track.mode = "hidden";
  track.addEventListener("cuechange", () => {
    const cue = track.activeCues && track.activeCues[0];
    caption.textContent = cue ? cue.text.replace(/<v ([^>]*)>/, "$1: ").replace(/<\/v>/, "") : "";
  });
  $("#replay-cc")?.addEventListener("click", (e) => {
    const on = e.currentTarget.getAttribute("aria-pressed") !== "true";
    e.currentTarget.setAttribute("aria-pressed", String(on));
    caption.hidden = !on;
  });
}

$("#replay-share").addEventListener("click", async () => {
  const url = `${player.dataset.shareUrl}?t=${Math.floor(audio.currentTime)}`;
  const note = $("#replay-share-note");
  try {
    await navigator.clipboard.writeText(url);
    note.textContent = `Link copied: ${url}`;
  } catch {
    note.textContent = url;
  }
  note.hidden = false;
});
