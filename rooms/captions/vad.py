"""Streaming voice-activity detection with the Silero VAD model that faster-whisper ships.

faster-whisper's own helper scores a whole recording at once and starts from a blank state each
call; a live speaker arrives 100 ms at a time, so this keeps the model's recurrent state (and the
few samples of context each window needs) between calls. The model file is read from the
faster-whisper package itself: nothing is downloaded.
"""

from __future__ import annotations

import os

import numpy as np

WINDOW = 512  # samples the model scores at once (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous window it sees with each one


def silero_model_path() -> str:
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


class SileroStream:
    """Speech probability per 32 ms window of one stream of 16 kHz float32 audio."""

    def __init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: each recognition worker process owns one core.
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            silero_model_path(), providers=["CPUExecutionProvider"], sess_options=options
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Scores for `audio`, whose length must be a whole number of windows."""
        if len(audio) == 0:
            return np.zeros(0, dtype=np.float32)
        if len(audio) % WINDOW:
            raise ValueError(f"VAD input must be whole {WINDOW}-sample windows")
        windows = audio.reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None], windows[:-1, -CONTEXT:]])
        self._context = windows[-1, -CONTEXT:].copy()
        scores, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([contexts, windows], axis=1), "h": self._h, "c": self._c}
        )
        return scores.reshape(-1)
