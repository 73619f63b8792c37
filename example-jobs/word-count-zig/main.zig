//! Word count in Zig: the same job as the Rust `word-count` — same arguments, graph and
//! output (`word<TAB>n` for the n-th occurrence of each word) — and the same `count` state,
//! so that Zig, C, Rust and the other languages' word counts resume from each other's
//! checkpoints and savepoints, at any parallelism.
//!
//!   cairn run word-count-zig.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
//!
//! (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
//! paces reading the file.) `kafka://HOST:PORT/TOPIC` as input reads the topic from its
//! earliest offset to the end it had when the job first started, then ends, as a file does;
//! as output it writes the topic exactly-once. Each output record is keyed by its word (a
//! Kafka output topic is keyed by word; files hold the values).
//!
//! The `count` state is version 3 of word count's shared encodings: keyed state, key the
//! word (UTF-8), value its count, u64 little-endian; no operator-wide state. It also reads
//! version 2 (operator-wide UTF-8 `word<TAB>count<LF>` lines, what the word counts on
//! cairn:job@0.2.0 wrote) and version 4 (keyed, the count in decimal digits, what Rust's
//! `word-count-v2` writes), moving their counts into its keyed state; version 1 (Rust's
//! postcard, only in very old savepoints) is refused.

const std = @import("std");
const cairn = @import("cairn");

/// Splits lines into words on Unicode whitespace, keyed by the word. Keeps no state.
const Split = struct {
    pub fn process(_: *Split, line: cairn.Record, out: *cairn.Emitter) !void {
        var words = cairn.words(line.value);
        while (words.next()) |word| out.emitKeyed(word, "");
    }
};

/// Counts occurrences per word (a counter per word in keyed state) and emits the running
/// count.
const Count = struct {
    counts: cairn.KeyedState(u64) = .{},
    /// Counts migrated from an older encoding, and from which: reported once restored.
    migrated: usize = 0,
    migrated_from: u32 = 0,

    pub const state_version: u32 = 3;
    pub const restores_other_versions = true;

    pub fn process(self: *Count, record: cairn.Record, out: *cairn.Emitter) !void {
        const n = try self.counts.getOrDefault(record);
        n.* += 1;
        out.begin(record.key);
        out.write(record.key);
        out.writeByte('\t');
        out.writeInt(n.*);
        out.end();
    }

    /// Version 3 is this count's own; version 4's decimal counts are moved in one by one.
    pub fn restoreKeyed(self: *Count, chunk: cairn.KeyedChunk, version: u32) !void {
        if (version == 3) return self.counts.restoreChunk(chunk);
        if (version != 4) return unknownVersion(version);
        var entries = chunk.iterator();
        while (try entries.next()) |entry| {
            const digits = entry.value orelse continue;
            try self.migrate(entry.key, try parseCount(digits, version), version);
        }
    }

    /// Version 2: operator-wide `word<TAB>count<LF>` lines, each word moved into keyed state.
    pub fn restore(self: *Count, data: []const u8, version: u32) !void {
        if (version != 2) return unknownVersion(version);
        var lines = std.mem.splitScalar(u8, data, '\n');
        var line_no: usize = 0;
        while (lines.next()) |line| {
            line_no += 1;
            if (line.len == 0 and lines.peek() == null) break; // after the last line feed
            const tab = std.mem.indexOfScalar(u8, line, '\t') orelse
                return cairn.fail("version 2 state: line {d} is not word<TAB>count", .{line_no});
            try self.migrate(line[0..tab], try parseCount(line[tab + 1 ..], version), version);
        }
    }

    pub fn restored(self: *Count) !void {
        if (self.migrated > 0)
            cairn.log(.info, "migrated {d} word counts from state version {d}", .{ self.migrated, self.migrated_from });
        self.migrated = 0;
    }

    fn migrate(self: *Count, word: []const u8, n: u64, version: u32) !void {
        try self.counts.putKey(word, n);
        self.migrated += 1;
        self.migrated_from = version;
    }

    fn parseCount(digits: []const u8, version: u32) !u64 {
        return std.fmt.parseUnsigned(u64, digits, 10) catch
            return cairn.fail("version {d} state: a count is not a number", .{version});
    }

    fn unknownVersion(version: u32) cairn.Error {
        return cairn.fail("unknown state version {d}: this count reads versions 2, 3 and 4", .{version});
    }
};

fn describe(args: cairn.Args, job: *cairn.Graph) !void {
    const input = try args.required("--input");
    const output = try args.required("--output");
    const rate = args.value("--rate");
    const from = try KafkaUrl.parse("--input", input);
    defer if (from) |url| url.deinit();
    if (from != null and rate != null)
        return cairn.fail("--rate paces a file input; it does not apply to {s}", .{input});
    const to = try KafkaUrl.parse("--output", output);
    defer if (to) |url| url.deinit();

    job.name("word-count");
    const lines = if (from) |url|
        job.sourceKafka("lines", url.servers, url.topic).option("scan.bounded.mode", "latest-offset")
    else if (std.mem.eql(u8, input, "-"))
        job.sourceStdin("lines")
    else if (rate) |lines_per_s|
        job.sourceFile("lines", input).option("rate", lines_per_s)
    else
        job.sourceFile("lines", input);
    const counts = lines.parallelism(1)
        .operator("split", "split", .rebalance)
        .operator("count", "count", .by_key);
    if (to) |url|
        _ = counts.sinkKafka("out", url.servers, url.topic, .forward).option("sink.delivery-guarantee", "exactly-once")
    else if (std.mem.eql(u8, output, "-"))
        _ = counts.sinkStdout("out", .forward)
    else
        _ = counts.sinkFile("out", output, .forward);
}

/// A `kafka://HOST:PORT/TOPIC` argument: its bootstrap servers and topic.
const KafkaUrl = struct {
    /// Allocated: free with `deinit`.
    servers: [:0]const u8,
    topic: [:0]const u8,

    /// Argument `name`'s value as a Kafka URL; null if it is not one, an error if it is a
    /// malformed one.
    fn parse(name: []const u8, value: [:0]const u8) !?KafkaUrl {
        const scheme = "kafka://";
        if (!std.mem.startsWith(u8, value, scheme)) return null;
        const address = value[scheme.len..];
        if (std.mem.indexOfScalar(u8, address, '/')) |slash| {
            const topic = address[slash + 1 ..];
            if (slash > 0 and topic.len > 0 and std.mem.indexOfScalar(u8, topic, '/') == null)
                return .{ .servers = try cairn.allocator.dupeSentinel(u8, address[0..slash], 0), .topic = topic };
        }
        return cairn.fail("invalid {s} {s}: expected kafka://HOST:PORT/TOPIC", .{ name, value });
    }

    fn deinit(self: KafkaUrl) void {
        cairn.allocator.free(self.servers);
    }
};

comptime {
    cairn.exportJob(describe, .{ .split = Split, .count = Count });
}

/// A component has no standard error: panics and std.log go to the host's log.
pub const panic = cairn.panic;
pub const std_options: std.Options = .{ .logFn = cairn.logFn };
