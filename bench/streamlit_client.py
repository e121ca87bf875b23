"""A browser tab, reduced to what it says to a Streamlit server: reruns, clicks and fragment polls.

A watching student's browser opens the page's websocket, asks for a run of the script, and
then, for each fragment the server tells it to rerun on a timer (`auto_rerun` messages), asks
for that fragment again at that interval. `Tab` does the same with Streamlit's own protobuf
messages, so a benchmark can put thirty watchers on a real server without thirty browsers
(whose drawing would, on a loopback test machine, take the cores a real class's laptops bring
with them). It keeps no widget states between runs beyond what it is told to send.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class RunResult:
    """What one script or fragment run sent back."""

    seconds: float
    buttons: dict[str, str] = field(default_factory=dict)  # label -> widget id
    widgets: dict[str, str] = field(default_factory=dict)  # user key -> widget id
    element_types: list[str] = field(default_factory=list)


class Tab:
    """One session on the server at `url` (http://host:port), showing page `page` with `query`."""

    def __init__(self, url: str, page: str, query: str = ""):
        self.url, self.page, self.query = url, page, query
        self.auto_reruns: dict[str, float] = {}  # fragment id -> seconds between its reruns
        self.missed = 0  # Fragment reruns asked for that never finished.
        self._socket = None

    async def open(self) -> RunResult:
        from websockets.asyncio.client import connect

        self._socket = await connect(self.url.replace("http", "ws", 1) + "/_stcore/stream", max_size=None)
        return await self.rerun()

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def rerun(
        self,
        *,
        click: str | None = None,
        numbers: dict[str, int] | None = None,
        fragment: str = "",
        timeout: float = 120,
    ) -> RunResult:
        """One run of the page (or of one fragment), optionally clicking a button or setting number inputs.

        Returns when the server says the run finished; the query string follows the page's changes.
        """
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        state = message.rerun_script
        state.query_string, state.page_name = self.query, self.page
        if fragment:
            state.fragment_id, state.is_auto_rerun = fragment, True
        if click:
            state.widget_states.widgets.add(id=click, trigger_value=True)
        for widget_id, value in (numbers or {}).items():
            state.widget_states.widgets.add(id=widget_id, int_value=value)
        if not fragment:  # A whole run sets the page's fragment timers afresh, as the browser's are.
            self.auto_reruns = {}
        started = time.perf_counter()
        await self._socket.send(message.SerializeToString())
        return await self._read_until_finished(started, timeout)

    async def _read_until_finished(self, started: float, timeout: float) -> RunResult:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        result = RunResult(seconds=0.0)
        while True:
            message = ForwardMsg()
            message.ParseFromString(await asyncio.wait_for(self._socket.recv(), timeout))
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                element_type = element.WhichOneof("type")
                result.element_types.append(element_type)
                widget = getattr(element, element_type)
                widget_id = getattr(widget, "id", "")
                if element_type == "button":
                    result.buttons[widget.label] = widget_id
                if widget_id and not widget_id.endswith("-None"):
                    result.widgets[widget_id.rsplit("-", 1)[1]] = widget_id
            elif kind == "auto_rerun":
                self.auto_reruns[message.auto_rerun.fragment_id] = message.auto_rerun.interval
            elif kind == "page_info_changed":
                self.query = message.page_info_changed.query_string
            elif kind == "script_finished":
                result.seconds = time.perf_counter() - started
                return result

    async def poll(self, stop: asyncio.Event, served: list[float]) -> None:
        """Reruns each timed fragment at its interval, as the browser's timers do, until `stop` is set.

        Appends the moment each fragment run finished to `served`.
        """
        due: dict[str, float] = {}
        while not stop.is_set():
            now = time.perf_counter()
            for fragment, interval in self.auto_reruns.items():
                due.setdefault(fragment, now + interval)
            for fragment in [known for known in due if known not in self.auto_reruns]:
                del due[fragment]
            if not due:
                await asyncio.sleep(0.2)
                continue
            fragment, moment = min(due.items(), key=lambda item: item[1])
            await asyncio.sleep(max(0.0, moment - now))
            if stop.is_set():
                break
            try:
                await self.rerun(fragment=fragment, timeout=30)
                served.append(time.perf_counter())
            except TimeoutError:  # The server skipped it (say, the fragment was redrawn meanwhile): go on.
                self.missed += 1
            # The next one an interval after this one was due, or at once when the run took longer.
            due[fragment] = max(moment + self.auto_reruns.get(fragment, 1.0), time.perf_counter())
