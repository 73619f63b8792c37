//! Windowed word count in Zig, the twin of Rust's `windowed-count` (the event-time oracle
//! job): the same arguments, graph and output. Counts each word per tumbling window of event
//! time, so its complete output is known from the input alone.
//!
//!   cairn run windowed-count-zig.wasm -p 4 -- --input events.txt --output out/ \
//!       [--window MS] [--max-delay MS] [--idleness MS] [--allowed-lateness MS] \
//!       [--late-output DIR] [--rate LINES_PER_S] [--also-stdin]
//!
//! Input lines are `<epoch-ms><TAB><text>` (`-` as input reads standard input, `--rate`
//! paces reading a file); each word of the text (split on Unicode whitespace as
//! word-count-zig splits it) takes the line's timestamp as its event time, and a line that
//! is not of that form is skipped and counted in `numMalformedLines`. Watermarks trail the
//! highest timestamp by `--max-delay` (default 0; Flink's bounded out-of-orderness), and
//! with `--idleness` a stamping subtask without records for that long stops holding event
//! time back. Each window of `--window` ms (default 1000, starting at `ts - ts mod window`)
//! emits one record per word once the watermark passes its end, keyed by the word, valued
//! `<window-start><TAB><word><TAB><count>` and stamped with the window's last millisecond;
//! the file sink writes them exactly-once (`-` as output: standard output). A record behind
//! the watermark by more than `--allowed-lateness` (default 0) when it arrives is late:
//! dropped and counted in `numLateRecordsDropped`, or with `--late-output DIR` written there
//! as `<timestamp><TAB><word>` (through the count's side output `late`). `--also-stdin` adds
//! standard input as a second source of lines (which stays idle while nothing is written to
//! it).

const std = @import("std");
const cairn = @import("cairn");

/// A line of input that is not `<epoch-ms><TAB><text>`: skipped, and counted.
pub const malformed_lines = "numMalformedLines";

/// The count's side output of late records.
const late = "late";

/// Parses `<epoch-ms><TAB><text>` lines into their words, keyed by the word, each with the
/// line's timestamp.
const Stamp = struct {
    pub fn process(_: *Stamp, line: cairn.Record, out: *cairn.Emitter) !void {
        const tab = std.mem.indexOfScalar(u8, line.value, '\t') orelse return cairn.counterAdd(malformed_lines, 1);
        const timestamp = parseMs(line.value[0..tab]) orelse return cairn.counterAdd(malformed_lines, 1);
        var words = cairn.words(line.value[tab + 1 ..]);
        while (words.next()) |word| out.emitWithTimestamp(word, "", timestamp);
    }

    /// `field` as Rust's `str::trim` then `i64::from_str` read it: Unicode whitespace around
    /// an optional sign and decimal digits.
    fn parseMs(field: []const u8) ?i64 {
        var start: usize = 0;
        while (start < field.len) {
            const w = cairn.whitespaceLen(field[start..]);
            if (w == 0) break;
            start += w;
        }
        var end = start;
        while (end < field.len and cairn.whitespaceLen(field[end..]) == 0) end += 1;
        var rest = end;
        while (rest < field.len) {
            const w = cairn.whitespaceLen(field[rest..]);
            if (w == 0) return null;
            rest += w;
        }
        const number = field[start..end];
        // std.fmt.parseInt also takes `_` between digits; Rust does not.
        if (std.mem.indexOfScalar(u8, number, '_') != null) return null;
        return std.fmt.parseInt(i64, number, 10) catch null;
    }
};

/// Counts a word's records per window: tumbling windows of the node's `window` option (ms),
/// kept `allowed-lateness` ms past their end, late records to side output `late-output` if
/// the node names one.
const WordsPerWindow = struct {
    pub const Acc = u64;

    pub fn windows(ctx: cairn.Context) !cairn.Windows {
        const tumbling = (try cairn.Windows.tumbling(try option(ctx, "window"))).allowedLateness(try option(ctx, "allowed-lateness"));
        return if (ctx.option("late-output")) |name| tumbling.lateRecordsTo(name) else tumbling;
    }

    fn option(ctx: cairn.Context, name: [:0]const u8) !u64 {
        const value = ctx.option(name) orelse "0";
        return std.fmt.parseUnsigned(u64, value, 10) catch
            cairn.fail("option {s}: \"{s}\" is not a number of ms", .{ name, value });
    }

    pub fn add(count: *u64, _: cairn.Record) !void {
        count.* += 1;
    }

    pub fn emit(word: []const u8, window: cairn.Window, count: *const u64, out: *cairn.Emitter) !void {
        out.begin(word);
        out.writeSigned(window.start);
        out.writeByte('\t');
        out.write(word);
        out.writeByte('\t');
        out.writeInt(count.*);
        out.end();
    }
};

/// Late records (the words as stamped) as `<timestamp><TAB><word>`.
const LateWords = struct {
    pub fn process(_: *LateWords, record: cairn.Record, out: *cairn.Emitter) !void {
        out.begin(record.key);
        out.writeSigned(record.timestamp orelse 0);
        out.writeByte('\t');
        out.write(record.key);
        out.end();
    }
};

fn describe(args: cairn.Args, job: *cairn.Graph) !void {
    const input = try args.required("--input");
    const output = try args.required("--output");
    const window = try args.int(u64, "--window", 1000);
    if (window == 0 or window > std.math.maxInt(i64))
        return cairn.fail("--window: a window's size must be 1 ms or more (below 2^63), not {d}", .{window});
    const max_delay = try args.int(u64, "--max-delay", 0);
    const lateness = try args.int(u64, "--allowed-lateness", 0);
    const idleness: ?u64 = if (args.value("--idleness") != null) try args.int(u64, "--idleness", 0) else null;

    job.name("windowed-count");
    const lines = if (std.mem.eql(u8, input, "-"))
        job.sourceStdin("lines")
    else if (args.value("--rate")) |rate|
        job.sourceFile("lines", input).option("rate", rate)
    else
        job.sourceFile("lines", input);
    const words = stamped(lines.parallelism(1).operator("stamp", "stamp", .rebalance), max_delay, idleness);
    var number: [21]u8 = undefined; // a u64 in decimal and a NUL; options are copied
    const counts = words.operator("count", "count", .by_key)
        .option("window", std.fmt.bufPrintSentinel(&number, "{d}", .{window}, 0) catch unreachable)
        .option("allowed-lateness", std.fmt.bufPrintSentinel(&number, "{d}", .{lateness}, 0) catch unreachable);
    if (args.flag("--also-stdin")) {
        const more = job.sourceStdin("more-lines").parallelism(1).operator("stamp-more", "stamp", .rebalance);
        _ = counts.input(stamped(more, max_delay, idleness), .by_key);
    }
    if (std.mem.eql(u8, output, "-"))
        _ = counts.sinkStdout("out", .forward)
    else
        _ = counts.sinkFile("out", output, .forward);
    if (args.value("--late-output")) |dir| {
        _ = counts.option("late-output", late)
            .sideOutput(late)
            .operator("late-words", "late-words", .forward)
            .sinkFile("late-out", dir, .forward);
    }
}

/// A stamping node's watermark strategy: out of order by `max_delay` ms, idle after
/// `idleness` ms if set.
fn stamped(stamp: cairn.Stream, max_delay: u64, idleness: ?u64) cairn.Stream {
    const with_watermarks = stamp.watermarks(max_delay);
    return if (idleness) |ms| with_watermarks.idleness(ms) else with_watermarks;
}

comptime {
    cairn.exportJob(describe, .{ .stamp = Stamp, .count = cairn.Windowed(WordsPerWindow), .@"late-words" = LateWords });
}

/// A component has no standard error: panics and std.log go to the host's log.
pub const panic = cairn.panic;
pub const std_options: std.Options = .{ .logFn = cairn.logFn };
