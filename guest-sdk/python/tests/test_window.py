"""Windows natively, through the test harness: assignment, firing, lateness, freeing, merging,
restores, and an oracle over random out-of-order input."""

import os
import random
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import cairn_sdk as cairn  # noqa: E402
from cairn_sdk import (  # noqa: E402
    LATE_RECORDS_DROPPED,
    Aggregate,
    Error,
    Window,
    Windowed,
    Windows,
)
from cairn_sdk.testing import Harness  # noqa: E402
from cairn_sdk.window import PANES  # noqa: E402


class Count(Aggregate):
    """Counts records per key and window; the window kind from the node's options."""

    def windows(self, ctx):
        def n(key):
            return int(ctx.option(key, "0"))

        kind = ctx.option("kind")
        if kind == "sliding":
            windows = Windows.sliding(n("size"), n("slide"))
        elif kind == "session":
            windows = Windows.session(n("gap"))
        else:
            windows = Windows.tumbling(n("size"))
        windows = windows.allowed_lateness(n("lateness"))
        late = ctx.option("late")
        return windows if late is None else windows.late_records_to(late)

    def create_accumulator(self):
        return 0

    def add(self, count, record):
        return count + 1

    def merge(self, count, other):
        return count + other

    def emit(self, key, window, count, out):
        out.emit(b"%d-%d:%d" % (window.start, window.end, count), key=key)


class CountJob(cairn.Job):
    operators = {"count": Windowed.of(Count)}


def harness(**options):
    return Harness.open(CountJob(), "count", [(k, str(v)) for k, v in options.items()])


def shown(records):
    return ["%s %s @%d" % (k.decode(), v.decode(), t) for k, v, t in records]


def starts(windows, at):
    return [(w.start, w.end) for w in windows.assign(at)]


class WindowsTest(unittest.TestCase):
    def test_windows_are_assigned_as_flink_assigns_them(self):
        tumbling = Windows.tumbling(10)
        self.assertEqual(starts(tumbling, 0), [(0, 10)])
        self.assertEqual(starts(tumbling, 19), [(10, 20)])
        self.assertEqual(starts(tumbling, -1), [(-10, 0)])
        sliding = Windows.sliding(10, 5)
        self.assertEqual(starts(sliding, 12), [(10, 20), (5, 15)])
        self.assertEqual(starts(sliding, 10), [(10, 20), (5, 15)])
        self.assertEqual(starts(sliding, -3), [(-5, 5), (-10, 0)])
        self.assertEqual(starts(Windows.session(3), 7), [(7, 10)])
        smallest = -(2**63)
        self.assertEqual(starts(tumbling, smallest + 1), [(smallest, smallest + 10)])
        self.assertEqual(starts(sliding, smallest + 1), [(smallest, smallest + 10)])
        self.assertEqual(
            starts(sliding, smallest + 6),
            [(smallest + 3, smallest + 13), (smallest, smallest + 10)],
        )
        with self.assertRaisesRegex(Error, r"slide \(10 ms\) cannot be longer than its size"):
            Windows.sliding(5, 10)
        with self.assertRaisesRegex(Error, "size must be 1 ms or more, not 0"):
            Windows.tumbling(0)
        with self.assertRaisesRegex(Error, "allowed lateness must be 0 ms or more"):
            Windows.tumbling(1).allowed_lateness(-1)

    def test_lateness_is_measured_from_a_windows_last_millisecond(self):
        w = Window(0, 10)
        self.assertEqual(w.max_timestamp, 9)
        windows = Windows.tumbling(10)
        self.assertFalse(windows.is_late(w, 8))
        self.assertTrue(windows.is_late(w, 9))
        lenient = windows.allowed_lateness(5)
        self.assertFalse(lenient.is_late(w, 13))
        self.assertTrue(lenient.is_late(w, 14))
        self.assertEqual(lenient.cleanup_time(w), 14)
        self.assertEqual(windows.allowed_lateness(2**64).cleanup_time(w), 2**63 - 1)

    def test_panes_round_trip_through_their_state_encoding(self):
        panes = [[Window(0, 10), 3], [Window(10, 20), {"any": "picklable"}]]
        self.assertEqual(PANES.decode(PANES.encode(panes)), panes)
        with self.assertRaisesRegex(Error, "cannot decode a key's windows"):
            PANES.decode(b"\xff")

    def test_the_operator_needs_an_aggregate(self):
        with self.assertRaisesRegex(TypeError, "needs a cairn_sdk.Aggregate subclass"):
            Windowed.of(int)
        with self.assertRaisesRegex(Error, r"Windowed.of\(MyAggregate\)"):
            Windowed()


class WindowedTest(unittest.TestCase):
    def test_a_tumbling_window_fires_once_the_watermark_passes_its_end_and_is_freed(self):
        h = harness(size=10)
        self.assertEqual(h.process([("a", "", 1), ("a", "", 5), ("b", "", 12)]), [])
        self.assertEqual(h.timers(), 2, "one timer per key and window (fire = cleanup)")
        self.assertEqual(h.advance_watermark(8), [])
        self.assertEqual(shown(h.advance_watermark(9)), ["a 0-10:2 @9"])
        self.assertEqual(shown(h.finish()), ["b 10-20:1 @19"])
        self.assertEqual(h.timers(), 0)
        self.assertEqual(h.snapshot().keyed, [], "every window freed")
        self.assertEqual(len(h.instance.operator.panes), 0)

    def test_results_take_the_windows_last_millisecond_whatever_the_aggregate_stamps(self):
        class Stamped(Count):
            def emit(self, key, window, count, out):
                out.emit(b"first", key=key, timestamp=123)
                out.emit(b"second", key=key)

        class StampedJob(cairn.Job):
            operators = {"count": Windowed.of(Stamped)}

        h = Harness.open(StampedJob(), "count", [("size", "10")])
        h.process([("a", "", 3)])
        self.assertEqual(h.finish(), [(b"a", b"first", 9), (b"a", b"second", 9)])

    def test_late_records_are_counted_or_sent_to_the_side_output(self):
        h = harness(size=10)
        h.process([("a", "x", 1)])
        h.advance_watermark(9)
        h.process([("a", "late", 3), ("a", "on time", 10)])
        self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 1)
        self.assertEqual(shown(h.finish()), ["a 10-20:1 @19"])

        h = harness(size=10, late="late")
        h.advance_watermark(20)
        h.process([("a", "behind", 3)])
        self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 0)
        self.assertEqual(h.side_output("late"), [(b"a", b"behind", 3)])
        self.assertEqual(h.side_output("late"), [], "taken")
        self.assertEqual(h.snapshot().keyed, [], "a late record opens no window")

    def test_within_the_allowed_lateness_a_window_fires_again_then_goes(self):
        h = harness(size=10, lateness=5)
        h.process([("a", "", 1)])
        self.assertEqual(shown(h.advance_watermark(9)), ["a 0-10:1 @9"])
        # Late, but within 5 ms of the window's end: fired again at once, updated.
        self.assertEqual(shown(h.process([("a", "", 2)])), ["a 0-10:2 @9"])
        self.assertEqual(h.advance_watermark(13), [])
        self.assertEqual(h.timers(), 1, "the cleanup timer at 14")
        h.advance_watermark(14)
        self.assertEqual(h.timers(), 0)
        self.assertEqual(h.snapshot().keyed, [])
        h.process([("a", "", 3)])
        self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 1)

    def test_a_window_opened_within_its_allowed_lateness_fires_at_once_and_only_then(self):
        h = harness(size=10, lateness=5)
        h.advance_watermark(11)
        self.assertEqual(shown(h.process([("a", "", 4)])), ["a 0-10:1 @9"])
        self.assertEqual(h.timers(), 1, "no fire timer in the past: only the cleanup timer")
        self.assertEqual(h.advance_watermark(14), [])
        self.assertEqual(h.timers(), 0)

    def test_a_record_counts_in_each_sliding_window_it_falls_in(self):
        h = harness(kind="sliding", size=10, slide=5)
        h.process([("a", "", 7), ("a", "", 12)])
        self.assertEqual(shown(h.finish()), ["a 0-10:1 @9", "a 5-15:2 @14", "a 10-20:1 @19"])

    def test_session_windows_merge_records_closer_than_the_gap(self):
        h = harness(kind="session", gap=3)
        h.process([("a", "", 1), ("a", "", 6), ("b", "", 1)])
        # [1,4) and [6,9): a record at 4 bridges them into [1,9).
        h.process([("a", "", 4), ("a", "", 20)])
        self.assertEqual(shown(h.finish()), ["b 1-4:1 @3", "a 1-9:3 @8", "a 20-23:1 @22"])
        self.assertEqual(h.timers(), 0)

    def test_merging_sessions_keeps_the_timers_other_windows_share(self):
        """A merged-away session window's timers may be another window's too: they stay, and
        every window still fires once and is freed."""
        h = harness(kind="session", gap=3, lateness=8)
        # [0,3) fires at 2 and goes at 10; [8,11) fires at 10; 2 merges [0,3) into [0,5).
        h.process([("a", "", 0), ("a", "", 8)])
        h.process([("a", "", 2)])
        self.assertEqual(shown(h.advance_watermark(4)), ["a 0-5:2 @4"])
        self.assertEqual(shown(h.advance_watermark(10)), ["a 8-11:1 @10"])
        h.advance_watermark(18)
        self.assertEqual(h.snapshot().keyed, [], "both windows freed")

    def test_a_late_session_record_that_meets_an_open_window_is_merged_in(self):
        """As in Flink, a session window merges before its lateness is judged: a record whose
        own window is late still counts when that window meets an open one."""
        h = harness(kind="session", gap=10)
        h.process([("a", "", 100)])
        h.advance_watermark(105)
        h.process([("a", "", 95), ("a", "", 80)])
        self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 1, "80's window meets none")
        self.assertEqual(shown(h.finish()), ["a 95-110:2 @109"])

    def test_a_record_within_a_session_window_keeps_its_timers(self):
        h = harness(kind="session", gap=10)
        h.process([("a", "", 0), ("a", "", 5)])
        self.assertEqual(h.process([("a", "", 3)]), [])
        # [0,10)'s timer at 9 stays (another window of the key could share it) and finds
        # nothing to fire; [0,15) has its own at 14; 3 within [0,15) registers nothing.
        self.assertEqual(h.timers(), 2)
        self.assertEqual(h.advance_watermark(13), [])
        self.assertEqual(shown(h.advance_watermark(14)), ["a 0-15:3 @14"])
        self.assertEqual(h.timers(), 0)
        self.assertEqual(h.snapshot().keyed, [])

    def test_windows_and_their_timers_survive_a_restore(self):
        options = [("size", "10")]
        h = Harness.open(CountJob(), "count", options)
        h.process([("a", "", 1), ("b", "", 11)])
        restored = h.restore_into(CountJob(), "count", options)
        restored.process([("a", "", 2)])
        self.assertEqual(shown(restored.finish()), ["a 0-10:2 @9", "b 10-20:1 @19"])

    def test_a_record_without_a_timestamp_is_refused(self):
        h = harness(size=10)
        with self.assertRaisesRegex(Error, "without a timestamp reached an event-time window"):
            h.process([("a", "", None)])

    def test_tumbling_and_sliding_counts_match_an_oracle(self):
        """Records out of order by at most the bound, with the watermark trailing the
        highest timestamp by the bound (as the host's strategy makes it): every record
        counts, in exactly its windows, whatever the order and the watermark steps."""
        rng = random.Random(7)
        for _ in range(80):
            bound = rng.randrange(30)
            step = rng.randrange(1, 20)
            size, slide = rng.choice([(10, 10), (10, 5), (12, 4), (9, 2)])
            stamped = [
                ("k%d" % rng.randrange(5), i * 3 + rng.randrange(200) % (bound + 1))
                for i in range(rng.randrange(200))
            ]
            expected = {}
            for k, t in stamped:
                for start in range(t - t % slide, t - size, -slide):
                    expected[(k, start)] = expected.get((k, start), 0) + 1
            h = harness(kind="sliding", size=size, slide=slide)
            got = {}

            def collect(out):
                for k, v, t in out:
                    start, end, n = map(
                        int, re.fullmatch(r"(-?\d+)-(-?\d+):(\d+)", v.decode()).groups()
                    )
                    self.assertEqual((end - start, t), (size, end - 1))
                    entry = (k.decode(), start)
                    self.assertNotIn(entry, got, "fired twice")
                    got[entry] = n

            highest = None
            for i in range(0, len(stamped), step):
                chunk = stamped[i : i + step]
                collect(h.process([(k, "", t) for k, t in chunk]))
                top = max(t for _, t in chunk)
                highest = top if highest is None else max(highest, top)
                collect(h.advance_watermark(highest - bound - 1))
            collect(h.finish())
            self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 0)
            self.assertEqual(got, expected)
            self.assertEqual(h.timers(), 0)
            self.assertEqual(h.snapshot().keyed, [])


if __name__ == "__main__":
    unittest.main()
