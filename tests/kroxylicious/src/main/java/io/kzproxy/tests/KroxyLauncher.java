package io.kzproxy.tests;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.atomic.AtomicBoolean;

import io.kroxylicious.proxy.KafkaProxy;
import io.kroxylicious.proxy.config.ConfigParser;
import io.kroxylicious.proxy.config.Configuration;
import io.kroxylicious.proxy.internal.config.Features;

/**
 * Runs a Kroxylicious proxy from a YAML configuration file, for the benchmark
 * (tests/bench/bench_kroxy.py), in place of the kroxylicious-app command line,
 * which Maven Central does not carry.
 *
 *   java -cp ... io.kzproxy.tests.KroxyLauncher CONFIG.yaml
 *
 * Prints one line "ready" on stdout once every gateway is bound; stays until
 * SIGTERM or SIGINT, then shuts the proxy down (a JVM shutdown hook). Exit
 * status 2 on a usage error, 1 when the configuration is refused, the proxy
 * cannot start (the reason on stderr) or it stops by itself.
 */
public final class KroxyLauncher {

    private KroxyLauncher() {
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: KroxyLauncher CONFIG.yaml");
            System.exit(2);
        }
        Path file = Paths.get(args[0]);
        KafkaProxy proxy;
        try {
            ConfigParser parser = new ConfigParser();
            Configuration config;
            try (InputStream in = Files.newInputStream(file)) {
                config = parser.parseConfiguration(in);
            }
            // The parser is also the registry the proxy looks its plugins up in.
            proxy = new KafkaProxy(parser, config, Features.defaultFeatures());
            proxy.startup();
        }
        catch (Throwable e) { // a classpath mismatch is an Error: exit all the same
            System.err.println("KroxyLauncher: cannot start Kroxylicious from " + file + ": " + e);
            e.printStackTrace();
            System.exit(1);
            return;
        }
        final KafkaProxy running = proxy;
        final AtomicBoolean stopping = new AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            try {
                running.close();
            }
            catch (Exception e) {
                System.err.println("KroxyLauncher: shutdown: " + e);
            }
        }, "kroxy-shutdown"));
        System.out.println("ready");
        System.out.flush();
        try {
            proxy.block();
        }
        catch (Throwable e) {
            System.err.println("KroxyLauncher: Kroxylicious failed: " + e);
            e.printStackTrace();
        }
        // block() returned: by the shutdown hook (the JVM is exiting: calling
        // exit here would wait for that hook forever), or the proxy stopped
        // by itself, which the benchmark must see as a failure.
        if (!stopping.get()) {
            System.err.println("KroxyLauncher: Kroxylicious stopped without being asked to");
            System.exit(1);
        }
    }
}
