"""Who gets a message and on which channels: participants minus the sender, each on their linked channels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chat4all.wire import DELIVERY_CHANNELS, Channel


@dataclass(frozen=True)
class Target:
    """One outbound delivery: a recipient on a channel, with their handle there (None for native)."""

    recipient_id: str
    channel: str
    handle: str | None

    @property
    def key(self) -> str:
        """The target's key, ``recipient_id:channel``: one receipt per recipient and channel."""
        return f"{self.recipient_id}:{self.channel}"


def select_targets(
    *,
    sender_id: str,
    participant_ids: Iterable[str],
    linked_channels: Mapping[str, Mapping[str, str]],
    requested: Iterable[str] = (),
    known_channels: Iterable[str] = DELIVERY_CHANNELS,
) -> list[Target]:
    """Targets of a message, recipients and channels in a stable (sorted) order.

    - recipients are the participants other than the sender;
    - a recipient goes on each linked channel that has a connector, or only on those
      named in ``requested`` when it is not empty (``native`` may be named too);
    - a recipient with no usable channel gets the native channel: never silently dropped.
    """
    known = set(known_channels)
    wanted = {c for c in requested if c in known}
    targets: list[Target] = []
    for recipient in sorted(set(participant_ids) - {sender_id}):
        linked = {
            name: handle
            for name, handle in (linked_channels.get(recipient) or {}).items()
            if name in known and name != Channel.NATIVE
        }
        if wanted:
            chosen = [(name, linked[name]) for name in sorted(linked) if name in wanted]
            if Channel.NATIVE in wanted:
                chosen.append((Channel.NATIVE, None))
        else:
            chosen = sorted(linked.items())
        if not chosen:
            chosen = [(Channel.NATIVE, None)]
        targets.extend(Target(recipient_id=recipient, channel=name, handle=handle) for name, handle in chosen)
    return targets
