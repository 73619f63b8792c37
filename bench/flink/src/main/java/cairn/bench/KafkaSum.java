package cairn.bench;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeHint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * The bench's Kafka job in Flink: topic {@code in} (key, 8-byte little-endian value) →
 * running sum per key → topic {@code out} ({@code key<TAB>sum} keyed by key), exactly-once
 * with 1 s checkpoints, reading what the topic holds at the start. Prints the job's own
 * runtime: {@code FLINK_SECONDS <s>}.
 *
 * <p>Usage: {@code KafkaSum BOOTSTRAP IN OUT PARALLELISM}
 */
public final class KafkaSum {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], in = args[1], out = args[2];
        int parallelism = Integer.parseInt(args[3]);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        env.enableCheckpointing(1000, CheckpointingMode.EXACTLY_ONCE);

        KafkaSource<Tuple2<String, Long>> source = KafkaSource.<Tuple2<String, Long>>builder()
                .setBootstrapServers(bootstrap)
                .setTopics(in)
                .setGroupId("flink-bench")
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .setProperty("isolation.level", "read_committed")
                .setDeserializer(new Records())
                .build();
        Properties producer = new Properties();
        producer.setProperty("transaction.timeout.ms", "900000");
        KafkaSink<Tuple2<String, Long>> sink = KafkaSink.<Tuple2<String, Long>>builder()
                .setBootstrapServers(bootstrap)
                .setKafkaProducerConfig(producer)
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix("flink-bench-" + out)
                .setRecordSerializer((KafkaRecordSerializationSchema<Tuple2<String, Long>>)
                        (sum, context, timestamp) -> {
                            byte[] key = sum.f0.getBytes(StandardCharsets.UTF_8);
                            byte[] value = (sum.f0 + "\t" + sum.f1).getBytes(StandardCharsets.UTF_8);
                            return new ProducerRecord<>(out, key, value);
                        })
                .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "in")
                .keyBy(record -> record.f0)
                .process(new Sum())
                .sinkTo(sink);
        JobExecutionResult result = env.execute("kafka-sum");
        System.out.printf("FLINK_SECONDS %.3f%n", result.getNetRuntime() / 1000.0);
    }

    /** Key as text, value as a little-endian u64. */
    static final class Records implements KafkaRecordDeserializationSchema<Tuple2<String, Long>> {
        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Tuple2<String, Long>> out) {
            long value = ByteBuffer.wrap(record.value()).order(ByteOrder.LITTLE_ENDIAN).getLong();
            out.collect(Tuple2.of(new String(record.key(), StandardCharsets.UTF_8), value));
        }

        @Override
        public TypeInformation<Tuple2<String, Long>> getProducedType() {
            return TypeInformation.of(new TypeHint<Tuple2<String, Long>>() {});
        }
    }

    /** The running sum of each key, in keyed state. */
    static final class Sum extends KeyedProcessFunction<String, Tuple2<String, Long>, Tuple2<String, Long>> {
        private transient ValueState<Long> sum;

        @Override
        public void open(OpenContext context) {
            sum = getRuntimeContext().getState(new ValueStateDescriptor<>("sum", Types.LONG));
        }

        @Override
        public void processElement(Tuple2<String, Long> record, Context context, Collector<Tuple2<String, Long>> out)
                throws Exception {
            Long before = sum.value();
            long now = (before == null ? 0 : before) + record.f1;
            sum.update(now);
            out.collect(Tuple2.of(record.f0, now));
        }
    }
}
