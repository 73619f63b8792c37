//! Word count in Zig: the same job as the Rust `word-count` — same arguments, graph and
//! output (`word<TAB>n` for the n-th occurrence of each word) — with the `count` state in
//! encoding version 2 of `word-count-v2`, so that Zig, C and Rust word counts resume from
//! each other's checkpoints and savepoints.
//!
//!   cairn run word-count-zig.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
//!
//! (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
//! paces reading the file.)
//!
//! The `count` state, version 2: UTF-8 text, one `word<TAB>count<LF>` line per word, sorted
//! by word bytewise. Words never contain whitespace, so the format needs no escaping.

const std = @import("std");
const cairn = @import("cairn");

/// Splits lines into words on Unicode whitespace, keyed by the word. Keeps no state.
const Split = struct {
    pub fn process(_: *Split, line: cairn.Record, out: *cairn.Emitter) !void {
        var words = cairn.words(line.value);
        while (words.next()) |word| out.emitKeyed(word, "");
    }
};

/// Counts occurrences per word and emits the running count.
const Count = struct {
    counts: std.StringHashMapUnmanaged(u64) = .empty,

    pub const state_version: u32 = 2;

    pub fn process(self: *Count, record: cairn.Record, out: *cairn.Emitter) !void {
        const word = record.key;
        if (word.len == 0) return cairn.fail("count: a record without a key (a word)", .{});
        const n = try self.entry(word);
        n.* += 1;
        out.begin("");
        out.write(word);
        out.writeByte('\t');
        out.writeInt(n.*);
        out.end();
    }

    /// The count of `word`, added as 0 if new.
    fn entry(self: *Count, word: []const u8) !*u64 {
        const slot = try self.counts.getOrPut(cairn.allocator, word);
        if (!slot.found_existing) {
            slot.key_ptr.* = try cairn.allocator.dupe(u8, word);
            slot.value_ptr.* = 0;
        }
        return slot.value_ptr;
    }

    pub fn snapshot(self: *Count, state: *cairn.Buffer) !void {
        const sorted = try cairn.allocator.alloc([]const u8, self.counts.count());
        defer cairn.allocator.free(sorted);
        var keys = self.counts.keyIterator();
        var i: usize = 0;
        while (keys.next()) |key| : (i += 1) sorted[i] = key.*;
        std.mem.sortUnstable([]const u8, sorted, {}, lessThan);
        for (sorted) |word| {
            state.append(word);
            state.appendByte('\t');
            state.appendInt(self.counts.get(word).?);
            state.appendByte('\n');
        }
    }

    fn lessThan(_: void, a: []const u8, b: []const u8) bool {
        return std.mem.lessThan(u8, a, b);
    }

    /// Reads version 2 only: the SDK refuses other versions before this is called.
    pub fn restore(self: *Count, data: []const u8, _: u32) !void {
        self.clear();
        var lines = std.mem.splitScalar(u8, data, '\n');
        var line_no: usize = 0;
        while (lines.next()) |line| {
            line_no += 1;
            if (line.len == 0 and lines.peek() == null) break; // after the last line feed
            const tab = std.mem.indexOfScalar(u8, line, '\t') orelse
                return cairn.fail("version 2 state: line {d} is not word<TAB>count", .{line_no});
            if (tab == 0) return cairn.fail("version 2 state: line {d} has no word", .{line_no});
            const n = std.fmt.parseInt(u64, line[tab + 1 ..], 10) catch
                return cairn.fail("version 2 state: bad count in line {d}", .{line_no});
            (try self.entry(line[0..tab])).* = n;
        }
    }

    fn clear(self: *Count) void {
        var keys = self.counts.keyIterator();
        while (keys.next()) |key| cairn.allocator.free(key.*);
        self.counts.clearAndFree(cairn.allocator);
    }

    pub fn deinit(self: *Count) void {
        self.clear();
    }
};

fn describe(args: cairn.Args, job: *cairn.Graph) !void {
    const input = try args.required("--input");
    const output = try args.required("--output");
    job.name("word-count");
    var lines = if (std.mem.eql(u8, input, "-"))
        job.sourceStdin("lines")
    else
        job.sourceFile("lines", input);
    if (args.value("--rate")) |rate| {
        if (!std.mem.eql(u8, input, "-")) lines = lines.option("rate", rate);
    }
    const counts = lines.parallelism(1)
        .operator("split", "split", .rebalance)
        .operator("count", "count", .by_key);
    if (std.mem.eql(u8, output, "-"))
        _ = counts.sinkStdout("out", .forward)
    else
        _ = counts.sinkFile("out", output, .forward);
}

comptime {
    cairn.exportJob(describe, .{ .split = Split, .count = Count });
}

/// A component has no standard error: panics and std.log go to the host's log.
pub const panic = cairn.panic;
pub const std_options: std.Options = .{ .logFn = cairn.logFn };
