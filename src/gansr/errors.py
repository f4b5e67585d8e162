"""The one error type that crosses gansr's edges.

Library code raises :class:`GansrError` with a message a user can act on; the
CLI and the DVC stage entry points print it as one line and exit non-zero.
"""


class GansrError(Exception):
    """A failure caused by input, configuration or environment, not a bug."""


class ConfigError(GansrError):
    """A value in params.yaml (or on the command line) is invalid."""


class DataError(GansrError):
    """An input image, archive or manifest is unusable."""


class TrackingError(GansrError):
    """The MLflow tracking server or model registry cannot be used."""
