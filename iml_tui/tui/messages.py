"""Messages the background workers post back to the UI thread."""

from __future__ import annotations

from textual.message import Message


class RetrainProgress(Message):
    """A training run moved on; a flood of these collapses into the latest one."""

    def __init__(self, version: int, fraction: float, note: str = "") -> None:
        super().__init__()
        self.version = version
        self.fraction = fraction
        self.note = note

    def can_replace(self, message: Message) -> bool:
        """A newer progress report supersedes an older one of the same run."""
        return isinstance(message, RetrainProgress) and message.version == self.version


class RetrainFinished(Message):
    """A training run ended (successfully or not); ``result`` goes to ``swap_model``."""

    def __init__(self, version: int, result: object) -> None:
        super().__init__()
        self.version = version
        self.result = result


class ItemShown(Message):
    """A new item is on screen and drawn (tests and the benchmark wait for it)."""

    bubble = False

    def __init__(self, item_id: str | None, seq: int) -> None:
        super().__init__()
        self.item_id = item_id
        self.seq = seq


class AudioChanged(Message):
    """The audio thread ran a command: the player's status line may have changed."""

    bubble = False

    def can_replace(self, message: Message) -> bool:
        """Only the latest matters."""
        return isinstance(message, AudioChanged)
