"""The inspector's pages on the worker's web server: /ui/, /ui/tables/<name>[/<key>], /ui/messages/<message_id>.

Each page answers HTML, or its JSON twin when the request accepts ``application/json``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.utils import json as faust_json
from faust.web import Request, Response, View

from streams.inspector import render
from streams.inspector.access import read_refusal
from streams.inspector.loop_hold import LoopHold
from streams.inspector.message_page import message_state, valid_message_id
from streams.inspector.placement import UnknownPartition
from streams.inspector.routing import HOP_HEADER, RoutingFailed
from streams.inspector.snapshot import SharedSnapshot
from streams.inspector.sources import InspectorSources
from streams.inspector.table_pages import NoSuchTable, TableInspector
from streams.inspector.worker_page import worker_overview

logger = logging.getLogger(__name__)

# /ui/ reloads every 3 s in every open tab: its data (key estimates, end offsets, lag, the
# group's assignment) and its HTML are built at most once per this many seconds and shared.
OVERVIEW_TTL_SECONDS = 2.0


JSON_TYPE = "application/json"


def json_text(data: dict[str, Any]) -> str:
    """A page's JSON twin as text, encoded as faust's ``View.json`` encodes it."""
    payload = faust_json.dumps(data)
    return payload.decode() if isinstance(payload, bytes) else payload


def wants_json(request: Request) -> bool:
    """Whether the request asks for the JSON twin (``Accept: application/json``) rather than HTML."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def query_int(query: Mapping[str, str], name: str) -> int | None:
    """An integer query parameter, None when absent (ValueError when it is not an integer)."""
    raw = query.get(name)
    return None if raw in (None, "") else int(raw)


def install_inspector(app: faust.App, sources: InspectorSources) -> None:
    """Add the /ui/ pages to ``app``'s web server (same bind as /health; reads need the operator token when set)."""
    tables = TableInspector(app=app, sources=sources)
    settings = sources.settings
    render.load_templates()
    overview = SharedSnapshot(ttl=OVERVIEW_TTL_SECONDS)

    def html(page: str, data: dict[str, Any], status: int) -> str:
        return render.page(
            page if status == 200 else "error", data, status=status, show_content=settings.ui_show_content
        )

    async def answer(
        view: View,
        request: Request,
        page: str,
        build: Callable[[], Awaitable[dict[str, Any]]],
        *,
        shared: SharedSnapshot | None = None,
    ) -> Response:
        if (refused := read_refusal(view, request, settings=settings)) is not None:
            return refused
        hold = LoopHold()
        as_json = wants_json(request)
        if shared is not None:  # one build and one rendering for every viewer within its ttl
            snapshot = await hold.run(shared.get(build))
            status = 200
            render = json_text if as_json else (lambda data: html(page, data, 200))
            text = await hold.run(snapshot.rendered("json" if as_json else "html", render))
        else:
            data, status = await built(hold, build)
            # Rendered in a thread: a page of 500 table entries is about 15 ms of templating.
            text = await (
                asyncio.to_thread(json_text, data) if as_json else asyncio.to_thread(html, page, data, status)
            )

        def respond() -> Response:
            if as_json:
                return view.text(text, content_type=JSON_TYPE, status=status)
            return view.html(text, status=status)

        response = hold.measure(respond)
        # Set once the response is built, so that building it counts too.
        response.headers["Server-Timing"] = hold.server_timing()
        return response

    async def built(
        hold: LoopHold, build: Callable[[], Awaitable[dict[str, Any]]]
    ) -> tuple[dict[str, Any], int]:
        """A page's data and status: the build's, or the error page's for what the build refused."""
        try:
            data, status = await hold.run(build()), 200
        except (NoSuchTable, UnknownPartition) as exc:
            data, status = {"error": str(exc) or type(exc).__name__}, 404
        except ValueError as exc:
            data, status = {"error": f"bad request: {exc}"[:300]}, 400
        except RoutingFailed as exc:
            data, status = {"error": str(exc)}, 503
        if "status_code" in data:  # an answer forwarded from the owning worker keeps its status
            status = int(data.pop("status_code"))
        return data, status

    def forwarded(request: Request) -> bool:
        return request.headers.get(HOP_HEADER) == "1"

    class WorkerView(View):
        """/ui/: this worker, its partitions, tables, connectors, and the group's other workers."""

        async def get(self, request: Request) -> Response:
            return await answer(
                self,
                request,
                "worker",
                lambda: worker_overview(app=app, sources=sources, tables=tables),
                shared=overview,
            )

    class TableView(View):
        """/ui/tables/<name>: a page of keys (prefix search, partition filter, cursor)."""

        async def get(self, request: Request, name: str) -> Response:
            q = request.query

            async def build() -> dict[str, Any]:
                partition = query_int(q, "partition")
                auth = request.headers.get("Authorization")
                if q.get("message_id"):
                    if partition is None:
                        raise ValueError("message_id needs partition")
                    return await tables.pending_receipts(
                        name,
                        partition=partition,
                        message_id=q["message_id"],
                        forwarded=forwarded(request),
                        authorization=auth,
                    )
                return await tables.browse(
                    name,
                    partition=partition,
                    prefix=q.get("prefix", ""),
                    cursor=q.get("cursor") or None,
                    limit=query_int(q, "limit") or 50,
                    forwarded=forwarded(request),
                    authorization=auth,
                )

            if q.get("key"):  # the search box: one key, wherever it lives
                return await EntryView.answer_entry(self, request, name, q["key"])
            return await answer(self, request, "table", build)

    class EntryView(View):
        """/ui/tables/<name>/<key>: one entry, from the worker that owns its partition."""

        async def get(self, request: Request, name: str, key: str) -> Response:
            return await EntryView.answer_entry(self, request, name, key)

        @staticmethod
        async def answer_entry(view: View, request: Request, name: str, key: str) -> Response:
            """The entry page of ``key`` (also the table page's key search)."""
            return await answer(
                view,
                request,
                "entry",
                lambda: tables.entry(
                    name,
                    key,
                    conversation_id=request.query.get("conversation_id") or None,
                    forwarded=forwarded(request),
                    authorization=request.headers.get("Authorization"),
                ),
            )

    class MessageView(View):
        """/ui/messages/<message_id>: the message's receipts in the tables beside its Cassandra row."""

        async def get(self, request: Request, message_id: str) -> Response:
            async def build() -> dict[str, Any]:
                if not valid_message_id(message_id):
                    raise ValueError("a message id is a UUID")
                return await message_state(
                    message_id=message_id,
                    tables=tables,
                    sources=sources,
                    authorization=request.headers.get("Authorization"),
                )

            return await answer(self, request, "message", build)

    app.page("/ui/")(WorkerView)
    app.page("/ui/tables/{name}")(TableView)
    app.page("/ui/tables/{name}/{key}")(EntryView)
    app.page("/ui/messages/{message_id}")(MessageView)
