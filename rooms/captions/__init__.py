"""Live captions: speech recognition for the voices on stage.

Browsers of unmuted stage members stream 16 kHz mono s16le PCM (`frames`);
`pool.CaptionPool` recognises it in worker processes (`worker`) with a
pluggable `engine`, and reports partial and final text (`events`). `webvtt`
renders a finished transcript. Nothing here touches the database or the
websocket: the consumer wires it in.
"""
