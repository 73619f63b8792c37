package cairn

import (
	"reflect"
	"testing"
)

func TestKafkaNodesCarryFlinkOptionNames(t *testing.T) {
	g := NewGraph("k")
	source := g.KafkaSource("in", "a:9092,b:9092", "lines").Option("scan.bounded.mode", "latest-offset")
	sink := source.KafkaSink("out", "a:9092", "counts", Forward)
	if source.kind != kindSource || source.name != "kafka" || sink.kind != kindSink || sink.name != "kafka" {
		t.Fatalf("nodes %+v, %+v", source, sink)
	}
	want := [][2]string{
		{"properties.bootstrap.servers", "a:9092,b:9092"},
		{"topic", "lines"},
		{"scan.bounded.mode", "latest-offset"},
	}
	if !reflect.DeepEqual(source.options, want) {
		t.Errorf("source options %v", source.options)
	}
	want = [][2]string{{"properties.bootstrap.servers", "a:9092"}, {"topic", "counts"}}
	if !reflect.DeepEqual(sink.options, want) {
		t.Errorf("sink options %v", sink.options)
	}
	if !reflect.DeepEqual(sink.inputs, []input{{"in", Forward, ""}}) {
		t.Errorf("sink inputs %v", sink.inputs)
	}
}
