//! The C SDK's native test harness (guest-sdk/c/tests/harness.h), declared for the Zig
//! SDK's tests and word-count-zig's: it reads the golden vectors and drives the WIT exports
//! as the host does.

const std = @import("std");

pub const Batch = extern struct {
    data: ?[*]u8,
    data_len: usize,
    offsets: ?[*]u32,
    offsets_len: usize,
    timestamps: ?[*]i64,
    timestamps_len: usize,
};

pub const VectorRecord = extern struct {
    has_key: bool,
    key: ?[*]u8,
    key_len: usize,
    value: ?[*]u8,
    value_len: usize,
    has_timestamp: bool,
    timestamp: i64,
};

pub const Bytes = extern struct {
    ptr: ?[*]u8,
    len: usize,

    pub fn of(text: []const u8) Bytes {
        return .{ .ptr = @constCast(text.ptr), .len = text.len };
    }

    pub fn slice(self: Bytes) []const u8 {
        return if (self.len == 0) &.{} else self.ptr.?[0..self.len];
    }
};

pub const Entry = extern struct {
    key: Bytes,
    tombstone: bool,
    value: Bytes,
};

pub const Vector = extern struct {
    name: [*:0]u8,
    malformed: bool,
    records: ?[*]VectorRecord,
    records_len: usize,
    encoded: Batch,
    entries: ?[*]Entry,
    entries_len: usize,
    chunk: Bytes,
};

pub const Chunk = extern struct {
    key_group: u16,
    entries: Bytes,
};

pub const Snapshot = extern struct {
    version: u32,
    items: ?[*]Bytes,
    items_len: usize,
    /// 0: split, 1: union.
    mode: u8,
    chunks: ?[*]Chunk,
    chunks_len: usize,
    value_encoding: u8,

    pub fn itemList(self: Snapshot) []const Bytes {
        return if (self.items_len == 0) &.{} else self.items.?[0..self.items_len];
    }

    pub fn chunkList(self: Snapshot) []const Chunk {
        return if (self.chunks_len == 0) &.{} else self.chunks.?[0..self.chunks_len];
    }
};

pub const max_parallelism = 8;

pub extern fn cairn_test_read_vectors(path: [*:0]const u8, vectors: *?[*]Vector) usize;
pub extern fn cairn_test_free_vectors(vectors: ?[*]Vector, count: usize) void;
pub extern fn cairn_test_key_group(key: [*]const u8, len: usize) u16;
pub extern fn cairn_test_open(name: [*:0]const u8, err: *?[*:0]u8) ?*anyopaque;
pub extern fn cairn_test_open_subtask(name: [*:0]const u8, first: u32, last: u32, err: *?[*:0]u8) ?*anyopaque;
pub extern fn cairn_test_process(instance: *anyopaque, input: u32, batch: *const Batch, by_key: bool, out: *Batch, err: *?[*:0]u8) bool;
pub extern fn cairn_test_process_keys(instance: *anyopaque, input: u32, by_key: bool, keys: [*]const [*:0]const u8, n: usize, value: ?[*:0]const u8) [*:0]const u8;
pub extern fn cairn_test_snapshot(instance: *anyopaque, out: *Snapshot, err: *?[*:0]u8) bool;
pub extern fn cairn_test_snapshot_free(snapshot: *Snapshot) void;
pub extern fn cairn_test_restore_keyed(instance: *anyopaque, version: u32, chunks: [*]const Chunk, len: usize, err: *?[*:0]u8) bool;
pub extern fn cairn_test_restore(instance: *anyopaque, version: u32, items: [*]const Bytes, len: usize, err: *?[*:0]u8) bool;
pub extern fn cairn_test_restore_all(instance: *anyopaque, version: u32, chunks: [*]const Chunk, chunks_len: usize, items: [*]const Bytes, items_len: usize) [*:0]const u8;
pub extern fn cairn_test_open_with_options(name: [*:0]const u8, options: [*]const [*:0]const u8, n: usize, err: *?[*:0]u8) ?*anyopaque;
pub extern fn cairn_test_process_stamped(instance: *anyopaque, keys: [*]const [*:0]const u8, timestamps: [*]const i64, n: usize) [*:0]const u8;
pub extern fn cairn_test_advance(instance: *anyopaque, domain: c_int, time: i64) [*:0]const u8;
pub extern fn cairn_test_end_of_input(instance: *anyopaque) [*:0]const u8;
pub extern fn cairn_test_timers() usize;
pub extern fn cairn_test_counter(name: [*:0]const u8) u64;
pub extern fn cairn_test_reset_host() void;
pub extern fn cairn_test_side_output(name: [*:0]const u8) [*:0]const u8;

/// What was sent to side output `name`: `key:value@timestamp`, comma-separated.
pub fn sideOutput(name: [*:0]const u8) []const u8 {
    return std.mem.span(cairn_test_side_output(name));
}
pub extern fn cairn_test_close(instance: *anyopaque) void;
pub extern fn cairn_test_batch_free(batch: *Batch) void;
pub extern fn free(ptr: ?*anyopaque) void;
extern fn getenv(name: [*:0]const u8) ?[*:0]const u8;

/// The golden vectors of the file environment variable `variable` names.
pub const Vectors = struct {
    raw: ?[*]Vector,
    list: []const Vector,

    pub fn read(variable: [*:0]const u8) Vectors {
        const path = getenv(variable) orelse @panic("set the vectors file's environment variable");
        var raw: ?[*]Vector = null;
        const n = cairn_test_read_vectors(path, &raw);
        return .{ .raw = raw, .list = if (n == 0) &.{} else raw.?[0..n] };
    }

    pub fn deinit(self: Vectors) void {
        cairn_test_free_vectors(self.raw, self.list.len);
    }
};

/// Opens operator `name` as the subtask of key groups `first` to `last`.
pub fn open(name: [*:0]const u8, first: u32, last: u32) !*anyopaque {
    var err: ?[*:0]u8 = null;
    return cairn_test_open_subtask(name, first, last, &err) orelse {
        std.debug.print("cannot open {s}: {s}\n", .{ name, err.? });
        return error.TestUnexpectedResult;
    };
}

/// Opens operator `name` as the only subtask, its node's options `options` (key, value
/// pairs), with the harness's host reset (no timers or counters, no watermark yet).
pub fn openWithOptions(name: [*:0]const u8, options: []const [*:0]const u8) !*anyopaque {
    cairn_test_reset_host();
    var err: ?[*:0]u8 = null;
    return cairn_test_open_with_options(name, options.ptr, options.len / 2, &err) orelse {
        std.debug.print("cannot open {s}: {s}\n", .{ name, err.? });
        return error.TestUnexpectedResult;
    };
}

/// Processes records `keys` (empty values) at `timestamps` on by-key input 0: what was
/// emitted as `value@timestamp`, comma-separated, or "error: MESSAGE".
pub fn processStamped(instance: *anyopaque, keys: []const [*:0]const u8, timestamps: []const i64) []const u8 {
    std.debug.assert(keys.len == timestamps.len);
    return std.mem.span(cairn_test_process_stamped(instance, keys.ptr, timestamps.ptr, keys.len));
}

/// Moves the event-time clock (the watermark) to `time`, firing the timers due: what they
/// emitted, as `processStamped` shows it.
pub fn advanceWatermark(instance: *anyopaque, time: i64) []const u8 {
    return std.mem.span(cairn_test_advance(instance, 0, time));
}

/// Moves the processing-time clock to `time`, firing the timers due.
pub fn advanceProcessingTime(instance: *anyopaque, time: i64) []const u8 {
    return std.mem.span(cairn_test_advance(instance, 1, time));
}

/// The watermark to its end, then `finish`: what they emitted.
pub fn endOfInput(instance: *anyopaque) []const u8 {
    return std.mem.span(cairn_test_end_of_input(instance));
}

/// Processes records `keys` (values `value`, or empty) on input `input`, with their key
/// groups when `by_key`: the values emitted, comma-separated, or "error: MESSAGE".
pub fn process(instance: *anyopaque, input: u32, by_key: bool, keys: []const [*:0]const u8, value: ?[*:0]const u8) []const u8 {
    return std.mem.span(cairn_test_process_keys(instance, input, by_key, keys.ptr, keys.len, value));
}

/// restore-keyed with `chunks` then restore with `items`: "" or "error: MESSAGE".
pub fn restore(instance: *anyopaque, version: u32, chunks: []const Chunk, items: []const Bytes) []const u8 {
    return std.mem.span(cairn_test_restore_all(instance, version, chunks.ptr, chunks.len, items.ptr, items.len));
}

pub fn snapshot(instance: *anyopaque) !Snapshot {
    var s: Snapshot = undefined;
    var err: ?[*:0]u8 = null;
    if (!cairn_test_snapshot(instance, &s, &err)) {
        std.debug.print("snapshot: {s}\n", .{err.?});
        return error.TestUnexpectedResult;
    }
    return s;
}
