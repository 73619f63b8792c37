//! A subtask's input watermark from the watermarks and statuses its input channels deliver
//! (Flink's `StatusWatermarkValve`).
//!
//! The input watermark is the minimum over the channels that are active (not idle) and
//! aligned; it only rises. A channel that turns active again below the input watermark is
//! not aligned: it holds nothing back until it catches up, so one slow or revived channel
//! never moves event time backwards. When every channel is idle, the highest watermark of
//! any channel is let through (nothing else can advance it) and the subtask's input is idle.
//! A channel that ends keeps its last watermark in the minimum: a source ends its stream
//! with [`END_OF_TIME`] when its input is exhausted, and a stream stopped without draining
//! must not release event time after its final barrier.

/// No watermark yet: before every record (Flink's `Long.MIN_VALUE`).
pub(crate) const NO_WATERMARK: i64 = i64::MIN;

/// The end of event time, sent by a source whose input has ended and before a draining
/// stop: everything pending fires (Flink's `MAX_WATERMARK`).
pub(crate) const END_OF_TIME: i64 = i64::MAX;

/// Whether a stream's sender holds event time back (Flink's `WatermarkStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatermarkStatus {
    /// No records for a while: its watermark does not hold back downstream ones.
    Idle,
    Active,
}

/// What an input message changed, in the order to pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The input watermark rose to this.
    Watermark(i64),
    /// The input as a whole turned idle, or active again.
    Status(WatermarkStatus),
}

#[derive(Debug, Clone, Copy)]
struct ChannelTime {
    watermark: i64,
    idle: bool,
    /// Counts in the minimum: not behind the input watermark since it last turned active.
    aligned: bool,
}

/// The input watermark of one subtask over its channels.
#[derive(Debug)]
pub(crate) struct WatermarkValve {
    channels: Vec<ChannelTime>,
    /// The input watermark: the last one passed on, or the floor restored.
    watermark: i64,
    /// Every channel is idle (and this was passed on).
    idle: bool,
}

impl WatermarkValve {
    /// A valve over `channels` channels, none of which has a watermark yet, whose input
    /// watermark starts at `floor` (a restored one; [`NO_WATERMARK`] otherwise) and never
    /// goes below it.
    pub(crate) fn new(channels: usize, floor: i64) -> Self {
        let start = ChannelTime {
            watermark: NO_WATERMARK,
            idle: false,
            aligned: true,
        };
        WatermarkValve {
            channels: vec![start; channels],
            watermark: floor,
            idle: false,
        }
    }

    /// The input watermark.
    #[cfg(test)]
    pub(crate) fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Channel `channel` delivered watermark `watermark`. A watermark from an idle channel
    /// turns it active first.
    pub(crate) fn on_watermark(&mut self, channel: usize, watermark: i64) -> Vec<Change> {
        let mut changes = self.on_status(channel, WatermarkStatus::Active);
        let time = &mut self.channels[channel];
        if watermark > time.watermark {
            time.watermark = watermark;
            if watermark >= self.watermark {
                time.aligned = true;
            }
            changes.extend(self.advance());
        }
        changes
    }

    /// Channel `channel` turned idle or active.
    pub(crate) fn on_status(&mut self, channel: usize, status: WatermarkStatus) -> Vec<Change> {
        let time = &mut self.channels[channel];
        let mut changes = Vec::new();
        match status {
            WatermarkStatus::Idle if !time.idle => {
                time.idle = true;
                if self.channels.iter().all(|c| c.idle) {
                    let highest = self.channels.iter().map(|c| c.watermark).max();
                    changes.extend(self.raise(highest));
                    self.idle = true;
                    changes.push(Change::Status(WatermarkStatus::Idle));
                } else {
                    changes.extend(self.advance());
                }
            }
            WatermarkStatus::Active if time.idle => {
                time.idle = false;
                time.aligned = time.watermark >= self.watermark;
                if self.idle {
                    self.idle = false;
                    changes.push(Change::Status(WatermarkStatus::Active));
                }
            }
            WatermarkStatus::Idle | WatermarkStatus::Active => {}
        }
        changes
    }

    /// The minimum over active, aligned channels, if it is above the input watermark.
    fn advance(&mut self) -> Option<Change> {
        let lowest = self
            .channels
            .iter()
            .filter(|c| !c.idle && c.aligned)
            .map(|c| c.watermark)
            .min();
        self.raise(lowest)
    }

    fn raise(&mut self, to: Option<i64>) -> Option<Change> {
        let to = to.filter(|&to| to > self.watermark)?;
        self.watermark = to;
        Some(Change::Watermark(to))
    }
}

#[cfg(test)]
mod tests {
    use super::Change::{Status, Watermark};
    use super::WatermarkStatus::{Active, Idle};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_input_watermark_is_the_minimum_and_only_rises() {
        let mut valve = WatermarkValve::new(2, NO_WATERMARK);
        assert_eq!(valve.on_watermark(0, 10), []);
        assert_eq!(valve.on_watermark(1, 5), [Watermark(5)]);
        assert_eq!(valve.on_watermark(1, 20), [Watermark(10)]);
        // Lower or equal watermarks change nothing.
        assert_eq!(valve.on_watermark(1, 3), []);
        assert_eq!(valve.on_watermark(0, 10), []);
        assert_eq!(valve.on_watermark(0, 30), [Watermark(20)]);
        assert_eq!(valve.watermark(), 20);
    }

    #[test]
    fn an_idle_channel_holds_nothing_back_until_it_catches_up() {
        let mut valve = WatermarkValve::new(2, NO_WATERMARK);
        valve.on_watermark(0, 100);
        assert_eq!(valve.on_status(1, Idle), [Watermark(100)]);
        assert_eq!(valve.on_watermark(0, 200), [Watermark(200)]);
        // Back below the input watermark: active, but not holding it back.
        assert_eq!(valve.on_watermark(1, 50), []);
        assert_eq!(valve.on_watermark(0, 300), [Watermark(300)]);
        // Caught up: in the minimum again.
        assert_eq!(valve.on_watermark(1, 310), []);
        assert_eq!(valve.on_watermark(0, 400), [Watermark(310)]);
    }

    #[test]
    fn all_idle_lets_the_highest_through_and_turns_the_input_idle() {
        let mut valve = WatermarkValve::new(2, NO_WATERMARK);
        valve.on_watermark(0, 10);
        valve.on_watermark(1, 40);
        assert_eq!(valve.on_status(0, Idle), [Watermark(40)]);
        assert_eq!(valve.on_status(1, Idle), [Status(Idle)]);
        assert_eq!(valve.on_status(1, Idle), []);
        assert_eq!(valve.on_watermark(0, 50), [Status(Active), Watermark(50)]);
    }

    #[test]
    fn a_restored_floor_is_never_gone_below() {
        let mut valve = WatermarkValve::new(1, 1_000);
        assert_eq!(valve.on_watermark(0, 500), []);
        assert_eq!(valve.watermark(), 1_000);
        assert_eq!(valve.on_watermark(0, 1_500), [Watermark(1_500)]);
    }

    #[test]
    fn without_channels_nothing_happens() {
        let valve = WatermarkValve::new(0, NO_WATERMARK);
        assert_eq!(valve.watermark(), NO_WATERMARK);
    }

    #[derive(Debug, Clone)]
    enum Input {
        Watermark(usize, i64),
        Status(usize, bool),
    }

    fn inputs() -> impl Strategy<Value = Vec<Input>> {
        prop::collection::vec(
            prop_oneof![
                (0..3usize, -50..50i64).prop_map(|(c, w)| Input::Watermark(c, w)),
                (0..3usize, any::<bool>()).prop_map(|(c, idle)| Input::Status(c, idle)),
            ],
            0..60,
        )
    }

    proptest! {
        /// Passed-on watermarks rise strictly, never exceed the highest any channel sent,
        /// and statuses alternate.
        #[test]
        fn watermarks_rise_and_statuses_alternate(inputs in inputs()) {
            let mut valve = WatermarkValve::new(3, NO_WATERMARK);
            let (mut last, mut highest, mut idle) = (NO_WATERMARK, NO_WATERMARK, false);
            for input in inputs {
                let changes = match input {
                    Input::Watermark(c, w) => {
                        highest = highest.max(w);
                        valve.on_watermark(c, w)
                    }
                    Input::Status(c, true) => valve.on_status(c, Idle),
                    Input::Status(c, false) => valve.on_status(c, Active),
                };
                for change in changes {
                    match change {
                        Watermark(w) => {
                            prop_assert!(w > last && w <= highest);
                            last = w;
                        }
                        Status(status) => {
                            prop_assert_eq!(status == Idle, !idle);
                            idle = !idle;
                        }
                    }
                }
                prop_assert_eq!(valve.watermark(), last);
            }
        }

        /// With every channel active throughout, the input watermark is exactly the
        /// minimum of the channels' highest watermarks.
        #[test]
        fn active_channels_give_their_minimum(
            sent in prop::collection::vec((0..3usize, -50..50i64), 0..40)
        ) {
            let mut valve = WatermarkValve::new(3, NO_WATERMARK);
            let mut highest = [NO_WATERMARK; 3];
            for (c, w) in sent {
                valve.on_watermark(c, w);
                highest[c] = highest[c].max(w);
                prop_assert_eq!(valve.watermark(), *highest.iter().min().unwrap());
            }
        }
    }
}
