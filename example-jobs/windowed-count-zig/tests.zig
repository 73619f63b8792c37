//! windowed-count-zig's operators: `stamp` parses `<epoch-ms><TAB><text>` lines into
//! stamped words and counts the malformed ones; `count` counts a word per window of the
//! node's `window` option, emitting `<window-start><TAB><word><TAB><count>` at the window's
//! last millisecond. Through the WIT exports driven by the C SDK's test harness;
//! `cargo xtask sdk-test --lang zig` runs it.

const std = @import("std");
const harness = @import("harness");

comptime {
    _ = @import("main.zig");
}

const expectEqualStrings = std.testing.expectEqualStrings;

/// Stamps one line: the words emitted, as `key@timestamp`, comma-separated.
fn stamp(op: *anyopaque, line: []const u8, shown: []u8) ![]const u8 {
    var offsets = [_]u32{ 0, @intCast(line.len) };
    const batch: harness.Batch = .{
        .data = @constCast(line.ptr),
        .data_len = line.len,
        .offsets = &offsets,
        .offsets_len = 2,
        .timestamps = null,
        .timestamps_len = 0,
    };
    var out: harness.Batch = undefined;
    var err: ?[*:0]u8 = null;
    if (!harness.cairn_test_process(op, 0, &batch, false, &out, &err)) {
        std.debug.print("stamp: {s}\n", .{err.?});
        return error.TestUnexpectedResult;
    }
    defer harness.cairn_test_batch_free(&out);
    var writer: std.Io.Writer = .fixed(shown);
    var start: u32 = 0;
    for (0..out.offsets_len / 2) |i| {
        const key_end = out.offsets.?[2 * i];
        try writer.print("{s}{s}@{d}", .{ if (i == 0) "" else ",", out.data.?[start..key_end], out.timestamps.?[i] });
        start = out.offsets.?[2 * i + 1];
    }
    return writer.buffered();
}

test "lines become stamped words, malformed ones counted" {
    const op = try harness.openWithOptions("stamp", &.{});
    defer harness.cairn_test_close(op);
    var shown: [256]u8 = undefined;
    try expectEqualStrings("to@1000,be@1000,or@1000,not@1000", try stamp(op, "1000\tto be\u{a0}or  not\t", &shown));
    try expectEqualStrings("x@-5", try stamp(op, " -5 \tx", &shown));
    try expectEqualStrings("", try stamp(op, "7\t", &shown));
    try expectEqualStrings("max@9223372036854775807", try stamp(op, "9223372036854775807\tmax", &shown));
    for ([_][]const u8{ "no tab", "12x\tword", "\tword", "+\tword", "1_0\tword", "9223372036854775808\ttoo big" }) |line|
        try expectEqualStrings("", try stamp(op, line, &shown));
    try std.testing.expectEqual(@as(u64, 6), harness.cairn_test_counter("numMalformedLines"));
}

test "late words go to the late output, as <timestamp><TAB><word>" {
    const count = try harness.openWithOptions("count", &.{ "window", "10", "allowed-lateness", "0", "late-output", "late" });
    _ = harness.advanceWatermark(count, 20);
    try expectEqualStrings("", harness.processStamped(count, &.{"to"}, &.{3}));
    try expectEqualStrings("to:@3", harness.sideOutput("late"));
    harness.cairn_test_close(count);
    const late_words = try harness.openWithOptions("late-words", &.{});
    defer harness.cairn_test_close(late_words);
    try expectEqualStrings("3\tto", harness.processStamped(late_words, &.{"to"}, &.{3}));
}

test "words are counted per window" {
    const op = try harness.openWithOptions("count", &.{ "window", "10", "allowed-lateness", "0" });
    defer harness.cairn_test_close(op);
    try expectEqualStrings("", harness.processStamped(op, &.{ "to", "be", "to", "to" }, &.{ 1, 2, 9, 10 }));
    try expectEqualStrings("0\tbe\t1@9,0\tto\t2@9", harness.advanceWatermark(op, 9));
    try expectEqualStrings("10\tto\t1@19", harness.endOfInput(op));
}
