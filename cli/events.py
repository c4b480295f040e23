"""`chat4all watch`: print the logged-in user's live events (EventService.Subscribe) as they come."""

from __future__ import annotations

import click

from cli.client import Client, grpc_errors, server_option
from cli.safe import shown


@click.command()
@click.option("--count", type=int, default=0, help="Stop after this many events (0: until Ctrl-C).")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
@server_option
@grpc_errors
def watch(count: int, timeout: float | None, server: str | None) -> None:
    """Stream new messages for you and receipt changes of your messages."""
    import grpc

    from chat4all.v1 import events_pb2, events_pb2_grpc, messages_pb2

    client = Client(server)
    stub = events_pb2_grpc.EventServiceStub(client.channel)
    seen = 0
    try:
        for reply in stub.Subscribe(events_pb2.SubscribeRequest(), metadata=client.md, timeout=timeout):
            ev = reply.event
            when = ev.at.ToDatetime().strftime("%H:%M:%S.%f")[:-3]
            if ev.kind == events_pb2.EVENT_KIND_MESSAGE_NEW:
                click.echo(
                    f"{when} new      {shown(ev.conversation_id)} {shown(ev.message_id)} from {shown(ev.sender_id)}:"
                    f" {shown(ev.content)}"
                )
            else:
                status = messages_pb2.MessageStatus.Name(ev.status).removeprefix("MESSAGE_STATUS_")
                click.echo(
                    f"{when} {status:<8} {shown(ev.message_id)} by {shown(ev.recipient_id)} on {shown(ev.channel)}"
                )
            seen += 1
            if count and seen >= count:
                break
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    except KeyboardInterrupt:
        pass
