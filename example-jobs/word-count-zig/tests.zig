//! word-count-zig's `count`: its state (version 3), and the versions it migrates (2 and 4)
//! or refuses (1), through the WIT exports driven by the C SDK's test harness;
//! `cargo xtask sdk-test --lang zig` runs it.

const std = @import("std");
const cairn = @import("cairn");
const harness = @import("harness");

comptime {
    _ = @import("main.zig");
}

const expectEqualStrings = std.testing.expectEqualStrings;

fn openCount() !*anyopaque {
    return harness.open("count", 0, harness.max_parallelism - 1);
}

fn words(count: *anyopaque, keys: []const [*:0]const u8) []const u8 {
    return harness.process(count, 0, true, keys, null);
}

/// A chunk holding `key` -> `value`, in the key's key group.
fn chunkOf(entries: *cairn.c.cairn_buffer_t, key: []const u8, value: []const u8) harness.Chunk {
    entries.len = 0;
    const buffer: *cairn.Buffer = @ptrCast(entries);
    buffer.appendChunkEntry(key, value);
    return .{
        .key_group = harness.cairn_test_key_group(key.ptr, key.len),
        .entries = harness.Bytes.of(buffer.slice()),
    };
}

test "counts are keyed state of version 3, u64 little-endian" {
    const count = try openCount();
    try expectEqualStrings("to\t1,be\t1,or\t1,to\t2", words(count, &.{ "to", "be", "or", "to" }));
    var s = try harness.snapshot(count);
    defer harness.cairn_test_snapshot_free(&s);
    harness.cairn_test_close(count);
    try std.testing.expectEqual(@as(u32, 3), s.version);
    try std.testing.expectEqual(@as(usize, 0), s.items_len);
    try std.testing.expectEqual(@as(u8, @intFromEnum(cairn.ValueEncoding.u64_le)), s.value_encoding);

    const again = try openCount();
    defer harness.cairn_test_close(again);
    try expectEqualStrings("", harness.restore(again, 3, s.chunkList(), &.{}));
    try expectEqualStrings("to\t3,question\t1", words(again, &.{ "to", "question" }));
}

test "version 2 counts move into keyed state" {
    const count = try openCount();
    defer harness.cairn_test_close(count);
    const item = harness.Bytes.of("be\t2\nto\t12\n");
    try expectEqualStrings("", harness.restore(count, 2, &.{}, &.{item}));
    try expectEqualStrings("to\t13,be\t3,or\t1", words(count, &.{ "to", "be", "or" }));
}

test "version 4 counts move into keyed state" {
    const count = try openCount();
    defer harness.cairn_test_close(count);
    var entries = std.mem.zeroes(cairn.c.cairn_buffer_t);
    defer cairn.c.cairn_buffer_free(&entries);
    const chunk = chunkOf(&entries, "to", "41");
    try expectEqualStrings("", harness.restore(count, 4, &.{chunk}, &.{}));
    try expectEqualStrings("to\t42", words(count, &.{"to"}));
}

test "version 1 and counts that are no numbers are refused" {
    const count = try openCount();
    defer harness.cairn_test_close(count);
    const refusal = "error: unknown state version 1: this count reads versions 2, 3 and 4";
    try expectEqualStrings(refusal, harness.restore(count, 1, &.{}, &.{harness.Bytes.of("\x01\x02to\x03")}));
    var entries = std.mem.zeroes(cairn.c.cairn_buffer_t);
    defer cairn.c.cairn_buffer_free(&entries);
    const chunk = chunkOf(&entries, "to", "x");
    try expectEqualStrings(refusal, harness.restore(count, 1, &.{chunk}, &.{}));
    try expectEqualStrings("error: version 4 state: a count is not a number", harness.restore(count, 4, &.{chunk}, &.{}));
    try expectEqualStrings(
        "error: version 2 state: line 1 is not word<TAB>count",
        harness.restore(count, 2, &.{}, &.{harness.Bytes.of("to 3\n")}),
    );
}
