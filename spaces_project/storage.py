"""Static files in production: WhiteNoise's compressed, hashed copies, with each URL remembered.

``{% static %}`` looks the hashed name up in the manifest and joins URLs on every call (a few of
them on every page). The manifest is written by collectstatic and does not change while a server
runs, so each name's URL is worked out once per process.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}

    def url(self, name, force=False):
        if force:
            return super().url(name, force)
        try:
            return self._urls[name]
        except KeyError:
            url = self._urls[name] = super().url(name)
            return url
