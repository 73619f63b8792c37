// Package wordcount is what the word counts in Go share (word-count-go, windowed-count-go),
// as Rust's share the word-count crate: how a text splits into words, and the source and
// sink their `--input` and `--output` arguments name.
package wordcount

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"cairn/sdk"
)

// NextWord finds the first word of text: its bytes between Unicode whitespace, exactly as
// Rust's `char::is_whitespace` (the White_Space property, which unicode.IsSpace is).
func NextWord(text []byte) (word, rest []byte, found bool) {
	start := -1
	for i := 0; i < len(text); {
		space, size := asciiSpace[text[i]], 1
		if text[i] >= utf8.RuneSelf {
			var c rune
			c, size = utf8.DecodeRune(text[i:])
			space = unicode.IsSpace(c)
		}
		if space {
			if start >= 0 {
				return text[start:i], text[i:], true
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		return text[start:], nil, true
	}
	return nil, nil, false
}

// asciiSpace marks the ASCII whitespace bytes: tab, line feed, vertical tab, form feed,
// carriage return and space.
var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// Source adds the source `--input PATH|-|kafka://HOST:PORT/TOPIC` names (`-`: standard
// input; a topic is read from its earliest offset to the end it had when the job first
// started), paced by `--rate LINES_PER_S` if it is a file, with parallelism 1.
func Source(g *cairn.Graph, uid string, args cairn.Args) (*cairn.Node, error) {
	input, err := args.Required("--input")
	if err != nil {
		return nil, err
	}
	rate, paced := args.Value("--rate")
	from, err := parseKafkaURL("--input", input)
	if err != nil {
		return nil, err
	}
	var lines *cairn.Node
	switch {
	case from != nil && paced:
		return nil, errors.New("--rate paces a file input; it does not apply to " + input)
	case from != nil:
		lines = g.KafkaSource(uid, from.servers, from.topic).Option("scan.bounded.mode", "latest-offset")
	case input == "-":
		lines = g.StdinSource(uid)
	case paced:
		lines = g.FileSource(uid, input).Option("rate", rate)
	default:
		lines = g.FileSource(uid, input)
	}
	return lines.Parallelism(1), nil
}

// Sink adds to `from` the sink `--output DIR|-|kafka://HOST:PORT/TOPIC` names (`-`: standard
// output; a topic is written exactly-once, each record keyed by its word).
func Sink(from *cairn.Node, uid string, args cairn.Args) error {
	output, err := args.Required("--output")
	if err != nil {
		return err
	}
	to, err := parseKafkaURL("--output", output)
	switch {
	case err != nil:
		return err
	case to != nil:
		from.KafkaSink(uid, to.servers, to.topic, cairn.Forward).Option("sink.delivery-guarantee", "exactly-once")
	case output == "-":
		from.StdoutSink(uid, cairn.Forward)
	default:
		from.FileSink(uid, output, cairn.Forward)
	}
	return nil
}

// kafkaURL is a `kafka://HOST:PORT/TOPIC` argument: its bootstrap servers and topic.
type kafkaURL struct{ servers, topic string }

// parseKafkaURL reads argument `name`'s value as a Kafka URL: nil if it is not one, an error
// if it is a malformed one.
func parseKafkaURL(name, value string) (*kafkaURL, error) {
	address, ok := strings.CutPrefix(value, "kafka://")
	if !ok {
		return nil, nil
	}
	servers, topic, _ := strings.Cut(address, "/")
	if servers == "" || topic == "" || strings.Contains(topic, "/") {
		return nil, errors.New("invalid " + name + " " + value + ": expected kafka://HOST:PORT/TOPIC")
	}
	return &kafkaURL{servers, topic}, nil
}
