// recorder.js — peer-to-peer recording: the host's browser mixes its own mic with everything it
// hears, records the mix as Opus in WebM and uploads it in numbered chunks. A reload or a crash
// loses at most the chunk being recorded; a failed upload is retried until it gets through.
let session = null;

function newSession() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function startRecorder({ audio, url, chunkMs, csrf }) {
  if (session) {
    session.sync();
    return;
  }
  const ctx = new AudioContext({ sampleRate: 48000 });
  const dest = ctx.createMediaStreamDestination();
  const sources = new Map(); // MediaStream or track id → source node
  const s = {
    id: newSession(),
    seq: 0,
    queue: [],
    sending: false,
    closed: false,
    sync() {
      const streams = [];
      if (audio.micTrack) streams.push([audio.micTrack.id, new MediaStream([audio.micTrack])]);
      for (const sink of audio.sinks.querySelectorAll("audio")) if (sink.srcObject) streams.push([sink.srcObject.id, sink.srcObject]);
      for (const [key, stream] of streams) {
        if (sources.has(key) || !stream.getAudioTracks().length) continue;
        const node = ctx.createMediaStreamSource(stream);
        node.connect(dest);
        sources.set(key, node);
      }
    },
  };
  s.sync();
  const rec = new MediaRecorder(dest.stream, { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000 });
  rec.ondataavailable = (e) => {
    if (!e.data || !e.data.size) return;
    s.queue.push({ seq: s.seq++, blob: e.data });
    pump(s, url, csrf);
  };
  rec.onstop = () => ctx.close();
  rec.start(chunkMs);
  s.recorder = rec;
  session = s;
  globalThis.spacesRecorder = s; // for browser tests
}

async function pump(s, url, csrf) {
  if (s.sending) return;
  s.sending = true;
  while (s.queue.length) {
    const { seq, blob } = s.queue[0];
    try {
      const response = await fetch(`${url}/${s.id}/${seq}/`, { method: "POST", body: blob, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
      if (response.ok || response.status === 409 || response.status === 403) s.queue.shift();
      else await new Promise((r) => setTimeout(r, 1000));
    } catch {
      await new Promise((r) => setTimeout(r, 1000)); // offline: keep it and try again
    }
  }
  s.sending = false;
}

export function stopRecorder() {
  if (!session) return;
  if (session.recorder.state !== "inactive") session.recorder.stop(); // flushes the last chunk
  session = null;
}
