"""Exceptions of pytest-adsreplay: one base class, one subclass per kind of failure.

Every message names the recording (when there is one) and says what to do next. The
``outcome`` attribute tells the results database and the summary how to classify it.
"""

from __future__ import annotations


class AdsReplayError(Exception):
    """Base class of every error the project raises on purpose.

    ``recording`` is the recording id or path the error is about (or None), ``hint`` the
    next step for the user; both are folded into ``str(err)``.
    """

    outcome = "error"

    def __init__(self, message: str, *, recording: str | None = None, hint: str | None = None):
        self.message = message
        self.recording = recording
        self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        text = f"{self.recording}: {self.message}" if self.recording else self.message
        if self.hint:
            text += f"\n  -> {self.hint}"
        return text

    def with_recording(self, recording: str) -> AdsReplayError:
        """Attach the recording id if the raiser did not know it (returns self)."""
        if not self.recording:
            self.recording = recording
            self.args = (self._compose(),)
        return self

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.message, self.recording, self.hint, self.__dict__))


def _rebuild(cls, message, recording, hint, state):  # type: ignore[no-untyped-def]
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._compose())
    return err


class UsageError(AdsReplayError):
    """Raised for bad options, ini values or arguments (pytest exit code 4)."""


class ConfigError(UsageError):
    """Raised when a configuration file (channel map, settings) is malformed."""


class ChannelMapError(ConfigError):
    """Raised when a channel map TOML cannot be parsed or names unknown signals/units."""


class SidecarError(ConfigError):
    """Raised when a recording's sidecar TOML is malformed or bounds an unknown KPI."""


class RecordingError(AdsReplayError):
    """Raised when a recording cannot be read: missing, empty, corrupt, not MF4."""


class StorageError(RecordingError):
    """Raised when a recording in object storage cannot be listed or read: a missing
    bucket, refused credentials, an object deleted, replaced or cut off since the
    session listed it, or an unreachable store."""


class MissingChannelError(RecordingError):
    """Raised when no candidate channel of a required canonical signal is in the file."""


class AmbiguousChannelError(RecordingError):
    """Raised when a channel name occurs in several groups and the map does not say which."""


class UnitError(RecordingError):
    """Raised when the channel map's unit contradicts the unit stated in the file."""


class InvalidRecordingError(RecordingError):
    """Raised when the data quality is too poor to judge the function (SPEC §8)."""

    outcome = "invalid"


class FunctionLoadError(UsageError):
    """Raised when ``module:attr`` cannot be imported or does not build a function."""


class FunctionError(AdsReplayError):
    """Raised when the function under test raises or returns garbage during ``step``.

    ``t`` is the cycle time where it happened, ``traceback`` the function's own
    traceback text (or None when the function did not raise).
    """

    outcome = "failed"

    def __init__(
        self,
        message: str,
        *,
        t: float | None = None,
        traceback: str | None = None,
        recording: str | None = None,
        hint: str | None = None,
    ):
        self.t = t
        self.traceback = traceback
        super().__init__(message, recording=recording, hint=hint)

    def _compose(self) -> str:
        text = super()._compose()
        if self.traceback:
            body = self.traceback.rstrip()
            if body.startswith("Traceback (most recent call last):"):
                body = body.partition("\n")[2]  # the header below says it once
            text += "\n\nFunction traceback (most recent call last):\n" + body
        return text


class FunctionCrashError(FunctionError):
    """Raised when the function's process died (exit, signal, segfault), hit its memory
    limit or was killed at the stage timeout: the recording errors (``t`` is the last
    cycle time it reached)."""

    outcome = "error"


class BrokerError(AdsReplayError):
    """Raised when Redis is unreachable or the queue/worker machinery fails."""


class StageError(AdsReplayError):
    """Raised when a pipeline stage (read, aeb, db) did not finish for a recording.

    ``stage`` names it, ``outcome`` is taken over from the original error when known.
    """

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        outcome: str = "error",
        recording: str | None = None,
        hint: str | None = None,
    ):
        self.stage = stage
        self.outcome = outcome
        super().__init__(message, recording=recording, hint=hint)
