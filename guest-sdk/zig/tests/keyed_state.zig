//! The Zig SDK's keyed state and state declarations: keyed state survives a snapshot and a
//! restore, also from two subtasks into one; custom value types; `restoreKeyed`, `restored`
//! and the operator-wide state mode; misuse explained. `zig test` natively with the C SDK's
//! test harness; `cargo xtask sdk-test --lang zig` runs it.

const std = @import("std");
const cairn = @import("cairn");
const harness = @import("harness");

const expectEqualStrings = std.testing.expectEqualStrings;

var restored_calls: usize = 0;
var tally_keys: usize = 0;

/// Counts records per key, and in all (operator-wide state, union mode).
const Tally = struct {
    counts: cairn.KeyedState(u64) = .{},
    records: u64 = 0,

    pub const state_version: u32 = 5;
    pub const operator_state_mode: cairn.OperatorStateMode = .@"union";

    pub fn process(self: *Tally, record: cairn.Record, out: *cairn.Emitter) !void {
        self.records += 1;
        if (std.mem.eql(u8, record.value, "del")) return self.counts.remove(record);
        if (std.mem.startsWith(u8, record.value, "put-key ")) return self.counts.putKey(record.value[8..], 1);
        if (std.mem.eql(u8, record.value, "get")) {
            const n = try self.counts.get(record);
            out.begin("");
            out.print("{d}", .{if (n) |v| v.* else 0});
            return out.end();
        }
        const n = try self.counts.getOrDefault(record);
        n.* += 1;
        out.begin("");
        out.print("{s}={d}", .{ record.key, n.* });
        out.end();
    }

    pub fn snapshot(self: *Tally, state: *cairn.Buffer) !void {
        state.appendInt(self.records);
    }

    pub fn restore(self: *Tally, data: []const u8, _: u32) !void {
        self.records += try std.fmt.parseUnsigned(u64, data, 10);
    }

    pub fn restored(self: *Tally) !void {
        restored_calls += 1;
        tally_keys = self.counts.count();
    }
};

/// A value type of its own: a pair, encoded as text `a,b`.
const Pair = struct {
    a: u32,
    b: u32,

    pub const encoding: cairn.ValueEncoding = .utf8;

    pub fn encode(self: *const Pair, out: *cairn.Buffer) void {
        out.print("{d},{d}", .{ self.a, self.b });
    }

    pub fn decode(bytes: []const u8) !Pair {
        const comma = std.mem.indexOfScalar(u8, bytes, ',') orelse return cairn.fail("no comma in {s}", .{bytes});
        return .{
            .a = try std.fmt.parseUnsigned(u32, bytes[0..comma], 10),
            .b = try std.fmt.parseUnsigned(u32, bytes[comma + 1 ..], 10),
        };
    }
};

/// Keeps (records seen, value length sum) per key; migrates version 1 chunks, whose values
/// were the record count alone in decimal.
const Pairs = struct {
    pairs: cairn.KeyedState(Pair) = .{},

    pub const state_version: u32 = 2;
    pub const restores_other_versions = true;

    pub fn process(self: *Pairs, record: cairn.Record, out: *cairn.Emitter) !void {
        const p = try self.pairs.getOrDefault(record);
        p.a += 1;
        p.b += @intCast(record.value.len);
        out.begin("");
        out.print("{s}:{d},{d}", .{ record.key, p.a, p.b });
        out.end();
    }

    pub fn restoreKeyed(self: *Pairs, chunk: cairn.KeyedChunk, version: u32) !void {
        if (version == 2) return self.pairs.restoreChunk(chunk);
        var entries = chunk.iterator();
        while (try entries.next()) |entry| {
            const a = try std.fmt.parseUnsigned(u32, entry.value.?, 10);
            try self.pairs.putKey(entry.key, .{ .a = a, .b = 0 });
        }
    }
};

fn describe(_: cairn.Args, _: *cairn.Graph) !void {
    return cairn.fail("the tests call no describe", .{});
}

comptime {
    cairn.exportJob(describe, .{ .tally = Tally, .pairs = Pairs });
}

const all = harness.max_parallelism - 1;

fn byKey(instance: *anyopaque, keys: []const [*:0]const u8) []const u8 {
    return harness.process(instance, 0, true, keys, null);
}

test "keyed state survives a snapshot and a restore" {
    const first = try harness.open("tally", 0, all);
    try expectEqualStrings("a=1,b=1,a=2,c=1,a=3", byKey(first, &.{ "a", "b", "a", "c", "a" }));
    var s = try harness.snapshot(first);
    defer harness.cairn_test_snapshot_free(&s);
    harness.cairn_test_close(first);
    try std.testing.expectEqual(@as(u32, 5), s.version);
    try std.testing.expectEqual(@as(u8, 1), s.mode);
    try std.testing.expectEqual(@as(u8, @intFromEnum(cairn.ValueEncoding.u64_le)), s.value_encoding);
    try std.testing.expectEqualStrings("5", s.itemList()[0].slice());

    restored_calls = 0;
    const second = try harness.open("tally", 0, all);
    defer harness.cairn_test_close(second);
    try expectEqualStrings("", harness.restore(second, 5, s.chunkList(), s.itemList()));
    try std.testing.expectEqual(@as(usize, 1), restored_calls);
    try std.testing.expectEqual(@as(usize, 3), tally_keys);
    try expectEqualStrings("a=4,d=1", byKey(second, &.{ "a", "d" }));
    try expectEqualStrings("1,0", harness.process(second, 0, true, &.{ "d", "zz" }, "get"));
    try expectEqualStrings("", harness.process(second, 0, true, &.{"d"}, "del"));
    try expectEqualStrings("0", harness.process(second, 0, true, &.{"d"}, "get"));
}

test "chunks of two subtasks restore into one" {
    var names: [40][4:0]u8 = undefined;
    var keys: [2][40][*:0]const u8 = undefined;
    var counts = [2]usize{ 0, 0 };
    for (&names, 0..) |*name, i| {
        _ = std.fmt.bufPrint(name, "k{d:0>2}\x00", .{i}) catch unreachable;
        const owner = @intFromBool(harness.cairn_test_key_group(name, 3) >= 4);
        keys[owner][counts[owner]] = name;
        counts[owner] += 1;
    }
    var snapshots: [2]harness.Snapshot = undefined;
    for (0..2) |i| {
        const old = try harness.open("tally", @intCast(4 * i), @intCast(4 * i + 3));
        _ = byKey(old, keys[i][0..counts[i]]);
        snapshots[i] = try harness.snapshot(old);
        harness.cairn_test_close(old);
    }
    defer for (&snapshots) |*s| harness.cairn_test_snapshot_free(s);
    const merged = try harness.open("tally", 0, all);
    defer harness.cairn_test_close(merged);
    var err: ?[*:0]u8 = null;
    for (snapshots) |s| try std.testing.expect(harness.cairn_test_restore_keyed(merged, 5, s.chunkList().ptr, s.chunks_len, &err));
    const items = [_]harness.Bytes{ snapshots[0].itemList()[0], snapshots[1].itemList()[0] };
    try expectEqualStrings("", harness.restore(merged, 5, &.{}, &items));
    try std.testing.expectEqual(@as(usize, 40), tally_keys);
    try expectEqualStrings("k00=2,k39=2", byKey(merged, &.{ "k00", "k39" }));
}

test "values of a type of its own, and a migration in restoreKeyed" {
    const first = try harness.open("pairs", 0, all);
    try expectEqualStrings("x:1,2,x:2,4", harness.process(first, 0, true, &.{ "x", "x" }, "ab"));
    var s = try harness.snapshot(first);
    defer harness.cairn_test_snapshot_free(&s);
    harness.cairn_test_close(first);
    try std.testing.expectEqual(@as(u8, @intFromEnum(cairn.ValueEncoding.utf8)), s.value_encoding);

    const second = try harness.open("pairs", 0, all);
    defer harness.cairn_test_close(second);
    try expectEqualStrings("", harness.restore(second, 2, s.chunkList(), &.{}));
    try expectEqualStrings("x:3,5", harness.process(second, 0, true, &.{"x"}, "z"));

    var raw = std.mem.zeroes(cairn.c.cairn_buffer_t);
    defer cairn.c.cairn_buffer_free(&raw);
    const entries: *cairn.Buffer = @ptrCast(&raw);
    entries.appendChunkEntry("y", "7");
    const chunk = harness.Chunk{ .key_group = harness.cairn_test_key_group("y", 1), .entries = harness.Bytes.of(entries.slice()) };
    try expectEqualStrings("", harness.restore(second, 1, &.{chunk}, &.{}));
    try expectEqualStrings("y:8,1", harness.process(second, 0, true, &.{"y"}, "z"));
}

test "misuse is explained" {
    const tally = try harness.open("tally", 0, 3);
    defer harness.cairn_test_close(tally);
    try expectEqualStrings(
        "error: keyed state needs records of a by-key input; this one arrived on input 3, which is not partitioned by key",
        harness.process(tally, 3, false, &.{"a"}, null),
    );
    var name: [4:0]u8 = undefined;
    const foreign = for (0..100) |i| {
        const key = std.fmt.bufPrint(&name, "k{d}\x00", .{i}) catch unreachable;
        if (harness.cairn_test_key_group(key.ptr, key.len - 1) >= 4) break key[0 .. key.len - 1];
    } else unreachable;
    var command: [16:0]u8 = undefined;
    _ = std.fmt.bufPrint(&command, "put-key {s}\x00", .{foreign}) catch unreachable;
    const refused = harness.process(tally, 0, false, &.{"a"}, &command);
    try std.testing.expect(std.mem.indexOf(u8, refused, "is not this subtask's (it owns key groups 0 to 3)") != null);
    const chunk = harness.Chunk{ .key_group = 0, .entries = harness.Bytes.of("\x01a\x0312") };
    try expectEqualStrings(
        "error: the state is in encoding version 4, operator \"tally\" reads version 5; set restores_other_versions and handle version 4 in restore_keyed and restore to migrate it",
        harness.restore(tally, 4, &.{chunk}, &.{}),
    );
    try expectEqualStrings("error: a u64 state value has 2 bytes, not 8", harness.restore(tally, 5, &.{chunk}, &.{}));

    const pairs = try harness.open("pairs", 0, all);
    defer harness.cairn_test_close(pairs);
    const bad = harness.Chunk{ .key_group = 0, .entries = harness.Bytes.of("\x01a\x023") };
    try expectEqualStrings("error: no comma in 3", harness.restore(pairs, 2, &.{bad}, &.{}));
}
