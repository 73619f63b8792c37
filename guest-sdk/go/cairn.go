// Package cairn is the SDK for Cairn jobs in Go: a job describes its dataflow graph and
// implements the operators the graph names, and is built into one WebAssembly component of
// the `cairn-job` world (cairn:job@0.4.0).
//
// The SDK hides the contract: batches cross the boundary once each, packed, and are decoded
// here into records handed to an operator one by one; what an operator emits is packed
// again. Errors returned (or panics) become the call's `err`, with their message.
//
// A job registers itself in an init function, and has an empty main:
//
//	func init() { cairn.Register(describe, cairn.Def{Name: "split", New: newSplit}) }
//	func main() {}
package cairn

import (
	"errors"
	"strconv"
	"strings"
)

// Context says where an operator instance runs.
type Context struct {
	// JobID is 32 lowercase hex characters.
	JobID       string
	OperatorUID string
	// Subtask is the 0-based index of this subtask among its node's Parallelism.
	Subtask     uint32
	Parallelism uint32
	// Attempt is 0 on the first run and counts the job's restarts.
	Attempt uint32
	// Options are the operator's node's options in the graph.
	Options [][2]string
	// MaxParallelism is the number of key groups; this subtask owns FirstKeyGroup to
	// LastKeyGroup, both included.
	MaxParallelism uint32
	FirstKeyGroup  uint32
	LastKeyGroup   uint32
	keyed          keyedState
}

// Option is the value of the node option name, if it is set.
func (c *Context) Option(name string) (string, bool) {
	for _, option := range c.Options {
		if option[0] == name {
			return option[1], true
		}
	}
	return "", false
}

// Operator processes the records of an operator subtask. It may also implement Opener,
// TimerHandler, Finisher, StateSnapshotter, StateRestorer, KeyedRestorer and
// CheckpointListener.
type Operator interface {
	// Process processes one record, emitting records to out.
	Process(r *Record, out *Emitter) error
}

// Opener is an Operator with something to do once its state is restored, before it
// processes records: Open is called after New, and again after every restore.
type Opener interface {
	Open(ctx *Context) error
}

// TimerHandler is an Operator that registers timers (RegisterTimer): OnTimer is called once
// per timer fired, in firing order (timestamp, then key).
type TimerHandler interface {
	OnTimer(t *Timer, out *Emitter) error
}

// Timer is a timer that fired: its Domain, and the Record of its key (Key, and Timestamp:
// when it was set for), through which the operator's KeyedState reaches the key's state as
// for a record of a by-key input. Key aliases the host's batch: copy it to keep it.
type Timer struct {
	Record
	Domain TimeDomain
}

// Finisher is an Operator with last records to emit once all its inputs have ended (and,
// in event time, every timer has fired).
type Finisher interface {
	Finish(out *Emitter) error
}

// StateSnapshotter is an Operator with operator-wide state (small, not per key): its
// snapshot is one item of the operator state (empty: none).
type StateSnapshotter interface {
	SnapshotState() ([]byte, error)
}

// StateRestorer restores operator-wide state: once per item received, after every keyed
// chunk, with the state version that wrote it. After a rescale a subtask may receive no
// item, or several (Def.Union: every old subtask's).
type StateRestorer interface {
	RestoreState(data []byte, version uint32) error
}

// KeyedRestorer restores keyed state chunks itself, for migrations from other versions
// (without it, the SDK restores chunks of Def.StateVersion into the operator's KeyedState
// and refuses others).
type KeyedRestorer interface {
	RestoreKeyed(chunk Chunk, version uint32) error
}

// CheckpointListener hears that a checkpoint is durable.
type CheckpointListener interface {
	CheckpointComplete(checkpointID uint64)
}

// Def defines an operator of the job, by the name the graph gives it.
type Def struct {
	Name string
	// New makes an operator instance for a subtask; its KeyedState, if any, is made here
	// with NewKeyedState(ctx, codec).
	New func(ctx *Context) (Operator, error)
	// StateVersion is the version of the encoding of the operator's state (both parts).
	StateVersion uint32
	// Union shares out operator-wide state in union mode: after a rescale every subtask
	// gets every old subtask's item (default: split, the items divided among subtasks).
	Union bool
}

var job struct {
	describe func(args Args) (*Graph, error)
	defs     []Def
}

// Register registers the job: its describe function and its operators. Call it from an init
// function of package main.
func Register(describe func(args Args) (*Graph, error), defs ...Def) {
	job.describe = describe
	job.defs = defs
}

// instance is one operator subtask.
type instance struct {
	def      *Def
	ctx      Context
	op       Operator
	out      Emitter
	restored bool
}

func open(ctx Context, name string) (*instance, error) {
	for i := range job.defs {
		if def := &job.defs[i]; def.Name == name {
			inst := &instance{def: def, ctx: ctx}
			op, err := def.New(&inst.ctx)
			if err != nil {
				return nil, err
			}
			inst.op = op
			return inst, inst.open()
		}
	}
	return nil, errors.New("this job has no operator named " + strconv.Quote(name))
}

func (inst *instance) open() error {
	if o, ok := inst.op.(Opener); ok {
		return o.Open(&inst.ctx)
	}
	return nil
}

func (inst *instance) process(input uint32, batch packed, keyGroups []uint16) (packed, error) {
	if err := batch.check(); err != nil {
		return packed{}, err
	}
	n := len(batch.offsets) / 2
	if len(keyGroups) != 0 && len(keyGroups) != n {
		return packed{}, errors.New(strconv.Itoa(len(keyGroups)) + " key groups for " + strconv.Itoa(n) + " records")
	}
	r := Record{input: input, keyGroup: -1}
	for i := 0; i < n; i++ {
		batch.record(i, &r)
		if len(keyGroups) != 0 {
			r.keyGroup = int32(keyGroups[i])
		}
		if err := inst.op.Process(&r, &inst.out); err != nil {
			inst.out.take()
			return packed{}, err
		}
	}
	return inst.out.take(), nil
}

func (inst *instance) onTimer(domain TimeDomain, timers packed, keyGroups []uint16) (packed, error) {
	if err := timers.check(); err != nil {
		return packed{}, err
	}
	n := len(timers.offsets) / 2
	if len(keyGroups) != n || len(timers.timestamps) != n {
		return packed{}, errors.New("the host fired " + strconv.Itoa(n) + " timers with " +
			strconv.Itoa(len(keyGroups)) + " key groups and " + strconv.Itoa(len(timers.timestamps)) + " timestamps")
	}
	h, ok := inst.op.(TimerHandler)
	if !ok {
		return packed{}, errors.New("a timer fired, but operator " + strconv.Quote(inst.def.Name) +
			" does not implement OnTimer (TimerHandler)")
	}
	t := Timer{Domain: domain}
	for i := 0; i < n; i++ {
		timers.record(i, &t.Record)
		t.keyGroup = int32(keyGroups[i])
		if err := h.OnTimer(&t, &inst.out); err != nil {
			inst.out.take()
			return packed{}, err
		}
	}
	return inst.out.take(), nil
}

func (inst *instance) finish() (packed, error) {
	if f, ok := inst.op.(Finisher); ok {
		if err := f.Finish(&inst.out); err != nil {
			inst.out.take()
			return packed{}, err
		}
	}
	return inst.out.take(), nil
}

// snapshotState is a snapshot as the contract has it.
type snapshotState struct {
	version  uint32
	items    [][]byte
	union    bool
	keyed    []Chunk
	encoding ValueEncoding
}

func (inst *instance) snapshot() (snapshotState, error) {
	s := snapshotState{version: inst.def.StateVersion, union: inst.def.Union}
	if ss, ok := inst.op.(StateSnapshotter); ok {
		item, err := ss.SnapshotState()
		if err != nil {
			return s, err
		}
		if len(item) != 0 {
			s.items = [][]byte{item}
		}
	}
	if inst.ctx.keyed != nil {
		s.keyed = inst.ctx.keyed.snapshot()
		s.encoding = inst.ctx.keyed.encoding()
	}
	return s, nil
}

func (inst *instance) restoreKeyed(version uint32, chunks []Chunk) error {
	for _, chunk := range chunks {
		var err error
		if kr, ok := inst.op.(KeyedRestorer); ok {
			err = kr.RestoreKeyed(chunk, version)
		} else if err = inst.checkVersion(version); err == nil {
			if inst.ctx.keyed == nil {
				return errors.New("keyed state received, but operator " + strconv.Quote(inst.def.Name) + " has no KeyedState")
			}
			err = inst.ctx.keyed.restore(chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (inst *instance) restore(version uint32, items [][]byte) error {
	for _, item := range items {
		sr, ok := inst.op.(StateRestorer)
		if !ok {
			return errors.New("operator-wide state received, but operator " + strconv.Quote(inst.def.Name) + " restores none (implement StateRestorer)")
		}
		if err := sr.RestoreState(item, version); err != nil {
			return err
		}
	}
	return inst.open()
}

func (inst *instance) checkVersion(version uint32) error {
	if version == inst.def.StateVersion {
		return nil
	}
	return errors.New("the state is in encoding version " + strconv.FormatUint(uint64(version), 10) +
		", this operator reads version " + strconv.FormatUint(uint64(inst.def.StateVersion), 10) +
		"; implement KeyedRestorer (and StateRestorer) to migrate it")
}

func (inst *instance) checkpointComplete(id uint64) {
	if l, ok := inst.op.(CheckpointListener); ok {
		l.CheckpointComplete(id)
	}
}

// Args are the arguments after `--` on `cairn run`.
type Args []string

// Value is the value of option name (`name value` or `name=value`; the last one wins).
func (a Args) Value(name string) (string, bool) {
	value, found := "", false
	for i := 0; i < len(a); i++ {
		if a[i] == name && i+1 < len(a) {
			value, found = a[i+1], true
			i++
		} else if v, ok := strings.CutPrefix(a[i], name+"="); ok {
			value, found = v, true
		}
	}
	return value, found
}

// Required is the value of option name, or an error saying it is missing.
func (a Args) Required(name string) (string, error) {
	if v, ok := a.Value(name); ok {
		return v, nil
	}
	return "", errors.New("missing required argument " + name)
}

// Level is a log level.
type Level uint32

const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Log writes a message to the host's log, tagged with the subtask.
func Log(level Level, message string) { hostLog(level, message) }

func Debug(message string) { hostLog(LevelDebug, message) }
func Info(message string)  { hostLog(LevelInfo, message) }
func Warn(message string)  { hostLog(LevelWarn, message) }

var errNoJob = errors.New("no job registered: call cairn.Register in an init function of package main")

// panicError is the error of a panic in an operator, so that it reaches the host as the
// call's err rather than as a trap.
func panicError(p any) error {
	switch p := p.(type) {
	case error:
		return errors.New("panic: " + p.Error())
	case string:
		return errors.New("panic: " + p)
	default:
		return errors.New("panic in the job's code")
	}
}
