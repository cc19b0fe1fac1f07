package io.kzproxy.tests;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ElectionNotNeededException;

/**
 * The real-Kafka test bed's control channel: one line per command on stdin,
 * one line per answer on stdout ("ok", "ok JSON" or "error: why"). Started by
 * tests/integration/kzbed.py beside the broker JVMs; leaves when stdin closes.
 *
 *   brokers N SECONDS          wait until N brokers are registered
 *   node ID up|down SECONDS    wait until broker ID is (or is no longer)
 *                              registered and unfenced
 *   topic NAME PARTITIONS RF   create; partition p led by broker (p % N) + 1,
 *                              replicas on the next brokers in id order
 *   leader TOPIC P BROKER      move the leadership of TOPIC-P to BROKER
 *   replicas TOPIC P B1,B2...  give TOPIC-P exactly these replicas, B1 leading
 *                              (reorder replicas, elect the preferred leader)
 *   isr SECONDS                wait until every partition of every topic has
 *                              its whole replica set in sync and a leader
 *   coordinators SECONDS       have the brokers create __consumer_offsets and
 *                              __transaction_state (the first FindCoordinator
 *                              of each kind does) and wait for their leaders
 *   describe TOPIC             the partitions: leader, replicas, isr (JSON)
 *   delete TOPIC
 */
public final class KzAdmin {
    private static Admin admin;
    private static int brokerCount = 3;

    public static void main(String[] args) throws Exception {
        String bootstrap = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--bootstrap") && i + 1 < args.length)
                bootstrap = args[++i];
        }
        if (bootstrap == null) {
            System.err.println("usage: KzAdmin --bootstrap host:port[,host:port...]");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200);
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        admin = Admin.create(p);
        System.out.println("ready");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.isEmpty())
                continue;
            String answer;
            try {
                answer = run(line.split("\\s+"));
            } catch (ExecutionException e) {
                answer = "error: " + e.getCause();
            } catch (Exception e) {
                answer = "error: " + e;
            }
            System.out.println(answer.replace('\n', ' '));
            System.out.flush();
        }
        admin.close(java.time.Duration.ofSeconds(2));
    }

    private static String run(String[] a) throws Exception {
        switch (a[0]) {
        case "brokers":
            return waitBrokers(Integer.parseInt(a[1]), Long.parseLong(a[2]));
        case "node":
            return waitNode(Integer.parseInt(a[1]), a[2].equals("up"), Long.parseLong(a[3]));
        case "topic":
            return createTopic(a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3]));
        case "replicas": {
            List<Integer> order = new ArrayList<>();
            for (String b : a[3].split(","))
                order.add(Integer.parseInt(b));
            return reassign(a[1], Integer.parseInt(a[2]), order, true);
        }
        case "leader":
            return moveLeader(a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3]));
        case "isr":
            return waitIsr(Long.parseLong(a[1]));
        case "coordinators":
            return warmCoordinators(Long.parseLong(a[1]));
        case "describe":
            return "ok " + describe(a[1]);
        case "delete":
            admin.deleteTopics(List.of(a[1])).all().get();
            return "ok";
        default:
            return "error: unknown command " + a[0];
        }
    }

    private static String waitBrokers(int n, long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        Collection<Node> nodes = List.of();
        while (System.nanoTime() < deadline) {
            try {
                nodes = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                if (nodes.size() >= n) {
                    brokerCount = nodes.size();
                    return "ok";
                }
            } catch (Exception e) {
                // not up yet: ask again
            }
            Thread.sleep(100);
        }
        return "error: " + nodes.size() + " of " + n + " brokers registered after " + seconds + " s";
    }

    private static String waitNode(int id, boolean up, long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            try {
                boolean listed = false;
                for (Node n : admin.describeCluster().nodes().get(5, TimeUnit.SECONDS))
                    listed |= n.id() == id;
                if (listed == up)
                    return "ok";
            } catch (Exception e) {
                // ask again
            }
            Thread.sleep(50);
        }
        return "error: broker " + id + " still " + (up ? "not registered" : "registered") + " after " + seconds + " s";
    }

    private static String createTopic(String name, int partitions, int rf) throws Exception {
        Map<Integer, List<Integer>> assignment = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            List<Integer> replicas = new ArrayList<>();
            for (int r = 0; r < rf; r++)
                replicas.add((p + r) % brokerCount + 1);
            assignment.put(p, replicas);
        }
        admin.createTopics(List.of(new NewTopic(name, assignment))).all().get();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (allLed(name, partitions))
                return "ok";
            Thread.sleep(50);
        }
        return "error: topic " + name + " has partitions without a leader after 30 s";
    }

    private static boolean allLed(String name, int partitions) {
        try {
            TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
            if (d.partitions().size() != partitions)
                return false;
            for (TopicPartitionInfo pi : d.partitions())
                if (pi.leader() == null || pi.leader().id() < 0)
                    return false;
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    private static String moveLeader(String topic, int partition, int broker) throws Exception {
        TopicPartition tp = new TopicPartition(topic, partition);
        TopicPartitionInfo pi = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic)
                .partitions().get(partition);
        List<Integer> order = new ArrayList<>();
        order.add(broker);
        for (Node n : pi.replicas())
            if (n.id() != broker)
                order.add(n.id());
        return reassign(topic, partition, order, false);
    }

    /*
     * Give TOPIC-P exactly the replicas in order (the first one leads) and
     * wait until the move is over: the first one leads and, when exact is
     * set, the replica set is that list (replicas left behind are removed
     * only once the new ones are in sync).
     */
    private static String reassign(String topic, int partition, List<Integer> order, boolean exact)
            throws Exception {
        TopicPartition tp = new TopicPartition(topic, partition);
        int broker = order.get(0);
        admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(order))))
                .all().get();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions().get().get(tp)
                        .ifPresent(e -> {
                            if (!(e instanceof ElectionNotNeededException))
                                throw new RuntimeException(e);
                        });
            } catch (Exception e) {
                last = e.toString();
            }
            TopicPartitionInfo now = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic)
                    .partitions().get(partition);
            List<Integer> have = new ArrayList<>();
            for (Node n : now.replicas())
                have.add(n.id());
            if (now.leader() != null && now.leader().id() == broker && (!exact || have.equals(order)))
                return "ok";
            Thread.sleep(100);
        }
        return "error: " + tp + " not led by broker " + broker + (exact ? " on replicas " + order : "")
                + " after 30 s " + last;
    }

    private static String warmCoordinators(long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                // Each lookup makes the brokers create the internal topic first.
                admin.listConsumerGroupOffsets("kz-warm-up").partitionsToOffsetAndMetadata().get(5, TimeUnit.SECONDS);
                try {
                    admin.describeTransactions(List.of("kz-warm-up")).all().get(5, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof org.apache.kafka.common.errors.TransactionalIdNotFoundException))
                        throw e;
                }
                return "ok";
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(100);
        }
        return "error: coordinators not ready after " + seconds + " s: " + last;
    }

    private static String waitIsr(long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        String lagging = "";
        while (System.nanoTime() < deadline) {
            lagging = "";
            try {
                Set<String> names = admin.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions()
                        .listInternal(true)).names().get();
                for (TopicDescription d : admin.describeTopics(names).allTopicNames().get().values())
                    for (TopicPartitionInfo pi : d.partitions())
                        if (pi.leader() == null || pi.leader().id() < 0 || pi.isr().size() < pi.replicas().size())
                            lagging = d.name() + "-" + pi.partition();
            } catch (Exception e) {
                lagging = e.toString();
            }
            if (lagging.isEmpty())
                return "ok";
            Thread.sleep(100);
        }
        return "error: " + lagging + " not fully in sync after " + seconds + " s";
    }

    private static String describe(String topic) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        StringBuilder sb = new StringBuilder("[");
        for (TopicPartitionInfo pi : d.partitions()) {
            if (sb.length() > 1)
                sb.append(',');
            sb.append("{\"partition\":").append(pi.partition())
              .append(",\"leader\":").append(pi.leader() == null ? -1 : pi.leader().id())
              .append(",\"replicas\":").append(ids(pi.replicas()))
              .append(",\"isr\":").append(ids(pi.isr())).append('}');
        }
        return sb.append(']').toString();
    }

    private static String ids(List<Node> nodes) {
        StringBuilder sb = new StringBuilder("[");
        for (Node n : nodes) {
            if (sb.length() > 1)
                sb.append(',');
            sb.append(n.id());
        }
        return sb.append(']').toString();
    }
}
