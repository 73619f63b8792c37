"""Timers, side outputs and counters natively: the SDK's dispatch of ``on-timer`` and what
operators get from the host (:mod:`cairn_sdk.host`), through the test harness and without a
host."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import cairn_sdk as cairn  # noqa: E402
from cairn_sdk import (  # noqa: E402
    NO_TIMESTAMP,
    Context,
    Emitter,
    Error,
    KeyedState,
    Operator,
    OperatorInstance,
    PackedBatch,
    TimeDomain,
    Timer,
    host,
)
from cairn_sdk.testing import Harness, key_group  # noqa: E402


class Timeouts(Operator):
    """Per key: a processing-time timer 50 ms after its first record and an event-time timer
    at each record's timestamp; emits the key's record count when either fires."""

    def __init__(self):
        self.seen = KeyedState()

    def process(self, record, out):
        n = self.seen.get(record, 0)
        if n == 0:
            host.register_timer(
                TimeDomain.PROCESSING_TIME, record.key, host.current_processing_time() + 50
            )
        self.seen.set(record, n + 1)
        host.register_timer(TimeDomain.EVENT_TIME, record.key, record.timestamp)
        if record.value == b"forget":
            host.delete_timer(TimeDomain.EVENT_TIME, record.key, record.timestamp)
        if record.value == b"aside":
            host.emit_to("aside", PackedBatch.of([record]))
            host.counter_add("asides")

    def on_timer(self, timer, out):
        kind = "event" if timer.domain is TimeDomain.EVENT_TIME else "clock"
        out.emit(
            b"%s %d" % (kind.encode(), self.seen.get(timer)),
            key=timer.key,
            timestamp=timer.timestamp,
        )


class Plain(Operator):
    def process(self, record, out):
        out.push(record)


class TimersJob(cairn.Job):
    operators = {"timeouts": Timeouts, "plain": Plain}


class TimersTest(unittest.TestCase):
    def test_timers_fire_in_order_with_their_keys_state_at_hand(self):
        h = Harness.open(TimersJob(), "timeouts")
        h.process([("b", "", 20), ("a", "", 20), ("a", "", 10), ("a", "", 10)])
        self.assertEqual(h.timers(), 5, "a registered timer registered again is one timer")
        self.assertEqual(h.advance_watermark(15), [(b"a", b"event 3", 10)])
        self.assertEqual(h.advance_watermark(20), [(b"a", b"event 3", 20), (b"b", b"event 1", 20)])
        self.assertEqual(h.advance_processing_time(49), [])
        self.assertEqual(
            h.advance_processing_time(50), [(b"a", b"clock 3", 50), (b"b", b"clock 1", 50)]
        )
        self.assertEqual(h.timers(), 0)

    def test_deleted_timers_do_not_fire(self):
        h = Harness.open(TimersJob(), "timeouts")
        h.process([("a", "forget", 5)])
        self.assertEqual(h.advance_watermark(100), [])

    def test_side_outputs_and_counters_reach_the_host(self):
        h = Harness.open(TimersJob(), "timeouts")
        self.assertEqual(h.process([("a", "aside", 5), ("b", "", 6), ("c", "aside", None)])[:0], [])
        self.assertEqual(h.side_output("aside"), [(b"a", b"aside", 5), (b"c", b"aside", None)])
        self.assertEqual(h.counter("asides"), 2)
        self.assertEqual(h.counter("never"), 0)

    def test_an_operator_without_on_timer_says_so(self):
        h = Harness.open(TimersJob(), "plain")
        op = h.instance
        with self.assertRaisesRegex(
            Error, r"a timer fired \(key b'k', event-time 7\), but Plain does not implement"
        ):
            op.on_timer(
                TimeDomain.EVENT_TIME,
                PackedBatch.of([Timer(TimeDomain.EVENT_TIME, b"k", 7, 1)]),
                [1],
            )

    def test_on_timer_checks_the_hosts_batch(self):
        ctx = Context(key_group=key_group)
        op = OperatorInstance.open(TimersJob(), ctx, "timeouts")
        timers = Emitter()
        timers.emit(b"", b"a", 5)
        batch = timers.take()
        with self.assertRaisesRegex(Error, "each needs a timestamp and a key group"):
            op.on_timer(TimeDomain.EVENT_TIME, batch, [])
        with self.assertRaisesRegex(Error, "each needs a timestamp and a key group"):
            op.on_timer(TimeDomain.EVENT_TIME, PackedBatch(b"a", [1, 1], []), [0])
        with self.assertRaisesRegex(Error, "fired a timer without a timestamp"):
            op.on_timer(TimeDomain.EVENT_TIME, PackedBatch(b"a", [1, 1], [NO_TIMESTAMP]), [0])

    def test_a_timer_is_a_record_of_its_key(self):
        timer = Timer(TimeDomain.PROCESSING_TIME, b"k", 9, 3)
        self.assertEqual(
            (timer.key, timer.value, timer.timestamp, timer.key_group), (b"k", b"", 9, 3)
        )
        state = KeyedState()
        state.open(range(128), key_group)
        state.set(timer, "v")
        self.assertEqual(state.get(timer), "v")


class Watermarks(Operator):
    def process(self, record, out):
        out.emit(b"%d" % host.current_watermark())


class CountingHost(host.Host):
    """A host whose watermark moves each time it is asked."""

    def __init__(self):
        self.asked = 0

    def current_watermark(self):
        self.asked += 1
        return self.asked * 100


class WatermarkTest(unittest.TestCase):
    def test_the_watermark_is_asked_once_per_call(self):
        counting = CountingHost()
        before = host.install(counting)
        try:
            op = OperatorInstance(Watermarks(), Context())
            batch = PackedBatch.of([cairn.Record(b"", b"")] * 3)
            self.assertEqual([r.value for r in op.process(0, batch).records()], [b"100"] * 3)
            self.assertEqual([r.value for r in op.process(0, batch).records()], [b"200"] * 3)
            self.assertEqual(counting.asked, 2)
        finally:
            host.install(before)


class NoHostTest(unittest.TestCase):
    def test_without_a_host_the_calls_say_what_is_missing(self):
        with self.assertRaisesRegex(Error, "no host: timers, side outputs and counters"):
            host.register_timer(TimeDomain.EVENT_TIME, b"k", 1)
        with self.assertRaisesRegex(Error, "no host"):
            host.counter_add("n", 1)
        with self.assertRaisesRegex(Error, "no host"):
            host.emit_to("side", PackedBatch.of([cairn.Record(b"k", b"v")]))
        host.emit_to("side", PackedBatch())  # nothing to send: no call
        self.assertEqual(host.current_watermark(), NO_TIMESTAMP)
        self.assertEqual(host.current_processing_time(), 0)

    def test_install_returns_the_host_before(self):
        mine = host.Host()
        self.assertIsNone(host.install(mine))
        self.assertIs(host.install(None), mine)


if __name__ == "__main__":
    unittest.main()
