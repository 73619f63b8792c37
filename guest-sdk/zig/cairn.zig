//! Write Cairn jobs in Zig.
//!
//! A job is one WebAssembly component that describes its dataflow graph and implements the
//! operators that graph names. With this module a job is a `describe` function, one struct
//! per operator, and one `exportJob` line; the WIT plumbing and the packed batch encoding
//! stay out of sight:
//!
//! ```zig
//! const std = @import("std");
//! const cairn = @import("cairn");
//!
//! const Upper = struct {
//!     pub fn process(_: *Upper, record: cairn.Record, out: *cairn.Emitter) !void {
//!         out.begin(record.key);
//!         for (record.value) |c| out.writeByte(std.ascii.toUpper(c));
//!         out.end();
//!     }
//! };
//!
//! fn describe(args: cairn.Args, job: *cairn.Graph) !void {
//!     job.name("upper");
//!     _ = job.sourceFile("lines", try args.required("--input"))
//!         .operator("upper", "upper", .rebalance)
//!         .sinkStdout("out", .forward);
//! }
//!
//! comptime {
//!     cairn.exportJob(describe, .{ .upper = Upper });
//! }
//!
//! // A component has no standard error: panics and std.log go to the host's log.
//! pub const panic = cairn.panic;
//! pub const std_options: std.Options = .{ .logFn = cairn.logFn };
//! ```
//!
//! An operator is a struct whose fields all have default values (a fresh instance is `.{}`)
//! with some of these declarations, called for each subtask in this order:
//!
//! - `pub fn open(self: *T, ctx: cairn.Context) !void`: first, once.
//! - `pub fn restoreKeyed(self: *T, chunk: cairn.KeyedChunk, version: u32) !void`: when the
//!   job resumes from a checkpoint or savepoint, once per chunk of keyed state (one key
//!   group's), to migrate chunks of older versions. Without it, chunks of `state_version` go
//!   into the keyed state (`KeyedState.restoreChunk`) and others are refused.
//! - `pub fn restore(self: *T, data: []const u8, version: u32) !void`: then once per item of
//!   operator-wide state (zero or more).
//! - `pub fn restored(self: *T) !void`: then once, the restore complete (to report a
//!   migration).
//! - `pub fn process(self: *T, record: cairn.Record, out: *cairn.Emitter) !void`: required.
//! - `pub fn onTimer(self: *T, timer: cairn.Timer, out: *cairn.Emitter) !void`: a timer it
//!   registered (`cairn.registerTimer`) fired; `timer.record` reaches the key's keyed state.
//! - `pub fn snapshot(self: *T, state: *cairn.Buffer) !void`: the operator-wide state
//!   (nothing written: none).
//! - `pub fn checkpointComplete(self: *T, checkpoint_id: u64) void`.
//! - `pub fn finish(self: *T, out: *cairn.Emitter) !void`: all inputs have ended (and every
//!   event-time timer has fired).
//! - `pub fn deinit(self: *T) void`: the instance goes away.
//!
//! An operator's state has two parts, under one `pub const state_version: u32 = N;`
//! (default 1), stored with both:
//!
//! - keyed state, a value per key (Flink's `ValueState`): a field of type
//!   `cairn.KeyedState(V)` (at most one). The SDK keeps it per key group, snapshots and
//!   restores it, so the job can change parallelism, and `cairn state` shows it. Records of a
//!   by-key input address their key's value; one lookup a counter update:
//!
//!   ```zig
//!   const Count = struct {
//!       counts: cairn.KeyedState(u64) = .{},
//!
//!       pub fn process(self: *Count, record: cairn.Record, out: *cairn.Emitter) !void {
//!           const n = try self.counts.getOrDefault(record);
//!           n.* += 1;
//!           ...
//!       }
//!   };
//!   ```
//!
//! - operator-wide state, small and not per key: what `snapshot` writes, one item per
//!   subtask, shared out on a rescale as `pub const operator_state_mode:
//!   cairn.OperatorStateMode` says (`.split`, the default, or `.@"union"`).
//!
//! Only state of version `state_version` reaches `restoreKeyed` and `restore`, unless
//! `pub const restores_other_versions = true;`: then they get every version, to migrate.
//!
//! Event time: a node's watermark strategy (`Stream.watermarks`, `Stream.idleness`) makes
//! watermarks from the timestamps it emits; operators register timers per key
//! (`registerTimer`), fired through `onTimer`; and `cairn.Windowed(A)` is a window operator
//! over an incremental aggregate `A` (tumbling, sliding or session event-time windows, allowed
//! lateness, late records counted in `numLateRecordsDropped`): see `Windowed`.
//!
//! Errors become the WIT `err` string: `return cairn.fail("bad value {d}", .{v});` sets the
//! message, any other error is reported by its name. Allocate with `cairn.allocator`
//! (libc's malloc, shared with the C SDK).
//!
//! This module is a thin layer over the C SDK (guest-sdk/c): `c` is its header, translated
//! by `zig translate-c`, and a job links its cairn.c and window.c and the WIT bindings
//! generated for `cairn:job@0.4.0`. See docs/guides/zig.md.

const std = @import("std");

/// The C SDK (cairn.h), for anything this module does not wrap.
pub const c = @import("cairn_c");

/// The allocator jobs should use: libc's malloc, the one the C SDK and the WIT bindings use.
pub const allocator = std.heap.c_allocator;

/// The error an operator, `describe` or helper returns after `fail` set its message.
pub const Error = error{CairnFailure};

/// Whether the error being returned carries a message set by `fail`.
var failure_pending = false;

/// Sets the message of the failing call and returns `error.CairnFailure`:
/// `return cairn.fail("missing {s}", .{name});`
pub fn fail(comptime format: []const u8, args: anytype) Error {
    const message = std.fmt.allocPrint(allocator, format, args) catch @panic("out of memory");
    defer allocator.free(message);
    _ = c.cairn_error_bytes(message.ptr, message.len);
    failure_pending = true;
    return error.CairnFailure;
}

/// A C SDK call's status as an error (the C SDK has set its message).
fn check(status: c_int) Error!void {
    if (status == c.CAIRN_OK) return;
    failure_pending = true;
    return error.CairnFailure;
}

/// Turns an error returned to the SDK into CAIRN_ERROR, with a message if `fail` set none.
fn failure(err: anyerror, comptime what: []const u8) c_int {
    if (failure_pending) {
        failure_pending = false;
        return c.CAIRN_ERROR;
    }
    var buffer: [256]u8 = undefined;
    const message = std.fmt.bufPrint(&buffer, what ++ " failed: error.{s}", .{@errorName(err)}) catch what ++ " failed";
    return c.cairn_error_bytes(message.ptr, message.len);
}

// ---------------------------------------------------------------------------------------
// Logging

pub const Level = enum(c_uint) {
    trace = c.CAIRN_LEVEL_TRACE,
    debug = c.CAIRN_LEVEL_DEBUG,
    info = c.CAIRN_LEVEL_INFO,
    warn = c.CAIRN_LEVEL_WARN,
    err = c.CAIRN_LEVEL_ERROR,
};

/// Logs a message into the host's log (tagged with the subtask that wrote it).
pub fn log(level: Level, comptime format: []const u8, args: anytype) void {
    const message = std.fmt.allocPrint(allocator, format, args) catch @panic("out of memory");
    defer allocator.free(message);
    c.cairn_log_bytes(@intFromEnum(level), message.ptr, message.len);
}

/// `std.log` into the host's log: `pub const std_options: std.Options = .{ .logFn = cairn.logFn };`
pub fn logFn(
    comptime level: std.log.Level,
    comptime scope: @EnumLiteral(),
    comptime format: []const u8,
    args: anytype,
) void {
    const prefix = if (scope == .default) "" else "(" ++ @tagName(scope) ++ ") ";
    log(switch (level) {
        .err => .err,
        .warn => .warn,
        .info => .info,
        .debug => .debug,
    }, prefix ++ format, args);
}

fn panicFn(message: []const u8, _: ?usize) noreturn {
    @branchHint(.cold);
    // No allocation here: the panic may be running out of memory.
    var buffer: [1024]u8 = undefined;
    const text = std.fmt.bufPrint(&buffer, "panic: {s}", .{message}) catch message;
    c.cairn_log_bytes(c.CAIRN_LEVEL_ERROR, text.ptr, text.len);
    @trap();
}

/// Panics log their message into the host's log, then trap: `pub const panic = cairn.panic;`
/// in the root file (the default handler would write to a standard error the component does
/// not have).
pub const panic = std.debug.FullPanic(panicFn);

// ---------------------------------------------------------------------------------------
// Records

/// One record of an input batch, borrowed for the `process` call.
pub const Record = struct {
    /// The index of the input (in the node's inputs) the record arrived on.
    input: u32,
    /// Empty: a record without a key.
    key: []const u8,
    value: []const u8,
    /// Milliseconds since the Unix epoch.
    timestamp: ?i64,
    /// On a by-key input, the record's key group (the host's); keyed state needs it.
    key_group: ?u16 = null,

    /// The C SDK's view of the record, as its keyed state reads it (input, key, key group).
    fn raw(self: Record) c.cairn_record_t {
        return .{
            .input = self.input,
            .key = .{ .ptr = self.key.ptr, .len = self.key.len },
            .has_key_group = self.key_group != null,
            .key_group = self.key_group orelse 0,
        };
    }
};

/// The C SDK's record as this module's.
fn recordOf(r: c.cairn_record_t) Record {
    return .{
        .input = r.input,
        .key = bytes(r.key),
        .value = bytes(r.value),
        .timestamp = if (r.has_timestamp) r.timestamp else null,
        .key_group = if (r.has_key_group) r.key_group else null,
    };
}

fn bytes(slice: c.cairn_bytes_t) []const u8 {
    return if (slice.len == 0) &.{} else slice.ptr[0..slice.len];
}

/// Collects the records an operator emits during one call into the batch returned to the
/// host: one growing buffer for all keys and values. Emit a record whole (`emit`,
/// `emitKeyed`, ...) or piece by piece: `begin(key)`, any `write`/`writeByte`/`writeInt`/
/// `print` for the value, then `end()`.
pub const Emitter = opaque {
    fn raw(self: *Emitter) *c.cairn_emitter_t {
        return @ptrCast(@alignCast(self));
    }

    /// Emits a record without a key.
    pub fn emit(self: *Emitter, value: []const u8) void {
        c.cairn_emit(self.raw(), value.ptr, value.len);
    }

    /// Emits a keyed record: `by-key` partitioning downstream routes on `key`.
    pub fn emitKeyed(self: *Emitter, key: []const u8, value: []const u8) void {
        c.cairn_emit_keyed(self.raw(), key.ptr, key.len, value.ptr, value.len);
    }

    /// Emits a keyed record carrying a timestamp (milliseconds since the Unix epoch).
    pub fn emitWithTimestamp(self: *Emitter, key: []const u8, value: []const u8, timestamp: i64) void {
        c.cairn_emit_with_timestamp(self.raw(), key.ptr, key.len, value.ptr, value.len, timestamp);
    }

    /// Copies a record, with its key and timestamp, as it is.
    pub fn push(self: *Emitter, record: Record) void {
        self.begin(record.key);
        self.write(record.value);
        if (record.timestamp) |t| self.endWithTimestamp(t) else self.end();
    }

    /// Starts a record with `key` (empty: no key); its value follows.
    pub fn begin(self: *Emitter, key: []const u8) void {
        c.cairn_emit_begin(self.raw(), key.ptr, key.len);
    }

    /// Appends to the value of the record begun.
    pub fn write(self: *Emitter, value: []const u8) void {
        c.cairn_emit_write(self.raw(), value.ptr, value.len);
    }

    pub fn writeByte(self: *Emitter, byte: u8) void {
        c.cairn_emit_byte(self.raw(), byte);
    }

    /// Appends `n` in decimal.
    pub fn writeInt(self: *Emitter, n: u64) void {
        c.cairn_emit_u64(self.raw(), n);
    }

    /// Appends `n` in decimal, with a `-` when negative.
    pub fn writeSigned(self: *Emitter, n: i64) void {
        c.cairn_buffer_append_i64(&self.raw().data, n);
    }

    /// Appends formatted text (std.fmt) to the value of the record begun.
    pub fn print(self: *Emitter, comptime format: []const u8, args: anytype) void {
        printInto(&self.raw().data, format, args);
    }

    /// Ends the record begun, without a timestamp.
    pub fn end(self: *Emitter) void {
        c.cairn_emit_end(self.raw());
    }

    /// Ends the record begun, with a timestamp.
    pub fn endWithTimestamp(self: *Emitter, timestamp: i64) void {
        c.cairn_emit_end_with_timestamp(self.raw(), timestamp);
    }

    /// Records emitted so far in this call.
    pub fn count(self: *Emitter) usize {
        return c.cairn_emit_count(self.raw());
    }

    /// Sets the timestamp of every record emitted since the `first`-th (0-based, as `count`
    /// counted them before) to `timestamp`.
    pub fn stamp(self: *Emitter, first: usize, timestamp: i64) void {
        c.cairn_emit_stamp(self.raw(), first, timestamp);
    }
};

// ---------------------------------------------------------------------------------------
// Event time: timers, clocks and counters

/// The two clocks timers follow (Flink's `TimeDomain`).
pub const TimeDomain = enum(c_uint) {
    /// The operator's input watermark: the lowest over its inputs' (idle ones aside).
    event_time = c.CAIRN_EVENT_TIME,
    /// The wall clock, milliseconds since the Unix epoch.
    processing_time = c.CAIRN_PROCESSING_TIME,
};

/// A timer that fired, as `onTimer` gets it.
pub const Timer = struct {
    domain: TimeDomain,
    /// The key it was registered for.
    key: []const u8,
    /// When it was set for (ms).
    timestamp: i64,
    /// The timer as a record of its key (no value, its timestamp, its key group): what
    /// `KeyedState` takes to reach the key's value.
    record: Record,
};

/// Registers a timer for `key` at `timestamp` (ms) in `domain` (Flink's `TimerService`):
/// the operator's `onTimer` gets it once the watermark (event time) or the clock (processing
/// time) reaches it. Once per key, domain and timestamp, however often it is registered.
/// `key` must be in this subtask's key groups (the key of a record from a by-key input).
pub fn registerTimer(domain: TimeDomain, key: []const u8, timestamp: i64) Error!void {
    try check(c.cairn_timer_register(@intFromEnum(domain), key.ptr, key.len, timestamp));
}

/// Deletes the timer of `key` at `timestamp` in `domain`, if there is one.
pub fn deleteTimer(domain: TimeDomain, key: []const u8, timestamp: i64) void {
    c.cairn_timer_delete(@intFromEnum(domain), key.ptr, key.len, timestamp);
}

/// The operator's input watermark (ms): `minInt(i64)` before the first, `maxInt(i64)` once
/// every input has ended.
pub fn currentWatermark() i64 {
    return c.cairn_current_watermark();
}

/// The wall clock (ms since the Unix epoch).
pub fn currentProcessingTime() i64 {
    return c.cairn_current_processing_time();
}

/// Adds `delta` to this subtask's counter `name` (in `/metrics` and Flink's vertex metrics;
/// 1 to 64 ASCII letters, digits or `_`: another name fails the call). During `process`,
/// `onTimer` and `finish`.
pub fn counterAdd(name: [:0]const u8, delta: u64) void {
    c.cairn_counter_add(name.ptr, delta);
}

/// Flink's counter of records a window operator dropped for being late.
pub const late_records_dropped = c.CAIRN_LATE_RECORDS_DROPPED;

/// The emitter of side output `name` (Flink's `OutputTag`; 1 to 64 characters) for the
/// current `process`, `onTimer` or `finish` call: its records go to the host as one batch
/// at the end of the call (none if the call fails), to the nodes reading
/// `stream.sideOutput(name)`.
pub fn sideOutput(name: [:0]const u8) *Emitter {
    return @ptrCast(c.cairn_side_output(name.ptr));
}

// ---------------------------------------------------------------------------------------
// Windows

/// A window of event time: `start` included, `end` excluded, in ms.
pub const Window = struct {
    start: i64,
    end: i64,

    /// Its last millisecond: when it fires, and the timestamp of its results.
    pub fn maxTimestamp(self: Window) i64 {
        return self.end - 1;
    }
};

/// How records are put into windows, and how long past its end a window is kept.
pub const Windows = struct {
    raw: c.cairn_windows_t,

    /// Flink's `TumblingEventTimeWindows.of(size)`: `[t - t mod size, … + size)`.
    pub fn tumbling(size_ms: u64) Error!Windows {
        var windows: Windows = .{ .raw = .{} };
        try check(c.cairn_windows_tumbling(&windows.raw, size_ms));
        return windows;
    }

    /// Flink's `SlidingEventTimeWindows.of(size, slide)`: a record is in `size / slide` windows.
    pub fn sliding(size_ms: u64, slide_ms: u64) Error!Windows {
        var windows: Windows = .{ .raw = .{} };
        try check(c.cairn_windows_sliding(&windows.raw, size_ms, slide_ms));
        return windows;
    }

    /// Flink's `EventTimeSessionWindows.withGap(gap)`: a record's window `[t, t + gap)` merges
    /// with every window of its key it overlaps or touches; needs the aggregate's `merge`.
    pub fn session(gap_ms: u64) Error!Windows {
        var windows: Windows = .{ .raw = .{} };
        try check(c.cairn_windows_session(&windows.raw, gap_ms));
        return windows;
    }

    /// Flink's `allowedLateness`: keeps each window `ms` past its end, firing it again for
    /// every record that arrives in that time. Default 0.
    pub fn allowedLateness(self: Windows, ms: u64) Windows {
        var windows = self;
        windows.raw.allowed_lateness = std.math.cast(i64, ms) orelse std.math.maxInt(i64);
        return windows;
    }

    /// Flink's `sideOutputLateData`: late records go to side output `name` as they came,
    /// instead of being dropped and counted. `name` must live as long as the operator (a
    /// literal, or a context option).
    pub fn lateRecordsTo(self: Windows, name: [:0]const u8) Windows {
        var windows = self;
        windows.raw.late_output = name.ptr;
        return windows;
    }
};

/// The window operator over aggregate `A` (Flink's `WindowOperator` with its
/// `EventTimeTrigger`, the C SDK's, which ports the Rust SDK's): name it in `exportJob` as
/// `.count = cairn.Windowed(MyAggregate)`, on a by-key input whose records carry timestamps.
/// `A` declares
///
/// - `pub const Acc: type`: a window's accumulator per key, plain data (no pointers, at most
///   8-byte aligned), all zero bytes for a new window; kept in keyed state as its bytes;
/// - `pub fn windows(ctx: cairn.Context) !cairn.Windows`: the windows, from the node's
///   options;
/// - `pub fn add(acc: *Acc, record: cairn.Record) !void`;
/// - for session windows, `pub fn merge(acc: *Acc, other: *const Acc) !void`;
/// - `pub fn emit(key: []const u8, window: cairn.Window, acc: *const Acc, out: *cairn.Emitter) !void`:
///   a window's result (stamped with the window's last millisecond by the SDK);
/// - and optionally `pub const state_version: u32` (raise it when `Acc` changes).
///
/// A window fires once the watermark passes its end; with an allowed lateness a record
/// arriving within it fires the window again at once; a record all of whose windows are past
/// that is dropped and counted in `numLateRecordsDropped` (or sent to a side output:
/// `Windows.lateRecordsTo`). A key's windows and their timers
/// are checkpointed by key group, so they rescale.
pub fn Windowed(comptime A: type) type {
    if (@alignOf(A.Acc) > 8) @compileError("a window accumulator is 8-byte aligned at most");
    return struct {
        fn acc(ptr: ?*anyopaque) *A.Acc {
            return @ptrCast(@alignCast(ptr.?));
        }

        fn windows(ctx: [*c]const c.cairn_context_t, out: [*c]c.cairn_windows_t) callconv(.c) c_int {
            const w = A.windows(contextOf(ctx)) catch |e| return failure(e, "windows of " ++ @typeName(A));
            out.* = w.raw;
            return c.CAIRN_OK;
        }

        fn add(ptr: ?*anyopaque, record: [*c]const c.cairn_record_t) callconv(.c) c_int {
            A.add(acc(ptr), recordOf(record.*)) catch |e| return failure(e, "add of " ++ @typeName(A));
            return c.CAIRN_OK;
        }

        fn merge(ptr: ?*anyopaque, other: ?*const anyopaque) callconv(.c) c_int {
            A.merge(acc(ptr), @ptrCast(@alignCast(other.?))) catch |e| return failure(e, "merge of " ++ @typeName(A));
            return c.CAIRN_OK;
        }

        fn emit(key: c.cairn_bytes_t, window: c.cairn_window_t, ptr: ?*const anyopaque, out: [*c]c.cairn_emitter_t) callconv(.c) c_int {
            A.emit(bytes(key), .{ .start = window.start, .end = window.end }, @ptrCast(@alignCast(ptr.?)), @ptrCast(out)) catch |e|
                return failure(e, "emit of " ++ @typeName(A));
            return c.CAIRN_OK;
        }

        pub const cairn_aggregate: c.cairn_aggregate_t = .{
            .acc_size = @sizeOf(A.Acc),
            .windows = windows,
            .add = add,
            .merge = if (@hasDecl(A, "merge")) merge else null,
            .emit = emit,
        };
        pub const state_version: u32 = if (@hasDecl(A, "state_version")) A.state_version else 1;
    };
}

fn printInto(buf: *c.cairn_buffer_t, comptime format: []const u8, args: anytype) void {
    const n = std.fmt.count(format, args);
    const to = c.cairn_buffer_reserve(buf, n);
    _ = std.fmt.bufPrint(to[0..n], format, args) catch unreachable;
    buf.len += n;
}

/// A growable byte buffer: `snapshot` writes the state into one.
pub const Buffer = opaque {
    fn raw(self: *Buffer) *c.cairn_buffer_t {
        return @ptrCast(@alignCast(self));
    }

    pub fn append(self: *Buffer, data: []const u8) void {
        c.cairn_buffer_append(self.raw(), data.ptr, data.len);
    }

    pub fn appendByte(self: *Buffer, byte: u8) void {
        c.cairn_buffer_push(self.raw(), byte);
    }

    /// Appends `n` in decimal.
    pub fn appendInt(self: *Buffer, n: u64) void {
        c.cairn_buffer_append_u64(self.raw(), n);
    }

    /// Appends formatted text (std.fmt).
    pub fn print(self: *Buffer, comptime format: []const u8, args: anytype) void {
        printInto(self.raw(), format, args);
    }

    /// The bytes written so far.
    pub fn slice(self: *Buffer) []u8 {
        const b = self.raw();
        return if (b.len == 0) &.{} else b.ptr[0..b.len];
    }

    /// Appends an entry of a keyed chunk (`value` null: a tombstone), in the chunk encoding.
    pub fn appendChunkEntry(self: *Buffer, key: []const u8, value: ?[]const u8) void {
        if (value) |v|
            c.cairn_chunk_put(self.raw(), key.ptr, key.len, v.ptr, v.len)
        else
            c.cairn_chunk_put_tombstone(self.raw(), key.ptr, key.len);
    }
};

// ---------------------------------------------------------------------------------------
// Keyed state

/// How keyed state values are encoded in a checkpoint, so that tools can show them.
pub const ValueEncoding = enum(c_uint) {
    bytes = c.CAIRN_ENCODING_BYTES,
    utf8 = c.CAIRN_ENCODING_UTF8,
    u64_le = c.CAIRN_ENCODING_U64_LE,
    s64_le = c.CAIRN_ENCODING_S64_LE,
    f64_le = c.CAIRN_ENCODING_F64_LE,
    json = c.CAIRN_ENCODING_JSON,
};

/// How operator-wide state is shared out when the parallelism changes: `.split` (each old
/// subtask's item to one new subtask; some get none, some several) or `.@"union"` (every
/// new subtask gets every item).
pub const OperatorStateMode = enum(c_uint) {
    split = c.CAIRN_STATE_SPLIT,
    @"union" = c.CAIRN_STATE_UNION,
};

/// A value of type `V` per key, kept per key group by the SDK (the C SDK's keyed state):
/// a field of an operator struct, `counts: cairn.KeyedState(u64) = .{}`. `V` is `u64`,
/// `i64` or `f64` (8 bytes little-endian), or a type of your own declaring
///
/// - `pub const encoding: cairn.ValueEncoding`,
/// - `pub fn encode(self: *const V, out: *cairn.Buffer) void`,
/// - `pub fn decode(bytes: []const u8) !V`,
/// - and, if it owns memory, `pub fn deinit(self: *V) void`.
///
/// A new value is all zero bytes (0 for the numbers). Pointers to values are valid until the
/// next insertion or removal. Records must come from a by-key input, keys be in this
/// subtask's key groups: else the calls fail, saying so.
pub fn KeyedState(comptime V: type) type {
    if (@alignOf(V) > 8) @compileError("keyed state values are 8-byte aligned at most");
    return struct {
        const Self = @This();

        /// Set by the SDK when the subtask opens.
        raw: ?*c.cairn_keyed_state_t = null,

        pub const is_cairn_keyed_state = true;
        pub const codec: *const c.cairn_value_codec_t = codecOf(V);

        /// The value of the record's key, if it has one.
        pub fn get(self: Self, record: Record) Error!?*V {
            const r = record.raw();
            var value: ?*anyopaque = null;
            try check(c.cairn_keyed_get(self.raw, &r, &value));
            return @ptrCast(@alignCast(value));
        }

        /// The value of the record's key, inserted (zero) if it has none: one lookup.
        pub fn getOrDefault(self: Self, record: Record) Error!*V {
            const r = record.raw();
            var value: ?*anyopaque = null;
            try check(c.cairn_keyed_get_or_insert(self.raw, &r, &value));
            return @ptrCast(@alignCast(value.?));
        }

        /// Sets the value of the record's key (an older value is deinitialised).
        pub fn put(self: Self, record: Record, value: V) Error!void {
            const r = record.raw();
            try check(c.cairn_keyed_put(self.raw, &r, &value));
        }

        /// Removes the record's key, if it has a value.
        pub fn remove(self: Self, record: Record) Error!void {
            const r = record.raw();
            try check(c.cairn_keyed_remove(self.raw, &r));
        }

        /// Sets the value of `key`, which must be in this subtask's key groups: for migrating
        /// state an older encoding kept otherwise.
        pub fn putKey(self: Self, key: []const u8, value: V) Error!void {
            try check(c.cairn_keyed_put_key(self.raw, key.ptr, key.len, &value));
        }

        /// The number of keys.
        pub fn count(self: Self) usize {
            return c.cairn_keyed_count(self.raw);
        }

        /// Adds a chunk written in this state's own encoding (for `restoreKeyed`).
        pub fn restoreChunk(self: Self, chunk: KeyedChunk) Error!void {
            const raw_chunk: c.cairn_keyed_chunk_t = .{
                .key_group = chunk.key_group,
                .entries = .{ .ptr = chunk.entries.ptr, .len = chunk.entries.len },
            };
            try check(c.cairn_keyed_restore_chunk(self.raw, &raw_chunk));
        }

        pub const Entry = struct { key: []const u8, value: *V };

        /// Every key and its value, key group by key group; the state must not change
        /// meanwhile: `var it = state.iterator(); while (it.next()) |entry| ...`
        pub fn iterator(self: Self) Iterator {
            return .{ .raw = self.raw };
        }

        pub const Iterator = struct {
            raw: ?*c.cairn_keyed_state_t,
            at: c.cairn_keyed_iter_t = .{},

            pub fn next(self: *Iterator) ?Entry {
                var key: c.cairn_bytes_t = undefined;
                var value: ?*anyopaque = null;
                if (!c.cairn_keyed_next(self.raw, &self.at, &key, &value)) return null;
                return .{ .key = bytes(key), .value = @ptrCast(@alignCast(value.?)) };
            }
        };
    };
}

/// The C SDK's codec of values of type `V` (see `KeyedState`).
fn codecOf(comptime V: type) *const c.cairn_value_codec_t {
    return switch (V) {
        u64 => &c.cairn_codec_u64,
        i64 => &c.cairn_codec_s64,
        f64 => &c.cairn_codec_f64,
        else => &struct {
            fn value(ptr: ?*anyopaque) *V {
                return @ptrCast(@alignCast(ptr.?));
            }

            fn encode(ptr: ?*const anyopaque, out: [*c]c.cairn_buffer_t) callconv(.c) void {
                V.encode(@ptrCast(@alignCast(ptr.?)), @ptrCast(out));
            }

            fn decode(data: [*c]const u8, len: usize, ptr: ?*anyopaque) callconv(.c) c_int {
                value(ptr).* = V.decode(if (len == 0) &.{} else data[0..len]) catch |e|
                    return failure(e, "decoding a " ++ @typeName(V) ++ " state value");
                return c.CAIRN_OK;
            }

            fn drop(ptr: ?*anyopaque) callconv(.c) void {
                value(ptr).deinit();
            }

            const codec: c.cairn_value_codec_t = .{
                .encoding = @intFromEnum(@as(ValueEncoding, V.encoding)),
                .size = @sizeOf(V),
                .encode = encode,
                .decode = decode,
                .drop = if (@hasDecl(V, "deinit")) drop else null,
            };
        }.codec,
    };
}

/// The keyed state of one key group, as a snapshot wrote it (in the chunk encoding).
pub const KeyedChunk = struct {
    key_group: u16,
    entries: []const u8,

    /// Its entries, one by one: `var it = chunk.iterator(); while (try it.next()) |e| ...`
    pub fn iterator(self: KeyedChunk) ChunkIterator {
        return .{ .entries = .{ .ptr = self.entries.ptr, .len = self.entries.len } };
    }
};

pub const ChunkEntry = struct {
    key: []const u8,
    /// null: a tombstone (the key was deleted).
    value: ?[]const u8,
};

pub const ChunkIterator = struct {
    entries: c.cairn_bytes_t,
    pos: usize = 0,

    /// The next entry, null at the end, or a failure for bytes not in the chunk encoding.
    pub fn next(self: *ChunkIterator) Error!?ChunkEntry {
        var entry: c.cairn_chunk_entry_t = undefined;
        const more = c.cairn_chunk_next(self.entries, &self.pos, &entry);
        if (more == 0) return null;
        if (more != 1) try check(more);
        return .{ .key = bytes(entry.key), .value = if (entry.tombstone) null else bytes(entry.value) };
    }
};

// ---------------------------------------------------------------------------------------
// Text

/// The words of UTF-8 text split on Unicode whitespace (as Rust's `str::split_whitespace`),
/// non-empty: `var it = cairn.words(line); while (it.next()) |word| ...`
pub fn words(text: []const u8) WordIterator {
    return .{ .text = .{ .ptr = text.ptr, .len = text.len } };
}

pub const WordIterator = struct {
    text: c.cairn_bytes_t,
    pos: usize = 0,

    pub fn next(self: *WordIterator) ?[]const u8 {
        var word: c.cairn_bytes_t = undefined;
        if (!c.cairn_next_word(self.text, &self.pos, &word)) return null;
        return word.ptr[0..word.len];
    }
};

/// The length in bytes of the Unicode whitespace character `text` starts with, or 0.
pub fn whitespaceLen(text: []const u8) usize {
    return c.cairn_whitespace_len(text.ptr, text.len);
}

// ---------------------------------------------------------------------------------------
// Context and arguments

/// The C SDK's context as this module's.
fn contextOf(ctx: [*c]const c.cairn_context_t) Context {
    return .{
        .job_id = std.mem.span(ctx.*.job_id),
        .operator_uid = std.mem.span(ctx.*.operator_uid),
        .subtask = ctx.*.subtask,
        .parallelism = ctx.*.parallelism,
        .attempt = ctx.*.attempt,
        .max_parallelism = ctx.*.max_parallelism,
        .key_groups = .{ .first = ctx.*.key_group_first, .last = ctx.*.key_group_last },
        .raw = ctx,
    };
}

/// Where an operator instance runs; lives as long as the instance.
pub const Context = struct {
    /// 32 lowercase hex characters.
    job_id: [:0]const u8,
    operator_uid: [:0]const u8,
    /// 0-based index of this subtask among the node's subtasks.
    subtask: u32,
    parallelism: u32,
    /// 0 on the first run; counts up on every restart of the job.
    attempt: u32,
    /// The number of key groups, fixed for the life of a job.
    max_parallelism: u32,
    /// The key groups this subtask owns, both included.
    key_groups: struct { first: u32, last: u32 },
    raw: *const c.cairn_context_t,

    /// The value of option `name` of this operator's node (the last one set wins).
    pub fn option(self: Context, name: [:0]const u8) ?[:0]const u8 {
        const value = c.cairn_context_option(self.raw, name.ptr) orelse return null;
        return std.mem.span(value);
    }
};

/// The job's arguments: everything after `--` on `cairn run`.
pub const Args = struct {
    raw: *const c.cairn_args_t,

    /// All arguments, as given.
    pub fn len(self: Args) usize {
        return self.raw.len;
    }

    pub fn get(self: Args, index: usize) [:0]const u8 {
        return std.mem.span(self.raw.argv[index]);
    }

    /// The value of option `name` (`--name VALUE` or `--name=VALUE`); the last one wins.
    pub fn value(self: Args, name: [:0]const u8) ?[:0]const u8 {
        const found = c.cairn_args_value(self.raw, name.ptr) orelse return null;
        return std.mem.span(found);
    }

    /// Whether flag `name` (for example `--verbose`) is among the arguments.
    pub fn flag(self: Args, name: [:0]const u8) bool {
        return c.cairn_args_flag(self.raw, name.ptr);
    }

    /// The value of a required option, or a failure naming it.
    pub fn required(self: Args, name: [:0]const u8) Error![:0]const u8 {
        return self.value(name) orelse fail("missing required argument {s}", .{name});
    }

    /// The value of option `name` parsed as integer type `T`, or `default` when absent.
    pub fn int(self: Args, comptime T: type, name: [:0]const u8, default: T) Error!T {
        const raw = self.value(name) orelse return default;
        return std.fmt.parseInt(T, raw, 10) catch |e|
            fail("invalid value \"{s}\" for {s}: {s}", .{ raw, name, @errorName(e) });
    }
};

// ---------------------------------------------------------------------------------------
// The job graph

/// How records travel from an upstream node's subtasks to a downstream node's subtasks.
pub const Partitioning = enum(c_uint) {
    /// Subtask i to subtask i; both sides need the same parallelism.
    forward = c.CAIRN_FORWARD,
    /// Round-robin, batch by batch.
    rebalance = c.CAIRN_REBALANCE,
    /// By hash of the record key.
    by_key = c.CAIRN_BY_KEY,
    /// Every record to every downstream subtask.
    broadcast = c.CAIRN_BROADCAST,
};

/// The graph `describe` builds.
pub const Graph = opaque {
    fn raw(self: *Graph) *c.cairn_graph_t {
        return @ptrCast(self);
    }

    /// Names the job (required).
    pub fn name(self: *Graph, job_name: [:0]const u8) void {
        c.cairn_graph_name(self.raw(), job_name.ptr);
    }

    /// Sets a configuration key in code (Flink names). Overrides the config file; `-D`
    /// overrides it.
    pub fn config(self: *Graph, key: [:0]const u8, val: [:0]const u8) void {
        c.cairn_graph_config(self.raw(), key.ptr, val.ptr);
    }

    /// Adds a source node reading host connector `connector` (`file`, `generator`, `stdin`,
    /// `kafka`).
    pub fn source(self: *Graph, uid: [:0]const u8, connector: [:0]const u8) Stream {
        return .{ .raw = c.cairn_graph_source(self.raw(), uid.ptr, connector.ptr) };
    }

    /// Lines of UTF-8 text file `path`, one record per line.
    pub fn sourceFile(self: *Graph, uid: [:0]const u8, path: [:0]const u8) Stream {
        return .{ .raw = c.cairn_source_file(self.raw(), uid.ptr, path.ptr) };
    }

    /// Lines of the host's standard input (not replayable).
    pub fn sourceStdin(self: *Graph, uid: [:0]const u8) Stream {
        return .{ .raw = c.cairn_source_stdin(self.raw(), uid.ptr) };
    }

    /// The messages of Kafka topic `topic` (each one's key and value), with the option names
    /// of Flink's Kafka SQL connector: `bootstrap_servers` is `properties.bootstrap.servers`
    /// (`host:port`, comma-separated). Other options, set with `option`: `scan.startup.mode`
    /// (`earliest-offset` (default), `latest-offset`, `group-offsets`, `timestamp`,
    /// `specific-offsets`), `scan.bounded.mode` (`unbounded` (default), `latest-offset`,
    /// `group-offsets`, `timestamp`, `specific-offsets`), `properties.group.id`, and any
    /// other Kafka consumer property as `properties.*`.
    pub fn sourceKafka(self: *Graph, uid: [:0]const u8, bootstrap_servers: [:0]const u8, topic: [:0]const u8) Stream {
        return .{ .raw = c.cairn_source_kafka(self.raw(), uid.ptr, bootstrap_servers.ptr, topic.ptr) };
    }
};

/// A node of the graph, to chain further nodes onto.
pub const Stream = struct {
    raw: c.cairn_stream_t,

    /// Adds operator `op` (a name `exportJob` knows) reading this stream.
    pub fn operator(self: Stream, uid: [:0]const u8, op: [:0]const u8, partitioning: Partitioning) Stream {
        return .{ .raw = c.cairn_stream_operator(self.raw, uid.ptr, op.ptr, @intFromEnum(partitioning)) };
    }

    /// Adds a sink writing to host connector `connector` (`file`, `stdout`, `blackhole`,
    /// `kafka`).
    pub fn sink(self: Stream, uid: [:0]const u8, connector: [:0]const u8, partitioning: Partitioning) Stream {
        return .{ .raw = c.cairn_stream_sink(self.raw, uid.ptr, connector.ptr, @intFromEnum(partitioning)) };
    }

    /// Part files in directory `dir`, one series per sink subtask.
    pub fn sinkFile(self: Stream, uid: [:0]const u8, dir: [:0]const u8, partitioning: Partitioning) Stream {
        return .{ .raw = c.cairn_sink_file(self.raw, uid.ptr, dir.ptr, @intFromEnum(partitioning)) };
    }

    /// The host's standard output.
    pub fn sinkStdout(self: Stream, uid: [:0]const u8, partitioning: Partitioning) Stream {
        return .{ .raw = c.cairn_sink_stdout(self.raw, uid.ptr, @intFromEnum(partitioning)) };
    }

    /// Messages (each record's key and value) into Kafka topic `topic`, with the option
    /// names of Flink's Kafka SQL connector: `bootstrap_servers` is
    /// `properties.bootstrap.servers` (`host:port`, comma-separated). Other options, set with
    /// `option`: `sink.delivery-guarantee` (`at-least-once` (default, as Flink's),
    /// `exactly-once`, `none`), `sink.transactional-id-prefix`, and any other Kafka producer
    /// property as `properties.*`.
    pub fn sinkKafka(self: Stream, uid: [:0]const u8, bootstrap_servers: [:0]const u8, topic: [:0]const u8, partitioning: Partitioning) Stream {
        return .{ .raw = c.cairn_sink_kafka(self.raw, uid.ptr, bootstrap_servers.ptr, topic.ptr, @intFromEnum(partitioning)) };
    }

    /// Adds one more input to this node (joins and other non-pipeline graphs).
    pub fn input(self: Stream, upstream: Stream, partitioning: Partitioning) Stream {
        return .{ .raw = c.cairn_stream_input(self.raw, upstream.raw, @intFromEnum(partitioning)) };
    }

    /// The records this node (an operator) emits to its side output `name`
    /// (`cairn.sideOutput`), as a stream to chain nodes onto: an input reading it gets them,
    /// and none of the node's other records.
    pub fn sideOutput(self: Stream, name: [:0]const u8) Stream {
        return .{ .raw = c.cairn_stream_side_output(self.raw, name.ptr) };
    }

    /// Sets this node's parallelism (default: the job's default parallelism).
    pub fn parallelism(self: Stream, n: u32) Stream {
        return .{ .raw = c.cairn_stream_parallelism(self.raw, n) };
    }

    /// Sets an option on this node.
    pub fn option(self: Stream, key: [:0]const u8, val: [:0]const u8) Stream {
        return .{ .raw = c.cairn_stream_option(self.raw, key.ptr, val.ptr) };
    }

    /// Gives this node (a source or an operator) a watermark strategy (Flink's
    /// `forBoundedOutOfOrderness`): watermarks from the timestamps it emits, the highest so
    /// far minus `max_out_of_orderness_ms` minus 1. Without one a node passes on the
    /// watermarks it receives.
    pub fn watermarks(self: Stream, max_out_of_orderness_ms: u64) Stream {
        return .{ .raw = c.cairn_stream_watermarks(self.raw, max_out_of_orderness_ms) };
    }

    /// Flink's `withIdleness`: a subtask that emitted nothing for `idle_timeout_ms` stops
    /// holding downstream watermarks back until it emits again (with a strategy of
    /// out-of-orderness 0 unless `watermarks` set one).
    pub fn idleness(self: Stream, idle_timeout_ms: u64) Stream {
        return .{ .raw = c.cairn_stream_idleness(self.raw, idle_timeout_ms) };
    }
};

// ---------------------------------------------------------------------------------------
// Operators and the job

/// The C SDK's description of operator struct `T`, called `name` in the graph.
pub fn operator(comptime name: [:0]const u8, comptime T: type) c.cairn_operator_t {
    if (@hasDecl(T, "cairn_aggregate")) return .{
        .name = name.ptr,
        .state_version = T.state_version,
        .window = &T.cairn_aggregate,
    };
    if (!@hasDecl(T, "process")) @compileError("operator " ++ @typeName(T) ++ " has no process function");
    const keyed = keyedField(T);
    const Adapter = struct {
        fn self(ptr: ?*anyopaque) *T {
            return @ptrCast(@alignCast(ptr.?));
        }

        fn open(ptr: ?*anyopaque, ctx: [*c]const c.cairn_context_t) callconv(.c) c_int {
            const s = self(ptr);
            s.* = .{};
            if (keyed) |field| @field(s, field).raw = ctx.*.keyed_state;
            if (@hasDecl(T, "open")) s.open(contextOf(ctx)) catch |e| return failure(e, "open of " ++ name);
            return c.CAIRN_OK;
        }

        fn process(ptr: ?*anyopaque, record: [*c]const c.cairn_record_t, out: [*c]c.cairn_emitter_t) callconv(.c) c_int {
            self(ptr).process(recordOf(record.*), @ptrCast(out)) catch |e| return failure(e, "process of " ++ name);
            return c.CAIRN_OK;
        }

        fn onTimer(ptr: ?*anyopaque, domain: c.cairn_time_domain_t, timer: [*c]const c.cairn_record_t, out: [*c]c.cairn_emitter_t) callconv(.c) c_int {
            const record = recordOf(timer.*);
            self(ptr).onTimer(.{
                .domain = @enumFromInt(domain),
                .key = record.key,
                .timestamp = timer.*.timestamp,
                .record = record,
            }, @ptrCast(out)) catch |e| return failure(e, "onTimer of " ++ name);
            return c.CAIRN_OK;
        }

        fn finish(ptr: ?*anyopaque, out: [*c]c.cairn_emitter_t) callconv(.c) c_int {
            self(ptr).finish(@ptrCast(out)) catch |e| return failure(e, "finish of " ++ name);
            return c.CAIRN_OK;
        }

        fn snapshot(ptr: ?*anyopaque, state: [*c]c.cairn_buffer_t) callconv(.c) c_int {
            self(ptr).snapshot(@ptrCast(state)) catch |e| return failure(e, "snapshot of " ++ name);
            return c.CAIRN_OK;
        }

        fn restore(ptr: ?*anyopaque, data: [*c]const u8, len: usize, version: u32) callconv(.c) c_int {
            const state: []const u8 = if (len == 0) &.{} else data[0..len];
            self(ptr).restore(state, version) catch |e| return failure(e, "restore of " ++ name);
            return c.CAIRN_OK;
        }

        fn restoreKeyed(ptr: ?*anyopaque, chunk: [*c]const c.cairn_keyed_chunk_t, version: u32) callconv(.c) c_int {
            const keyed_chunk = KeyedChunk{ .key_group = chunk.*.key_group, .entries = bytes(chunk.*.entries) };
            self(ptr).restoreKeyed(keyed_chunk, version) catch |e| return failure(e, "restoreKeyed of " ++ name);
            return c.CAIRN_OK;
        }

        fn restored(ptr: ?*anyopaque) callconv(.c) c_int {
            self(ptr).restored() catch |e| return failure(e, "restored of " ++ name);
            return c.CAIRN_OK;
        }

        fn checkpointComplete(ptr: ?*anyopaque, checkpoint_id: u64) callconv(.c) void {
            self(ptr).checkpointComplete(checkpoint_id);
        }

        fn close(ptr: ?*anyopaque) callconv(.c) void {
            self(ptr).deinit();
        }
    };
    return .{
        .name = name.ptr,
        // Never 0, so that `self` is a real pointer even for a struct without fields.
        .size = @max(@sizeOf(T), 1),
        .state_version = if (@hasDecl(T, "state_version")) T.state_version else 1,
        .restores_other_versions = @hasDecl(T, "restores_other_versions") and T.restores_other_versions,
        .keyed_values = if (keyed) |field| @FieldType(T, field).codec else null,
        .operator_state_mode = @intFromEnum(@as(OperatorStateMode, if (@hasDecl(T, "operator_state_mode")) T.operator_state_mode else .split)),
        .open = Adapter.open,
        .process = Adapter.process,
        .on_timer = if (@hasDecl(T, "onTimer")) Adapter.onTimer else null,
        .finish = if (@hasDecl(T, "finish")) Adapter.finish else null,
        .snapshot = if (@hasDecl(T, "snapshot")) Adapter.snapshot else null,
        .restore_keyed = if (@hasDecl(T, "restoreKeyed")) Adapter.restoreKeyed else null,
        .restore = if (@hasDecl(T, "restore")) Adapter.restore else null,
        .restored = if (@hasDecl(T, "restored")) Adapter.restored else null,
        .checkpoint_complete = if (@hasDecl(T, "checkpointComplete")) Adapter.checkpointComplete else null,
        .close = if (@hasDecl(T, "deinit")) Adapter.close else null,
    };
}

/// The name of operator struct `T`'s `KeyedState` field, if it has one.
fn keyedField(comptime T: type) ?[]const u8 {
    var found: ?[]const u8 = null;
    const info = @typeInfo(T).@"struct";
    for (info.field_names, info.field_types) |name, Field| {
        if (@typeInfo(Field) != .@"struct" or !@hasDecl(Field, "is_cairn_keyed_state")) continue;
        if (found != null) @compileError("operator " ++ @typeName(T) ++ " has more than one KeyedState field");
        found = name;
    }
    return found;
}

/// Exports the job: `comptime { cairn.exportJob(describe, .{ .split = Split, .count = Count }); }`
/// with `fn describe(args: cairn.Args, job: *cairn.Graph) !void`, and the operators by the
/// names the graph gives them (`.@"my-op" = MyOp` for names that are not identifiers).
pub fn exportJob(comptime describe: anytype, comptime operators: anytype) void {
    const names = std.meta.fieldNames(@TypeOf(operators));
    const Table = struct {
        const ops = blk: {
            var list: [names.len]c.cairn_operator_t = undefined;
            for (names, 0..) |op_name, i| list[i] = operator(op_name, @field(operators, op_name));
            break :blk list;
        };
        const pointers = blk: {
            var list: [names.len + 1]?*const c.cairn_operator_t = undefined;
            for (0..names.len) |i| list[i] = &ops[i];
            list[names.len] = null;
            break :blk list;
        };

        fn describeC(args: [*c]const c.cairn_args_t, graph: ?*c.cairn_graph_t) callconv(.c) c_int {
            describe(Args{ .raw = args }, @ptrCast(graph.?)) catch |e| return failure(e, "describe");
            return c.CAIRN_OK;
        }

        const job: c.cairn_job_t = .{
            .describe = describeC,
            .operators = @ptrCast(&pointers),
        };
    };
    @export(&Table.job, .{ .name = "cairn_job" });
}
