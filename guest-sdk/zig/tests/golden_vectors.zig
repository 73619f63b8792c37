//! The golden vectors of the packed-batch and keyed-chunk encodings (wit/vectors, written
//! by the Rust SDK): the Zig SDK encodes and decodes every vector exactly as the reference
//! does, and refuses every malformed encoding. `zig test` natively, linked with the C SDK and
//! its test harness (guest-sdk/c/tests/harness.c, which reads the files named by
//! CAIRN_VECTORS and CAIRN_KEYED_VECTORS and drives the WIT exports as the host does);
//! `cargo xtask sdk-test --lang zig` runs it.

const std = @import("std");
const cairn = @import("cairn");
const harness = @import("harness");
const Batch = harness.Batch;
const VectorRecord = harness.VectorRecord;
const Vectors = harness.Vectors;
const cairn_test_open = harness.cairn_test_open;
const cairn_test_process = harness.cairn_test_process;
const cairn_test_close = harness.cairn_test_close;
const cairn_test_batch_free = harness.cairn_test_batch_free;
const free = harness.free;

fn slice(comptime T: type, ptr: ?[*]T, len: usize) []const T {
    return if (len == 0) &.{} else ptr.?[0..len];
}

fn cSlice(comptime T: type, ptr: [*c]T, len: usize) []const T {
    return if (len == 0) &.{} else ptr[0..len];
}

fn expectBatch(data: []const u8, offsets: []const u32, timestamps: []const i64, expected: Batch) !void {
    try std.testing.expectEqualSlices(u8, slice(u8, expected.data, expected.data_len), data);
    try std.testing.expectEqualSlices(u32, slice(u32, expected.offsets, expected.offsets_len), offsets);
    try std.testing.expectEqualSlices(i64, slice(i64, expected.timestamps, expected.timestamps_len), timestamps);
}

fn expectEmitted(raw: *const cairn.c.cairn_emitter_t, expected: Batch) !void {
    try expectBatch(
        cSlice(u8, raw.data.ptr, raw.data.len),
        cSlice(u32, raw.offsets, raw.offsets_len),
        cSlice(i64, raw.timestamps, raw.timestamps_len),
        expected,
    );
}

fn freeEmitter(raw: *cairn.c.cairn_emitter_t) void {
    cairn.c.cairn_buffer_free(&raw.data);
    free(raw.offsets);
    free(raw.timestamps);
    raw.* = std.mem.zeroes(cairn.c.cairn_emitter_t);
}

/// What the `copy` operator was handed (keys and values copied: records are borrowed).
const Seen = struct { input: u32, key: []u8, value: []u8, timestamp: ?i64 };
var seen: [1024]Seen = undefined;
var seen_len: usize = 0;

fn forgetSeen() void {
    for (seen[0..seen_len]) |s| {
        cairn.allocator.free(s.key);
        cairn.allocator.free(s.value);
    }
    seen_len = 0;
}

/// Passes every record on as it is, and keeps what it saw.
const Copy = struct {
    pub fn process(_: *Copy, record: cairn.Record, out: *cairn.Emitter) !void {
        if (seen_len == seen.len) return cairn.fail("too many records", .{});
        seen[seen_len] = .{
            .input = record.input,
            .key = try cairn.allocator.dupe(u8, record.key),
            .value = try cairn.allocator.dupe(u8, record.value),
            .timestamp = record.timestamp,
        };
        seen_len += 1;
        out.push(record);
    }
};

fn describe(_: cairn.Args, _: *cairn.Graph) !void {
    return cairn.fail("the tests call no describe", .{});
}

comptime {
    cairn.exportJob(describe, .{ .copy = Copy });
}

fn key(r: VectorRecord) []const u8 {
    return if (r.has_key) slice(u8, r.key, r.key_len) else "";
}

fn value(r: VectorRecord) []const u8 {
    return slice(u8, r.value, r.value_len);
}

test "the vectors file has vectors and malformed encodings" {
    const vectors = Vectors.read("CAIRN_VECTORS");
    defer vectors.deinit();
    var malformed: usize = 0;
    for (vectors.list) |v| malformed += @intFromBool(v.malformed);
    try std.testing.expect(vectors.list.len - malformed >= 10);
    try std.testing.expect(malformed >= 5);
}

test "encoding every vector gives the reference bytes" {
    const vectors = Vectors.read("CAIRN_VECTORS");
    defer vectors.deinit();
    for (vectors.list) |v| {
        if (v.malformed) continue;
        errdefer std.debug.print("vector {s}\n", .{v.name});
        var whole = std.mem.zeroes(cairn.c.cairn_emitter_t);
        var pieces = std.mem.zeroes(cairn.c.cairn_emitter_t);
        defer freeEmitter(&whole);
        defer freeEmitter(&pieces);
        const out: *cairn.Emitter = @ptrCast(&whole);
        const by_piece: *cairn.Emitter = @ptrCast(&pieces);
        for (slice(VectorRecord, v.records, v.records_len)) |r| {
            if (r.has_timestamp) {
                out.emitWithTimestamp(key(r), value(r), r.timestamp);
            } else if (r.has_key) {
                out.emitKeyed(key(r), value(r));
            } else {
                out.emit(value(r));
            }
            by_piece.begin(key(r));
            for (value(r)) |b| by_piece.writeByte(b);
            if (r.has_timestamp) by_piece.endWithTimestamp(r.timestamp) else by_piece.end();
        }
        try std.testing.expectEqual(v.records_len, out.count());
        try expectEmitted(&whole, v.encoded);
        try expectEmitted(&pieces, v.encoded);
    }
}

test "decoding every vector gives its records, and passing them on the same batch" {
    const vectors = Vectors.read("CAIRN_VECTORS");
    defer vectors.deinit();
    var err: ?[*:0]u8 = null;
    const copy = cairn_test_open("copy", &err) orelse {
        std.debug.print("cannot open copy: {s}\n", .{err.?});
        return error.TestUnexpectedResult;
    };
    defer cairn_test_close(copy);
    defer forgetSeen();
    for (vectors.list) |v| {
        if (v.malformed) continue;
        errdefer std.debug.print("vector {s}\n", .{v.name});
        forgetSeen();
        var returned: Batch = undefined;
        if (!cairn_test_process(copy, 2, &v.encoded, false, &returned, &err)) {
            std.debug.print("process: {s}\n", .{err.?});
            free(err);
            return error.TestUnexpectedResult;
        }
        defer cairn_test_batch_free(&returned);
        const records = slice(VectorRecord, v.records, v.records_len);
        try std.testing.expectEqual(records.len, seen_len);
        for (records, seen[0..seen_len]) |r, got| {
            try std.testing.expectEqual(@as(u32, 2), got.input);
            // The encoding does not tell an empty key from none: both read back empty.
            try std.testing.expectEqualSlices(u8, key(r), got.key);
            try std.testing.expectEqualSlices(u8, value(r), got.value);
            try std.testing.expectEqual(if (r.has_timestamp) @as(?i64, r.timestamp) else null, got.timestamp);
        }
        try expectBatch(
            slice(u8, returned.data, returned.data_len),
            slice(u32, returned.offsets, returned.offsets_len),
            slice(i64, returned.timestamps, returned.timestamps_len),
            v.encoded,
        );
    }
}

test "every malformed encoding is refused before any record" {
    const vectors = Vectors.read("CAIRN_VECTORS");
    defer vectors.deinit();
    var err: ?[*:0]u8 = null;
    const copy = cairn_test_open("copy", &err) orelse return error.TestUnexpectedResult;
    defer cairn_test_close(copy);
    for (vectors.list) |v| {
        if (!v.malformed) continue;
        errdefer std.debug.print("malformed {s}\n", .{v.name});
        forgetSeen();
        var returned: Batch = undefined;
        if (cairn_test_process(copy, 0, &v.encoded, false, &returned, &err)) {
            cairn_test_batch_free(&returned);
            return error.TestUnexpectedResult;
        }
        defer free(err);
        try std.testing.expect(std.mem.indexOf(u8, std.mem.span(err.?), "malformed batch") != null);
        try std.testing.expectEqual(@as(usize, 0), seen_len);
    }
}

test "the keyed-chunk vectors encode and decode as the reference's" {
    const vectors = Vectors.read("CAIRN_KEYED_VECTORS");
    defer vectors.deinit();
    var valid: usize = 0;
    for (vectors.list) |v| {
        if (v.malformed) continue;
        errdefer std.debug.print("vector {s}\n", .{v.name});
        valid += 1;
        const entries = if (v.entries_len == 0) &[_]harness.Entry{} else v.entries.?[0..v.entries_len];
        var raw = std.mem.zeroes(cairn.c.cairn_buffer_t);
        defer cairn.c.cairn_buffer_free(&raw);
        const chunk: *cairn.Buffer = @ptrCast(&raw);
        for (entries) |e| chunk.appendChunkEntry(e.key.slice(), if (e.tombstone) null else e.value.slice());
        try std.testing.expectEqualSlices(u8, v.chunk.slice(), chunk.slice());

        var it = (cairn.KeyedChunk{ .key_group = 0, .entries = v.chunk.slice() }).iterator();
        for (entries) |e| {
            const got = (try it.next()).?;
            try std.testing.expectEqualSlices(u8, e.key.slice(), got.key);
            try std.testing.expectEqual(e.tombstone, got.value == null);
            if (got.value) |bytes| try std.testing.expectEqualSlices(u8, e.value.slice(), bytes);
        }
        try std.testing.expectEqual(null, try it.next());
    }
    try std.testing.expect(valid >= 5);
}

test "every malformed keyed chunk is refused" {
    const vectors = Vectors.read("CAIRN_KEYED_VECTORS");
    defer vectors.deinit();
    var malformed: usize = 0;
    for (vectors.list) |v| {
        if (!v.malformed) continue;
        errdefer std.debug.print("malformed {s}\n", .{v.name});
        malformed += 1;
        var it = (cairn.KeyedChunk{ .key_group = 0, .entries = v.chunk.slice() }).iterator();
        const refused = while (true) {
            const entry = it.next() catch break true;
            if (entry == null) break false;
        };
        try std.testing.expect(refused);
    }
    try std.testing.expect(malformed >= 5);
}
