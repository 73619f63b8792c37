//! The Zig SDK's event time: timers reach `onTimer` in order, with their key's keyed state;
//! `cairn.Windowed` windows fire, fire again within the allowed lateness, free their state,
//! count late records and survive a restore, as the Rust SDK's do. `zig test` natively with
//! the C SDK's test harness; `cargo xtask sdk-test --lang zig` runs it.

const std = @import("std");
const cairn = @import("cairn");
const harness = @import("harness");

const expectEqualStrings = std.testing.expectEqualStrings;
const expectEqual = std.testing.expectEqual;

/// Counts records per key, with an event-time timer 10 ms after each and a processing-time
/// timer at 100; a record of key "A" deletes key "a"'s event-time timer at its timestamp + 10.
const Timeout = struct {
    counts: cairn.KeyedState(u64) = .{},

    pub fn process(self: *Timeout, record: cairn.Record, _: *cairn.Emitter) !void {
        const at = record.timestamp.? + 10;
        if (std.mem.eql(u8, record.key, "A")) return cairn.deleteTimer(.event_time, "a", at);
        (try self.counts.getOrDefault(record)).* += 1;
        try cairn.registerTimer(.event_time, record.key, at);
        try cairn.registerTimer(.processing_time, record.key, 100);
    }

    pub fn onTimer(self: *Timeout, timer: cairn.Timer, out: *cairn.Emitter) !void {
        const n = try self.counts.get(timer.record);
        out.begin(timer.key);
        out.print("{s} {s} {d}", .{ timer.key, @tagName(timer.domain), if (n) |v| v.* else 0 });
        out.endWithTimestamp(timer.timestamp);
    }
};

/// Records counted per key and window, shown as `key start-end:count`; the windows from the
/// node's options `size`, `slide` and `lateness`.
const Count = struct {
    pub const Acc = u64;

    pub fn windows(ctx: cairn.Context) !cairn.Windows {
        const size = try option(ctx, "size");
        const w = if (ctx.option("slide") != null)
            try cairn.Windows.sliding(size, try option(ctx, "slide"))
        else if (ctx.option("session") != null)
            try cairn.Windows.session(size)
        else
            try cairn.Windows.tumbling(size);
        const lenient = w.allowedLateness(try option(ctx, "lateness"));
        return if (ctx.option("late")) |name| lenient.lateRecordsTo(name) else lenient;
    }

    fn option(ctx: cairn.Context, name: [:0]const u8) !u64 {
        return std.fmt.parseUnsigned(u64, ctx.option(name) orelse "0", 10);
    }

    pub fn add(acc: *u64, _: cairn.Record) !void {
        acc.* += 1;
    }

    pub fn merge(acc: *u64, other: *const u64) !void {
        acc.* += other.*;
    }

    pub fn emit(key: []const u8, window: cairn.Window, acc: *const u64, out: *cairn.Emitter) !void {
        out.begin(key);
        out.print("{s} {d}-{d}:{d}", .{ key, window.start, window.end, acc.* });
        out.end();
    }
};

/// Records at odd timestamps to side output "odd", the others out; key "x" sends one to
/// "odd" and fails.
const Odd = struct {
    pub fn process(_: *Odd, record: cairn.Record, out: *cairn.Emitter) !void {
        const x = std.mem.eql(u8, record.key, "x");
        if (@mod(record.timestamp.?, 2) == 1 or x) cairn.sideOutput("odd").push(record) else out.push(record);
        if (x) return cairn.fail("x fails", .{});
    }
};

comptime {
    cairn.exportJob(describe, .{ .timeout = Timeout, .count = cairn.Windowed(Count), .odd = Odd });
}

fn describe(_: cairn.Args, job: *cairn.Graph) !void {
    job.name("event-time");
}

fn openCount(options: []const [*:0]const u8) !*anyopaque {
    return harness.openWithOptions("count", options);
}

fn chunks(instance: *anyopaque) !usize {
    var s = try harness.snapshot(instance);
    defer harness.cairn_test_snapshot_free(&s);
    return s.chunks_len;
}

test "timers fire in order, with their key's keyed state" {
    const op = try harness.openWithOptions("timeout", &.{});
    defer harness.cairn_test_close(op);
    try expectEqualStrings("", harness.processStamped(op, &.{ "b", "a", "b" }, &.{ 5, 1, 3 }));
    try expectEqual(@as(usize, 5), harness.cairn_test_timers());
    try expectEqualStrings("a event_time 1@11,b event_time 2@13", harness.advanceWatermark(op, 14));
    try expectEqualStrings("a processing_time 1@100,b processing_time 2@100", harness.advanceProcessingTime(op, 100));
    try expectEqualStrings("b event_time 2@15", harness.endOfInput(op));
    try expectEqual(@as(usize, 0), harness.cairn_test_timers());
}

test "a deleted timer does not fire" {
    const op = try harness.openWithOptions("timeout", &.{});
    defer harness.cairn_test_close(op);
    _ = harness.processStamped(op, &.{ "a", "A" }, &.{ 1, 1 });
    try expectEqual(@as(usize, 1), harness.cairn_test_timers());
    try expectEqualStrings("", harness.advanceWatermark(op, 20));
}

test "a tumbling window fires once the watermark passes its end, and is freed" {
    const op = try openCount(&.{ "size", "10" });
    defer harness.cairn_test_close(op);
    try expectEqualStrings("", harness.processStamped(op, &.{ "a", "a", "b" }, &.{ 1, 5, 12 }));
    try expectEqualStrings("", harness.advanceWatermark(op, 8));
    try expectEqualStrings("a 0-10:2@9", harness.advanceWatermark(op, 9));
    try expectEqualStrings("b 10-20:1@19", harness.endOfInput(op));
    try expectEqual(@as(usize, 0), harness.cairn_test_timers());
    try expectEqual(@as(usize, 0), try chunks(op));
}

test "late records are counted" {
    const op = try openCount(&.{ "size", "10" });
    defer harness.cairn_test_close(op);
    _ = harness.processStamped(op, &.{"a"}, &.{1});
    _ = harness.advanceWatermark(op, 9);
    try expectEqualStrings("", harness.processStamped(op, &.{ "a", "a" }, &.{ 3, 10 }));
    try expectEqual(@as(u64, 1), harness.cairn_test_counter(cairn.late_records_dropped));
    try expectEqualStrings("a 10-20:1@19", harness.endOfInput(op));
}

test "late records go to the side output when named" {
    const op = try openCount(&.{ "size", "10", "late", "late" });
    defer harness.cairn_test_close(op);
    _ = harness.advanceWatermark(op, 20);
    try expectEqualStrings("", harness.processStamped(op, &.{ "a", "b" }, &.{ 3, 25 }));
    try expectEqual(@as(u64, 0), harness.cairn_test_counter(cairn.late_records_dropped));
    try expectEqualStrings("a:@3", harness.sideOutput("late"));
    try expectEqualStrings("b 20-30:1@29", harness.endOfInput(op));
}

test "side outputs get a batch per call, and nothing from a failed one" {
    const op = try harness.openWithOptions("odd", &.{});
    defer harness.cairn_test_close(op);
    try expectEqualStrings("@2", harness.processStamped(op, &.{ "a", "b", "c" }, &.{ 1, 2, 3 }));
    try expectEqualStrings("a:@1,c:@3", harness.sideOutput("odd"));
    try expectEqualStrings("error: x fails", harness.processStamped(op, &.{ "d", "x" }, &.{ 5, 6 }));
    try expectEqualStrings("a:@1,c:@3", harness.sideOutput("odd"));
}

test "within the allowed lateness a window fires again, then goes" {
    const op = try openCount(&.{ "size", "10", "lateness", "5" });
    defer harness.cairn_test_close(op);
    _ = harness.processStamped(op, &.{"a"}, &.{1});
    try expectEqualStrings("a 0-10:1@9", harness.advanceWatermark(op, 9));
    try expectEqualStrings("a 0-10:2@9", harness.processStamped(op, &.{"a"}, &.{2}));
    try expectEqualStrings("", harness.advanceWatermark(op, 13));
    try expectEqual(@as(usize, 1), harness.cairn_test_timers());
    _ = harness.advanceWatermark(op, 14);
    try expectEqual(@as(usize, 0), harness.cairn_test_timers());
    try expectEqual(@as(usize, 0), try chunks(op));
    _ = harness.processStamped(op, &.{"a"}, &.{3});
    try expectEqual(@as(u64, 1), harness.cairn_test_counter(cairn.late_records_dropped));
}

test "a record counts in each sliding window it falls in" {
    const op = try openCount(&.{ "size", "10", "slide", "5" });
    defer harness.cairn_test_close(op);
    _ = harness.processStamped(op, &.{ "a", "a" }, &.{ 7, 12 });
    try expectEqualStrings("a 0-10:1@9,a 5-15:2@14,a 10-20:1@19", harness.endOfInput(op));
}

test "session windows merge records closer than the gap" {
    const op = try openCount(&.{ "size", "3", "session", "" });
    defer harness.cairn_test_close(op);
    _ = harness.processStamped(op, &.{ "a", "a", "b" }, &.{ 1, 6, 1 });
    // [1,4) and [6,9): a record at 4 bridges them into [1,9).
    _ = harness.processStamped(op, &.{ "a", "a" }, &.{ 4, 20 });
    try expectEqualStrings("b 1-4:1@3,a 1-9:3@8,a 20-23:1@22", harness.endOfInput(op));
    try expectEqual(@as(usize, 0), harness.cairn_test_timers());
}

test "windows and their timers survive a restore" {
    const options = [_][*:0]const u8{ "size", "10" };
    const op = try openCount(&options);
    _ = harness.processStamped(op, &.{ "a", "b" }, &.{ 1, 11 });
    var s = try harness.snapshot(op);
    defer harness.cairn_test_snapshot_free(&s);
    harness.cairn_test_close(op);
    var err: ?[*:0]u8 = null;
    const restored = harness.cairn_test_open_with_options("count", &options, 1, &err).?;
    defer harness.cairn_test_close(restored);
    try expectEqualStrings("", harness.restore(restored, s.version, s.chunkList(), &.{}));
    _ = harness.processStamped(restored, &.{"a"}, &.{2});
    try expectEqualStrings("a 0-10:2@9,b 10-20:1@19", harness.endOfInput(restored));
}

test "windows are checked" {
    try std.testing.expectError(error.CairnFailure, cairn.Windows.tumbling(0));
    try std.testing.expectError(error.CairnFailure, cairn.Windows.sliding(5, 10));
    harness.cairn_test_reset_host();
    var err: ?[*:0]u8 = null;
    const options = [_][*:0]const u8{ "size", "0" };
    try std.testing.expect(harness.cairn_test_open_with_options("count", &options, 1, &err) == null);
    try std.testing.expect(std.mem.indexOf(u8, std.mem.span(err.?), "must be 1 ms or more") != null);
    harness.free(err);
}
