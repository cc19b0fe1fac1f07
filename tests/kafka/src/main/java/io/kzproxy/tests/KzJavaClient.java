package io.kzproxy.tests;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The reference Java client of kzproxy's test suite, run through the proxy by
 * tests/integration/test_client_java.py. Values are "TAG:SEQ" (committed or
 * plain) and "TAG-aborted:SEQ" (in aborted transactions); message SEQ goes to
 * partition SEQ % PARTITIONS. Each mode prints one JSON line and exits 0 when
 * it saw nothing wrong.
 *
 *   produce  --bootstrap B --topic T --count N --partitions P --tag TAG
 *            idempotent producer, acks=all, max.in.flight.requests 5 (the defaults)
 *   txn      --bootstrap B --topic T --partitions P --tag TAG --txn-id ID
 *            --transactions K --per-txn M --abort-every A
 *            K transactions of M messages; every A-th one is aborted
 *   consume  --bootstrap B --topic T --group G --protocol classic|consumer
 *            --expect TAG:N[,TAG:N...] [--read-committed] [--timeout S]
 *            subscribe and read until every TAG:0..N-1 is seen; checks each
 *            exactly once, in order per partition, no aborted value; commits
 *   admin    --bootstrap B --topic T [--group G]
 *            the Admin client's everyday calls through the proxy, each checked:
 *            describeCluster, createTopics, describeTopics, listOffsets,
 *            deleteRecords, describeConfigs, incrementalAlterConfigs,
 *            createPartitions, listConsumerGroups, describeConsumerGroups,
 *            listConsumerGroupOffsets, deleteTopics
 */
public final class KzJavaClient {
    private final Map<String, String> opt = new HashMap<>();

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: KzJavaClient produce|txn|consume --option value ...");
            System.exit(2);
        }
        KzJavaClient c = new KzJavaClient();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                System.err.println("KzJavaClient: unexpected argument " + args[i]);
                System.exit(2);
            }
            String key = args[i].substring(2);
            if (i + 1 < args.length && !args[i + 1].startsWith("--"))
                c.opt.put(key, args[++i]);
            else
                c.opt.put(key, "true");
        }
        int rc;
        switch (args[0]) {
        case "produce": rc = c.produce(); break;
        case "txn": rc = c.txn(); break;
        case "consume": rc = c.consume(); break;
        case "admin": rc = c.admin(); break;
        default:
            System.err.println("KzJavaClient: unknown mode " + args[0]);
            rc = 2;
        }
        System.exit(rc);
    }

    private String need(String key) {
        String v = opt.get(key);
        if (v == null) {
            System.err.println("KzJavaClient: --" + key + " is required");
            System.exit(2);
        }
        return v;
    }

    private int num(String key, int dflt) {
        String v = opt.get(key);
        return v == null ? dflt : Integer.parseInt(v);
    }

    private Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, need("bootstrap"));
        p.put(ProducerConfig.CLIENT_ID_CONFIG, opt.getOrDefault("client-id", "kz-java-" + need("tag")));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60000);
        return p;
    }

    private static byte[] value(String tag, long seq) {
        return (tag + ":" + seq).getBytes(StandardCharsets.UTF_8);
    }

    private static String json(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    private int produce() {
        String topic = need("topic"), tag = need("tag");
        int count = num("count", 1000), parts = num("partitions", 1);
        AtomicLong acked = new AtomicLong();
        ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        long t0 = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(producerProps())) {
            for (int i = 0; i < count; i++) {
                final int seq = i;
                p.send(new ProducerRecord<>(topic, i % parts, null, value(tag, i)), (md, e) -> {
                    if (e != null)
                        errors.add("message " + seq + ": " + e);
                    else
                        acked.incrementAndGet();
                });
            }
            p.flush();
        } catch (Exception e) {
            errors.add(e.toString());
        }
        System.out.printf("{\"mode\":\"produce\",\"acked\":%d,\"failed\":%d,\"seconds\":%.2f,\"first_error\":%s}%n",
                acked.get(), errors.size(), (System.nanoTime() - t0) / 1e9,
                errors.isEmpty() ? "null" : json(errors.peek()));
        return errors.isEmpty() && acked.get() == count ? 0 : 1;
    }

    private int txn() {
        String topic = need("topic"), tag = need("tag");
        int parts = num("partitions", 1), txns = num("transactions", 10), per = num("per-txn", 100);
        int abortEvery = num("abort-every", 0);
        Properties props = producerProps();
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, need("txn-id"));
        long committed = 0, aborted = 0, seq = 0, abortedSeq = 0;
        String error = null;
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props)) {
            p.initTransactions();
            for (int t = 0; t < txns; t++) {
                boolean abort = abortEvery > 0 && (t + 1) % abortEvery == 0;
                p.beginTransaction();
                for (int i = 0; i < per; i++) {
                    if (abort) {
                        p.send(new ProducerRecord<>(topic, (int) (abortedSeq % parts), null,
                                value(tag + "-aborted", abortedSeq)));
                        abortedSeq++;
                    } else {
                        p.send(new ProducerRecord<>(topic, (int) (seq % parts), null, value(tag, seq)));
                        seq++;
                    }
                }
                if (abort) {
                    p.flush(); // the aborted records reach the log before the marker
                    p.abortTransaction();
                    aborted += per;
                } else {
                    p.commitTransaction();
                    committed += per;
                }
            }
        } catch (Exception e) {
            error = e.toString();
        }
        System.out.printf("{\"mode\":\"txn\",\"committed\":%d,\"aborted\":%d,\"error\":%s}%n", committed, aborted,
                error == null ? "null" : json(error));
        return error == null ? 0 : 1;
    }

    private final List<String> steps = new ArrayList<>();

    private void step(String what, boolean ok, String detail) {
        steps.add(json(what + ": " + detail));
        if (!ok)
            throw new IllegalStateException(what + ": " + detail);
    }

    private int admin() {
        String topic = need("topic");
        Properties p = new Properties();
        p.put(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, need("bootstrap"));
        p.put(org.apache.kafka.clients.admin.AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        String error = null;
        try (org.apache.kafka.clients.admin.Admin a = org.apache.kafka.clients.admin.Admin.create(p)) {
            var nodes = a.describeCluster().nodes().get();
            step("describeCluster", !nodes.isEmpty(), nodes.size() + " nodes " + nodes);
            a.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 6, (short) 3))).all().get();
            step("createTopics", true, topic + " with 6 partitions, RF 3");
            org.apache.kafka.clients.admin.TopicDescription d = null;
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (System.nanoTime() < deadline) {
                d = a.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                if (d.partitions().size() == 6 && d.partitions().stream().allMatch(x -> x.leader() != null))
                    break;
                Thread.sleep(100);
            }
            boolean proxyLeaders = d != null && d.partitions().stream().allMatch(
                    x -> x.leader() != null && nodes.stream().anyMatch(n -> n.id() == x.leader().id()));
            step("describeTopics", proxyLeaders, d == null ? "none" : d.partitions().size()
                    + " partitions, every leader one of the zone's proxies: " + proxyLeaders + ", topic id " + d.topicId());
            try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(producerProps())) {
                for (int i = 0; i < 10; i++)
                    prod.send(new ProducerRecord<>(topic, 0, null, value("admin", i))).get();
            }
            org.apache.kafka.common.TopicPartition tp0 = new org.apache.kafka.common.TopicPartition(topic, 0);
            long latest = a.listOffsets(Map.of(tp0, org.apache.kafka.clients.admin.OffsetSpec.latest()))
                    .partitionResult(tp0).get().offset();
            step("listOffsets latest", latest == 10, "partition 0 ends at " + latest + " (want 10)");
            long low = a.deleteRecords(Map.of(tp0, org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(4)))
                    .lowWatermarks().get(tp0).get().lowWatermark();
            step("deleteRecords", low == 4, "low watermark " + low + " (want 4)");
            long earliest = a.listOffsets(Map.of(tp0, org.apache.kafka.clients.admin.OffsetSpec.earliest()))
                    .partitionResult(tp0).get().offset();
            step("listOffsets earliest", earliest == 4, "partition 0 starts at " + earliest + " (want 4)");
            var res = new org.apache.kafka.common.config.ConfigResource(
                    org.apache.kafka.common.config.ConfigResource.Type.TOPIC, topic);
            a.incrementalAlterConfigs(Map.of(res, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                    new org.apache.kafka.clients.admin.ConfigEntry("retention.ms", "3600000"),
                    org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET)))).all().get();
            String retention = a.describeConfigs(List.of(res)).all().get().get(res).get("retention.ms").value();
            step("incrementalAlterConfigs+describeConfigs", "3600000".equals(retention), "retention.ms " + retention);
            a.createPartitions(Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(8))).all().get();
            int parts = 0;
            deadline = System.nanoTime() + 30_000_000_000L;
            while (System.nanoTime() < deadline && parts != 8) {
                parts = a.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
                Thread.sleep(100);
            }
            step("createPartitions", parts == 8, parts + " partitions (want 8)");
            String group = opt.get("group");
            if (group != null) {
                var groups = a.listConsumerGroups().all().get();
                boolean listed = groups.stream().anyMatch(g -> g.groupId().equals(group));
                step("listConsumerGroups", listed, groups.size() + " groups, " + group + " listed: " + listed);
                var gd = a.describeConsumerGroups(List.of(group)).all().get().get(group);
                step("describeConsumerGroups", gd != null, group + " state " + gd.groupState()
                        + ", coordinator " + gd.coordinator());
                var offsets = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                step("listConsumerGroupOffsets", !offsets.isEmpty(), offsets.size() + " partitions committed");
            }
            a.deleteTopics(List.of(topic)).all().get();
            step("deleteTopics", true, topic);
        } catch (Exception e) {
            error = e.toString();
        }
        System.out.printf("{\"mode\":\"admin\",\"steps\":[%s],\"error\":%s}%n", String.join(",", steps),
                error == null ? "null" : json(error));
        return error == null ? 0 : 1;
    }

    private int consume() {
        String topic = need("topic");
        Map<String, Integer> expect = new HashMap<>();
        long total = 0;
        for (String e : need("expect").split(",")) {
            int colon = e.lastIndexOf(':');
            int n = Integer.parseInt(e.substring(colon + 1));
            expect.put(e.substring(0, colon), n);
            total += n;
        }
        String protocol = opt.getOrDefault("protocol", "classic");
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, need("bootstrap"));
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, opt.getOrDefault("client-id", "kz-java-consumer"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, need("group"));
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        if (protocol.equals("classic"))
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        if (opt.containsKey("read-committed"))
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        long deadline = System.nanoTime() + num("timeout", 60) * 1_000_000_000L;
        Map<String, boolean[]> seen = new HashMap<>();
        for (Map.Entry<String, Integer> e : expect.entrySet())
            seen.put(e.getKey(), new boolean[e.getValue()]);
        Map<String, Long> lastSeq = new HashMap<>(); // "tag/partition" -> last seq
        long got = 0, dup = 0, disorder = 0, abortedSeen = 0, unknown = 0;
        List<String> problems = new ArrayList<>();
        String error = null;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(topic));
            while (got < total && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    String v = new String(r.value(), StandardCharsets.UTF_8);
                    int colon = v.lastIndexOf(':');
                    String tag = colon < 0 ? v : v.substring(0, colon);
                    if (tag.endsWith("-aborted")) {
                        abortedSeen++;
                        continue;
                    }
                    boolean[] s = seen.get(tag);
                    long seq;
                    try {
                        seq = Long.parseLong(v.substring(colon + 1));
                    } catch (NumberFormatException ex) {
                        seq = -1;
                    }
                    if (s == null || seq < 0 || seq >= s.length) {
                        unknown++;
                        continue;
                    }
                    if (s[(int) seq]) {
                        dup++;
                        if (problems.size() < 5)
                            problems.add("duplicate " + v + " at " + r.partition() + "@" + r.offset());
                        continue;
                    }
                    s[(int) seq] = true;
                    got++;
                    String k = tag + "/" + r.partition();
                    Long prev = lastSeq.put(k, seq);
                    if (prev != null && prev > seq) {
                        disorder++;
                        if (problems.size() < 5)
                            problems.add(v + " after " + tag + ":" + prev + " in partition " + r.partition());
                    }
                }
            }
            c.commitSync(Duration.ofSeconds(10));
        } catch (Exception e) {
            error = e.toString();
        }
        long missing = total - got;
        boolean ok = error == null && missing == 0 && dup == 0 && disorder == 0 && abortedSeen == 0 && unknown == 0;
        System.out.printf("{\"mode\":\"consume\",\"protocol\":%s,\"consumed\":%d,\"missing\":%d,\"duplicates\":%d,"
                + "\"out_of_order\":%d,\"aborted_seen\":%d,\"unknown\":%d,\"problems\":%s,\"error\":%s}%n",
                json(protocol), got, missing, dup, disorder, abortedSeen, unknown,
                problems.isEmpty() ? "[]" : "[" + String.join(",", problems.stream().map(KzJavaClient::json).toList()) + "]",
                error == null ? "null" : json(error));
        return ok ? 0 : 1;
    }
}
