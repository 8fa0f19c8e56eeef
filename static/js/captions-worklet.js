// captions-worklet.js — runs in the AudioWorklet: the mic at the context's rate → 16 kHz mono
// 16-bit PCM, posted to captions.js in frames of FRAME_SAMPLES (100 ms).
//
// Each output sample is the average of the input samples it stands for (a box low-pass), which
// keeps speech and removes most of what would alias above 8 kHz; good enough for recognition.

const TARGET_RATE = 16000;
const FRAME_SAMPLES = 1600;

class CaptionsDownsampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample (3 at 48 kHz)
    this.acc = 0;
    this.count = 0;
    this.pos = 0; // input samples consumed toward the next output sample
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (e) => {
      if (e.data === "stop") this.running = false;
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (!this.running) return false;
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const n = input[0].length;
    for (let i = 0; i < n; i++) {
      let x = 0;
      for (let c = 0; c < channels; c++) x += input[c][i];
      this.acc += x / channels;
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.acc = 0;
        this.count = 0;
        this.frame[this.filled++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.filled === FRAME_SAMPLES) {
          const out = this.frame;
          this.port.postMessage(out.buffer, [out.buffer]);
          this.frame = new Int16Array(FRAME_SAMPLES);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("captions-downsampler", CaptionsDownsampler);
