"""Windows fed in batches behave exactly as windows fed one event at a time."""

from __future__ import annotations

from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from sereno.engine.windows import Window, Windows
from sereno.events.schema import Event
from sereno.events.times import Timestamps

from conftest import event

T0 = 1476057600


def tell_late(late: list[int], index: int, index_in_batch: int) -> None:
    late.append(index)


def one_by_one(events: list[Event], lateness: float) -> tuple[list[tuple[int, int]], list[int]]:
    """(window start, events in it) of each window as it closes, and the late events' indices."""
    windows = Windows(allowed_lateness=lateness)
    closed: list[Window] = []
    late: list[int] = []
    for index, item in enumerate(events):
        closed.extend(windows.extend([item], partial(tell_late, late, index)))
    closed.extend(windows.close_all())
    return [(w.start, len(w.events)) for w in closed], late


def in_batches(
    events: list[Event], lateness: float, sizes: list[int], told_times: bool = False
) -> tuple[list[tuple[int, int]], list[int]]:
    """`told_times`: each batch's timestamps are handed with it, as the reader does."""
    windows = Windows(allowed_lateness=lateness)
    closed: list[Window] = []
    late: list[int] = []
    offset = 0
    for size in sizes:
        batch = events[offset : offset + size]
        report = lambda index, base=offset: late.append(base + index)  # noqa: E731
        each = [item.timestamp for item in batch]
        timestamps = Timestamps(each, min(each), max(each)) if told_times else None
        closed.extend(windows.extend(batch, report, timestamps))
        offset += size
    closed.extend(windows.close_all())
    return [(w.start, len(w.events)) for w in closed], late


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Event], list[int]]:
    """Events mostly in time order, some out of order or late, some far ahead of the others,
    with gaps; and how to cut them in batches."""
    clock = T0
    events = []
    for _ in range(draw(st.integers(0, 60))):
        clock += draw(st.sampled_from([0, 1, 7, 20, 45, 61, 130, 3600]))  # and gaps
        jitter = draw(st.sampled_from([0, 0, 0, -5, -40, -95, -200, 5000]))  # and clocks ahead
        events.append(Event(**event(server=draw(st.sampled_from("abc")), timestamp=clock + jitter)))
    sizes = []
    remaining = len(events)
    while remaining > 0:
        sizes.append(draw(st.integers(1, max(1, remaining))))
        remaining -= sizes[-1]
    return events, sizes


@settings(max_examples=400, deadline=None)
@given(streams(), st.sampled_from([0.0, 30.0, 90.0]), st.booleans())
def test_batches_close_the_same_windows_and_find_the_same_late_events(
    stream: tuple[list[Event], list[int]], lateness: float, told_times: bool
) -> None:
    events, sizes = stream
    assert in_batches(events, lateness, sizes, told_times) == one_by_one(events, lateness)


def test_a_batch_within_one_open_minute_is_added_whole() -> None:
    windows = Windows(allowed_lateness=30)
    batch = [Event(**event(server=s, timestamp=T0 + 10 + i)) for i, s in enumerate("abc")]
    assert list(windows.extend(batch, lambda index: None)) == []
    [window] = windows.close_all()
    assert (window.start, window.events) == (T0, batch)


def test_the_latest_sample_of_each_component_keeps_the_order_of_first_arrival() -> None:
    window = Window(T0)
    for component, timestamp in [("Y", T0 + 20), ("X", T0 + 10), ("X", T0 + 20)]:
        window.add(Event(**event(server="a", component=component, timestamp=timestamp)))
    latest = window.latest_samples(frozenset({"X", "Y"}))
    assert [(e.component, e.timestamp) for e in latest] == [("Y", T0 + 20), ("X", T0 + 20)]
    assert [(e.component, e.timestamp) for e in window.latest_samples(frozenset({"X"}))] == [
        ("X", T0 + 20)
    ]
    assert list(window.latest.values()) == latest == window.latest_samples(None)
    assert list(window.latest) == [("a", "Y"), ("a", "X")]


def test_activity_is_the_latest_event_of_each_server_whatever_the_order_of_arrival() -> None:
    window = Window(T0)
    window.add(Event(**event(server="a", component="Disk", timestamp=T0 + 30, active=False)))
    window.add(Event(**event(server="a", component="Load", timestamp=T0 + 10, active=True)))
    window.add(Event(**event(server="b", service="S", timestamp=T0 + 5, active=True)))
    assert window.activity == {("InboxService", "a"): False, ("S", "b"): True}


def test_a_batch_for_a_minute_the_watermark_has_passed_closes_it_after_its_first_event() -> None:
    events = [Event(**event(server="a", timestamp=T0 + offset)) for offset in (200, 5, 6)]
    closed, late = in_batches(events, 30, [1, 2])
    assert (closed, late) == one_by_one(events, 30)
    assert (closed, late) == ([(T0, 1), (T0 + 180, 1)], [2])


def test_of_two_equally_new_samples_the_later_component_decides_activity() -> None:
    window = Window(T0)
    for component, timestamp, active in [
        ("Disk", T0, False),  # Disk first appears before Load...
        ("Load", T0 + 1, True),
        ("Disk", T0 + 1, False),  # ...so at T0+1 the Load sample counts, though it came first
    ]:
        window.add(
            Event(**event(server="b", component=component, timestamp=timestamp, active=active))
        )
    assert window.activity == {("InboxService", "b"): True}
