//! Windows over event time: Flink's `WindowOperator` with its `EventTimeTrigger`, for an
//! incremental aggregate per key and window.
//!
//! A job implements [`Aggregate`] (the window kind from the node's options, an accumulator
//! per key and window, what to emit for it) and names [`Windowed<A>`] as an operator on a
//! by-key input that carries timestamps and watermarks:
//!
//! - Each record goes to its windows ([`Windows::tumbling`], [`Windows::sliding`],
//!   [`Windows::session`]) and is added to each one's accumulator: a window keeps one
//!   accumulator per key, never the records.
//! - A window fires (its result is emitted, stamped with the window's last millisecond) once
//!   the watermark passes its end, by an event-time timer per key and window end.
//! - With [`allowed_lateness`](Windows::allowed_lateness), a window's state is kept that much
//!   longer, and each record arriving within it fires the window again with the updated
//!   result (Flink's late firing). Then the state is freed.
//! - A record all of whose windows are past that is late: it is dropped and counted in the
//!   subtask's `numLateRecordsDropped` counter, or, with
//!   [`late_records_to`](Windows::late_records_to), sent to that side output instead (Flink's
//!   `sideOutputLateData`).
//!
//! State is the per-key list of open windows and their accumulators ([`Panes`]), kept in
//! [`KeyedState`]: it is checkpointed per key group beside the timers, so windows rescale.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::host::{self, TimeDomain, Timer};
use crate::keyed::{KeyedState, KeyedStore, StateValue};
use crate::{Context, Emitter, Error, Operator, Record, Result, ValueEncoding};

/// Flink's metric of records dropped for being late.
pub const LATE_RECORDS_DROPPED: &str = "numLateRecordsDropped";

/// A window of event time: `start` included, `end` excluded, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// Its last millisecond: the watermark must reach it for the window to fire, and its
    /// results carry it as their timestamp.
    pub fn max_timestamp(&self) -> i64 {
        self.end - 1
    }

    /// Whether the two overlap or touch (session windows merge then, as in Flink).
    fn meets(&self, other: &Window) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Whether `other` lies within this window.
    fn covers(&self, other: &Window) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    fn cover(&self, other: &Window) -> Window {
        Window {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// How records are put into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Windows of `size` back to back, the first starting at the epoch.
    Tumbling { size: i64 },
    /// Windows of `size` starting every `slide`: a record is in `size / slide` of them.
    Sliding { size: i64, slide: i64 },
    /// A window per burst of records less than `gap` apart.
    Session { gap: i64 },
}

/// A window kind, its allowed lateness, and where late records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    kind: Kind,
    allowed_lateness: i64,
    late_output: Option<String>,
}

/// Milliseconds as the signed arithmetic of timestamps wants them.
fn ms(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| {
            Error::msg(format!(
                "a window's {what} must be 1 ms or more, not {value}"
            ))
        })
}

impl Windows {
    /// Flink's `TumblingEventTimeWindows.of(size)`: `[t - t mod size, … + size)`.
    pub fn tumbling(size_ms: u64) -> Result<Self> {
        Ok(Self::of(Kind::Tumbling {
            size: ms(size_ms, "size")?,
        }))
    }

    /// Flink's `SlidingEventTimeWindows.of(size, slide)`, for a slide up to the size (Flink
    /// also takes a longer slide, leaving gaps between windows; Cairn refuses it).
    pub fn sliding(size_ms: u64, slide_ms: u64) -> Result<Self> {
        let (size, slide) = (ms(size_ms, "size")?, ms(slide_ms, "slide")?);
        if slide > size {
            return Err(Error::msg(format!(
                "a sliding window's slide ({slide} ms) cannot be longer than its size ({size} ms)"
            )));
        }
        Ok(Self::of(Kind::Sliding { size, slide }))
    }

    /// Flink's `EventTimeSessionWindows.withGap(gap)`: needs [`Aggregate::merge`].
    pub fn session(gap_ms: u64) -> Result<Self> {
        Ok(Self::of(Kind::Session {
            gap: ms(gap_ms, "gap")?,
        }))
    }

    fn of(kind: Kind) -> Self {
        Windows {
            kind,
            allowed_lateness: 0,
            late_output: None,
        }
    }

    /// Flink's `allowedLateness`: keeps each window `ms` past its end, firing it again for
    /// every record that arrives in that time. Default 0.
    pub fn allowed_lateness(self, ms: u64) -> Self {
        Windows {
            allowed_lateness: i64::try_from(ms).unwrap_or(i64::MAX),
            ..self
        }
    }

    /// Flink's `sideOutputLateData`: late records go to side output `name` as they came,
    /// instead of being dropped.
    pub fn late_records_to(self, name: impl Into<String>) -> Self {
        Windows {
            late_output: Some(name.into()),
            ..self
        }
    }

    /// Replaces `windows` with the windows a record at `timestamp` belongs to.
    fn assign(&self, timestamp: i64, windows: &mut Vec<Window>) {
        let window = |start: i64, size: i64| Window {
            start,
            end: start.saturating_add(size),
        };
        // Saturating: a window reaching below the smallest timestamp starts there.
        let start_of = |size: i64| timestamp.saturating_sub(timestamp.rem_euclid(size));
        windows.clear();
        match self.kind {
            Kind::Tumbling { size } => windows.push(window(start_of(size), size)),
            Kind::Sliding { size, slide } => {
                let first = timestamp.saturating_sub(size);
                let mut start = start_of(slide);
                loop {
                    windows.push(window(start, size));
                    match start.checked_sub(slide) {
                        Some(earlier) if earlier > first => start = earlier,
                        _ => break,
                    }
                }
            }
            Kind::Session { gap } => windows.push(window(timestamp, gap)),
        }
    }

    /// When the state of `window` is freed: its end plus the allowed lateness.
    fn cleanup_time(&self, window: &Window) -> i64 {
        window.max_timestamp().saturating_add(self.allowed_lateness)
    }

    /// Whether `window` is past its allowed lateness at `watermark` (Flink's `isWindowLate`).
    fn is_late(&self, window: &Window, watermark: i64) -> bool {
        self.cleanup_time(window) <= watermark
    }
}

/// An aggregate per key and window, computed incrementally (Flink's `AggregateFunction`
/// with a `ProcessWindowFunction` for the result).
pub trait Aggregate: Default + 'static {
    /// What a window keeps per key: serialised with serde ([postcard]) in the keyed state.
    type Acc: Default + Serialize + DeserializeOwned;

    /// The windows, from the operator's context (its node's options, set in `describe`).
    fn windows(&self, ctx: &Context) -> Result<Windows>;

    /// Adds a record to a window's accumulator.
    fn add(&self, acc: &mut Self::Acc, record: &Record<'_>) -> Result<()>;

    /// Merges `other` into `acc` when session windows merge.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) -> Result<()> {
        let _ = (acc, other);
        Err(Error::msg(
            "session windows merge accumulators: implement Aggregate::merge",
        ))
    }

    /// Emits the result of `window` for `key` (every record emitted gets the window's last
    /// millisecond as its timestamp).
    fn emit(&self, key: &[u8], window: &Window, acc: &Self::Acc, out: &mut Emitter) -> Result<()>;
}

/// The open windows of one key and their accumulators, ordered by window.
#[derive(Debug, Serialize, Deserialize)]
pub struct Panes<A>(Vec<(Window, A)>);

impl<A> Default for Panes<A> {
    fn default() -> Self {
        Panes(Vec::new())
    }
}

impl<A: Serialize + DeserializeOwned + 'static> StateValue for Panes<A> {
    const ENCODING: ValueEncoding = ValueEncoding::Bytes;

    fn encode(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail; an accumulator whose own Serialize fails is a bug
        // of the job, which must not be checkpointed as if nothing were wrong.
        *out = postcard::to_extend(self, std::mem::take(out)).unwrap_or_else(|e| {
            panic!("cannot encode a key's windows (Aggregate::Acc's Serialize failed): {e}")
        });
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        postcard::from_bytes(bytes)
            .map_err(|e| Error::msg(format!("cannot decode a key's windows: {e}")))
    }
}

/// The window operator for aggregate `A`: name it in [`Job::operator`](crate::Job::operator)
/// as `operator::<Windowed<MyAggregate>>()`, on a by-key input.
#[derive(Default, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Windowed<A: Aggregate> {
    #[serde(skip)]
    aggregate: A,
    #[serde(skip)]
    windows: Option<Windows>,
    panes: KeyedState<Panes<A::Acc>>,
    /// The windows of the record being processed: reused, so that a record allocates none.
    #[serde(skip)]
    assigned: Vec<Window>,
}

impl<A: Aggregate> Windowed<A> {
    fn windows(&self) -> Result<&Windows> {
        self.windows
            .as_ref()
            .ok_or_else(|| Error::msg("the window operator was not opened"))
    }

    /// Emits `window`'s result for `key`, stamped with the window's last millisecond.
    fn fire(&self, key: &[u8], window: &Window, acc: &A::Acc, out: &mut Emitter) -> Result<()> {
        let first = out.len();
        self.aggregate.emit(key, window, acc, out)?;
        out.set_timestamps_from(first, window.max_timestamp());
        Ok(())
    }

    /// Registers the timers a new `window` of `key` needs at `watermark`: when it fires
    /// (unless the watermark is past that: it fires at once) and when its state goes.
    /// Timers are never deleted: a timer is a key and a timestamp, which other windows of the
    /// key may share, and one whose window merged away finds nothing to do.
    fn register(&self, key: &[u8], window: &Window, watermark: i64) -> Result<()> {
        let (fire, cleanup) = (window.max_timestamp(), self.windows()?.cleanup_time(window));
        if fire > watermark {
            host::register_timer(TimeDomain::EventTime, key, fire)?;
        }
        if cleanup != fire {
            host::register_timer(TimeDomain::EventTime, key, cleanup)?;
        }
        Ok(())
    }

    /// The pane of `window` in `panes` (for session windows, merged), and whether it is new
    /// (its timers are not set).
    fn pane(&self, panes: &mut Panes<A::Acc>, window: Window) -> Result<(usize, bool)> {
        if matches!(self.windows()?.kind, Kind::Session { .. }) {
            return self.merge_into(panes, window);
        }
        Ok(match panes.0.binary_search_by_key(&window, |(w, _)| *w) {
            Ok(i) => (i, false),
            Err(i) => {
                panes.0.insert(i, (window, A::Acc::default()));
                (i, true)
            }
        })
    }

    /// Merges session window `window` with every window of `panes` it meets, directly or
    /// through others, into one pane; returns its index and whether it is a new window.
    /// (Windows in `panes` never meet each other, so the merged window is an old one only
    /// when `window` lies within it.)
    fn merge_into(&self, panes: &mut Panes<A::Acc>, window: Window) -> Result<(usize, bool)> {
        let mut merged = window;
        let mut acc: Option<A::Acc> = None;
        let mut new = true;
        let mut rest = std::mem::take(&mut panes.0);
        while let Some(i) = rest.iter().position(|(w, _)| w.meets(&merged)) {
            let (w, a) = rest.remove(i);
            new &= !w.covers(&merged);
            merged = merged.cover(&w);
            acc = Some(match acc {
                None => a,
                Some(mut acc) => {
                    self.aggregate.merge(&mut acc, a)?;
                    acc
                }
            });
        }
        let i = rest.partition_point(|(w, _)| *w < merged);
        rest.insert(i, (merged, acc.unwrap_or_default()));
        panes.0 = rest;
        Ok((i, new))
    }

    /// Adds `record` to its windows `assigned` at `watermark` (a session window merged with
    /// the key's open ones first, as Flink merges before it checks lateness); a record none
    /// of whose windows is left open is late.
    fn add(
        &mut self,
        record: &Record<'_>,
        assigned: &[Window],
        watermark: i64,
        out: &mut Emitter,
    ) -> Result<()> {
        let key = record.key().unwrap_or_default();
        let mut panes = self.panes.get(record)?.unwrap_or_default();
        let mut added = false;
        for &window in assigned {
            let (i, new) = self.pane(&mut panes, window)?;
            if self.windows()?.is_late(&panes.0[i].0, watermark) {
                // Only a new window can be late: an open one's cleanup timer would have
                // fired before the watermark got here.
                panes.0.remove(i);
                continue;
            }
            added = true;
            let (window, acc) = &mut panes.0[i];
            self.aggregate.add(acc, record)?;
            if new {
                self.register(key, window, watermark)?;
            }
            if window.max_timestamp() <= watermark {
                // Within the allowed lateness of a window that fired: fire it again.
                self.fire(key, window, acc, out)?;
            }
        }
        if !added {
            return self.late(record);
        }
        self.panes.insert(record, panes)
    }

    /// A record behind every window it could be in: dropped and counted, or sent on.
    fn late(&self, record: &Record<'_>) -> Result<()> {
        match &self.windows()?.late_output {
            Some(name) => {
                let mut batch = Emitter::default();
                batch.push(record);
                host::emit_to(name, batch.take())
            }
            None => host::counter_add(LATE_RECORDS_DROPPED, 1),
        }
    }
}

impl<A: Aggregate> Operator for Windowed<A> {
    fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
        Some(&mut self.panes)
    }

    fn open(&mut self, ctx: &Context) -> Result<()> {
        self.windows = Some(self.aggregate.windows(ctx)?);
        Ok(())
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let timestamp = record.timestamp().ok_or_else(|| {
            Error::msg(
                "a record without a timestamp reached an event-time window: give its source a \
                 timestamp per record (and a watermark strategy)",
            )
        })?;
        let watermark = host::current_watermark();
        let mut assigned = std::mem::take(&mut self.assigned);
        self.windows()?.assign(timestamp, &mut assigned);
        let result = self.add(&record, &assigned, watermark, out);
        self.assigned = assigned;
        result
    }

    fn on_timer(&mut self, timer: Timer<'_>, out: &mut Emitter) -> Result<()> {
        if timer.domain() != TimeDomain::EventTime {
            return Ok(());
        }
        let record = timer.record();
        let Some(mut panes) = self.panes.get(record)? else {
            return Ok(());
        };
        let at = timer.timestamp();
        for (window, acc) in &panes.0 {
            if window.max_timestamp() == at {
                self.fire(timer.key(), window, acc, out)?;
            }
        }
        let windows = self.windows()?;
        panes.0.retain(|(w, _)| windows.cleanup_time(w) > at);
        if panes.0.is_empty() {
            self.panes.remove(record)?;
        } else {
            self.panes.insert(record, panes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{Harness, TestRecord};
    use crate::{Args, DynOperator, Job, JobGraph, operator};

    /// Counts records per key and window; the window kind from the node's options.
    #[derive(Default)]
    struct Count;

    impl Aggregate for Count {
        type Acc = u64;

        fn windows(&self, ctx: &Context) -> Result<Windows> {
            let n =
                |key: &str| -> Result<u64> { Ok(ctx.option(key).unwrap_or("0").parse::<u64>()?) };
            let windows = match ctx.option("kind") {
                Some("sliding") => Windows::sliding(n("size")?, n("slide")?)?,
                Some("session") => Windows::session(n("gap")?)?,
                _ => Windows::tumbling(n("size")?)?,
            };
            let windows = windows.allowed_lateness(n("lateness")?);
            Ok(match ctx.option("late") {
                Some(name) => windows.late_records_to(name),
                None => windows,
            })
        }

        fn add(&self, acc: &mut u64, _record: &Record<'_>) -> Result<()> {
            *acc += 1;
            Ok(())
        }

        fn merge(&self, acc: &mut u64, other: u64) -> Result<()> {
            *acc += other;
            Ok(())
        }

        fn emit(&self, key: &[u8], window: &Window, acc: &u64, out: &mut Emitter) -> Result<()> {
            let key = std::str::from_utf8(key)?;
            out.emit_keyed(key, format!("{}-{}:{acc}", window.start, window.end));
            Ok(())
        }
    }

    struct CountJob;

    impl Job for CountJob {
        fn describe(_args: &Args) -> Result<JobGraph> {
            Ok(JobGraph::new("count"))
        }

        fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
            (name == "count")
                .then(|| operator::<Windowed<Count>>())
                .flatten()
        }
    }

    fn harness(options: &[(&str, &str)]) -> Harness {
        Harness::open::<CountJob>("count", options).unwrap()
    }

    fn shown(records: Vec<TestRecord>) -> Vec<String> {
        records
            .into_iter()
            .map(|(k, v, t)| format!("{k} {v} @{}", t.unwrap()))
            .collect()
    }

    fn starts(windows: &Windows, at: i64) -> Vec<(i64, i64)> {
        let mut assigned = vec![Window { start: 0, end: 0 }];
        windows.assign(at, &mut assigned);
        assigned.iter().map(|w| (w.start, w.end)).collect()
    }

    #[test]
    fn windows_are_assigned_as_flink_assigns_them() {
        let tumbling = Windows::tumbling(10).unwrap();
        assert_eq!(starts(&tumbling, 0), [(0, 10)]);
        assert_eq!(starts(&tumbling, 19), [(10, 20)]);
        assert_eq!(starts(&tumbling, -1), [(-10, 0)]);
        let sliding = Windows::sliding(10, 5).unwrap();
        assert_eq!(starts(&sliding, 12), [(10, 20), (5, 15)]);
        assert_eq!(starts(&sliding, 10), [(10, 20), (5, 15)]);
        assert_eq!(starts(&Windows::session(3).unwrap(), 7), [(7, 10)]);
        assert!(Windows::sliding(5, 10).is_err());
        assert!(Windows::tumbling(0).is_err());
    }

    #[test]
    fn lateness_is_measured_from_a_windows_last_millisecond() {
        let w = Window { start: 0, end: 10 };
        let windows = Windows::tumbling(10).unwrap();
        assert!(!windows.is_late(&w, 8));
        assert!(windows.is_late(&w, 9));
        let lenient = windows.allowed_lateness(5);
        assert!(!lenient.is_late(&w, 13));
        assert!(lenient.is_late(&w, 14));
    }

    #[test]
    fn panes_round_trip_through_their_state_encoding() {
        let panes = Panes(vec![(Window { start: 0, end: 10 }, 3u64)]);
        let mut bytes = b"junk".to_vec();
        bytes.clear();
        panes.encode(&mut bytes);
        let back = Panes::<u64>::decode(&bytes).unwrap();
        assert_eq!(back.0, panes.0);
        assert!(Panes::<u64>::decode(&[0xff]).is_err());
    }

    #[test]
    fn a_tumbling_window_fires_once_the_watermark_passes_its_end_and_is_freed() {
        let mut h = harness(&[("size", "10")]);
        let none = h
            .process(&[("a", "", Some(1)), ("a", "", Some(5)), ("b", "", Some(12))])
            .unwrap();
        assert!(none.is_empty());
        assert!(h.advance_watermark(8).unwrap().is_empty());
        assert_eq!(shown(h.advance_watermark(9).unwrap()), ["a 0-10:2 @9"]);
        assert_eq!(shown(h.finish().unwrap()), ["b 10-20:1 @19"]);
        assert_eq!(h.timers(), 0);
        assert!(h.snapshot().unwrap().keyed.is_empty(), "every window freed");
    }

    #[test]
    fn late_records_are_counted_or_sent_to_the_side_output() {
        let mut h = harness(&[("size", "10")]);
        h.process(&[("a", "x", Some(1))]).unwrap();
        h.advance_watermark(9).unwrap();
        h.process(&[("a", "late", Some(3)), ("a", "on time", Some(10))])
            .unwrap();
        assert_eq!(h.counter(LATE_RECORDS_DROPPED), 1);
        assert_eq!(shown(h.finish().unwrap()), ["a 10-20:1 @19"]);

        let mut h = harness(&[("size", "10"), ("late", "late")]);
        h.advance_watermark(20).unwrap();
        h.process(&[("a", "behind", Some(3))]).unwrap();
        assert_eq!(h.counter(LATE_RECORDS_DROPPED), 0);
        assert_eq!(
            h.side_output("late"),
            [("a".to_owned(), "behind".to_owned(), Some(3))]
        );
    }

    #[test]
    fn within_the_allowed_lateness_a_window_fires_again_then_goes() {
        let mut h = harness(&[("size", "10"), ("lateness", "5")]);
        h.process(&[("a", "", Some(1))]).unwrap();
        assert_eq!(shown(h.advance_watermark(9).unwrap()), ["a 0-10:1 @9"]);
        // Late, but within 5 ms of the window's end: fired again at once, updated.
        let again = h.process(&[("a", "", Some(2))]).unwrap();
        assert_eq!(shown(again), ["a 0-10:2 @9"]);
        assert!(h.advance_watermark(13).unwrap().is_empty());
        assert_eq!(h.timers(), 1, "the cleanup timer at 14");
        h.advance_watermark(14).unwrap();
        assert_eq!(h.timers(), 0);
        assert!(h.snapshot().unwrap().keyed.is_empty());
        h.process(&[("a", "", Some(3))]).unwrap();
        assert_eq!(h.counter(LATE_RECORDS_DROPPED), 1);
    }

    #[test]
    fn a_record_counts_in_each_sliding_window_it_falls_in() {
        let mut h = harness(&[("kind", "sliding"), ("size", "10"), ("slide", "5")]);
        h.process(&[("a", "", Some(7)), ("a", "", Some(12))])
            .unwrap();
        assert_eq!(
            shown(h.finish().unwrap()),
            ["a 0-10:1 @9", "a 5-15:2 @14", "a 10-20:1 @19"]
        );
    }

    #[test]
    fn session_windows_merge_records_closer_than_the_gap() {
        let mut h = harness(&[("kind", "session"), ("gap", "3")]);
        h.process(&[("a", "", Some(1)), ("a", "", Some(6)), ("b", "", Some(1))])
            .unwrap();
        // [1,4) and [6,9): a record at 4 bridges them into [1,9).
        h.process(&[("a", "", Some(4)), ("a", "", Some(20))])
            .unwrap();
        assert_eq!(
            shown(h.finish().unwrap()),
            ["b 1-4:1 @3", "a 1-9:3 @8", "a 20-23:1 @22"]
        );
        assert_eq!(h.timers(), 0, "every timer fired");
    }

    /// A merged-away session window's timers may be another window's too: they stay, and
    /// every window still fires once and is freed.
    #[test]
    fn merging_sessions_keeps_the_timers_other_windows_share() {
        let mut h = harness(&[("kind", "session"), ("gap", "3"), ("lateness", "8")]);
        // [0,3) fires at 2 and goes at 10; [8,11) fires at 10; 2 merges [0,3) into [0,5).
        h.process(&[("a", "", Some(0)), ("a", "", Some(8))])
            .unwrap();
        h.process(&[("a", "", Some(2))]).unwrap();
        assert_eq!(shown(h.advance_watermark(4).unwrap()), ["a 0-5:2 @4"]);
        assert_eq!(shown(h.advance_watermark(10).unwrap()), ["a 8-11:1 @10"]);
        h.advance_watermark(18).unwrap();
        assert!(h.snapshot().unwrap().keyed.is_empty(), "both windows freed");
    }

    /// As Flink, a session window merges before its lateness is judged: a record whose own
    /// window is late still counts when that window meets an open one.
    #[test]
    fn a_late_session_record_that_meets_an_open_window_is_merged_in() {
        let mut h = harness(&[("kind", "session"), ("gap", "10")]);
        h.process(&[("a", "", Some(100))]).unwrap();
        h.advance_watermark(105).unwrap();
        h.process(&[("a", "", Some(95)), ("a", "", Some(80))])
            .unwrap();
        assert_eq!(h.counter(LATE_RECORDS_DROPPED), 1, "80's window meets none");
        assert_eq!(shown(h.finish().unwrap()), ["a 95-110:2 @109"]);
    }

    #[test]
    fn windows_near_the_smallest_timestamp_do_not_overflow() {
        let min = i64::MIN + 1;
        assert_eq!(starts(&Windows::tumbling(10).unwrap(), min)[0].0, i64::MIN);
        let sliding = starts(&Windows::sliding(10, 5).unwrap(), min);
        assert!(!sliding.is_empty() && sliding.iter().all(|&(s, e)| s <= min && min < e));
    }

    #[test]
    fn windows_and_their_timers_survive_a_restore() {
        let options = [("size", "10")];
        let mut h = harness(&options);
        h.process(&[("a", "", Some(1)), ("b", "", Some(11))])
            .unwrap();
        let mut restored = h.restore_into::<CountJob>("count", &options).unwrap();
        restored.process(&[("a", "", Some(2))]).unwrap();
        assert_eq!(
            shown(restored.finish().unwrap()),
            ["a 0-10:2 @9", "b 10-20:1 @19"]
        );
    }

    proptest! {
        /// Records out of order by at most the bound, with the watermark trailing the
        /// highest timestamp by the bound (as the host's strategy makes it): every record
        /// counts, in exactly its window, whatever the order and the watermark steps.
        #[test]
        fn tumbling_counts_match_an_oracle(
            records in proptest::collection::vec((0u8..5, 0i64..200), 0..200),
            bound in 0i64..30,
            step in 1usize..20,
        ) {
            // Timestamps within `bound` of an increasing sequence: never more than `bound`
            // behind the highest before them.
            let stamped: Vec<(String, i64)> = records
                .iter()
                .enumerate()
                .map(|(i, &(k, jitter))| (format!("k{k}"), i as i64 * 3 + jitter % (bound + 1)))
                .collect();
            let mut expected: std::collections::BTreeMap<(String, i64), u64> = Default::default();
            for (k, t) in &stamped {
                *expected.entry((k.clone(), t - t % 10)).or_default() += 1;
            }
            let mut h = harness(&[("size", "10")]);
            let mut got: std::collections::BTreeMap<(String, i64), u64> = Default::default();
            let mut collect = |out: Vec<TestRecord>| {
                for (k, v, _) in out {
                    let (window, n) = v.split_once(':').unwrap();
                    let start: i64 = window.split_once('-').unwrap().0.parse().unwrap();
                    assert!(got.insert((k, start), n.parse().unwrap()).is_none(), "fired twice");
                }
            };
            let mut highest = i64::MIN;
            for chunk in stamped.chunks(step) {
                let batch: Vec<(&str, &str, Option<i64>)> =
                    chunk.iter().map(|(k, t)| (k.as_str(), "", Some(*t))).collect();
                collect(h.process(&batch).unwrap());
                highest = highest.max(chunk.iter().map(|(_, t)| *t).max().unwrap());
                collect(h.advance_watermark(highest - bound - 1).unwrap());
            }
            collect(h.finish().unwrap());
            prop_assert_eq!(h.counter(LATE_RECORDS_DROPPED), 0);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(h.timers(), 0);
        }
    }
}
