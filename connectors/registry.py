"""The connector registry: channel name -> connector class. Adding a channel = one subclass + one line here."""

from __future__ import annotations

from connectors.base import BaseConnector
from connectors.native import NativeConnector
from connectors.simulators import InstagramConnector, WhatsAppConnector

CONNECTORS: dict[str, type[BaseConnector]] = {
    WhatsAppConnector.channel: WhatsAppConnector,
    InstagramConnector.channel: InstagramConnector,
    NativeConnector.channel: NativeConnector,
}
