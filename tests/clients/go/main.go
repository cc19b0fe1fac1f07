// kzgo-roundtrip: the franz-go (github.com/twmb/franz-go, pkg/kgo) round trip
// for tests/integration/test_clients.py.
//
//	kzgo-roundtrip --produce H:P --consume H:P --topic T
//	     [--messages 10000] [--keys 100] [--group G] [--timeout-ms 60000] [--chunk 500]
//
// Produces --messages keyed messages through the --produce address (message
// i: key "k<i % keys>", value "k<i % keys>.<i / keys>", acks=all, kgo's
// default key partitioner and idempotent producer, sent with ProduceSync in
// chunks), then reads the topic's end offsets through the --consume address
// (kadm ListEndOffsets) and consumes everything back with a consumer group
// (kgo.ConsumerGroup + ConsumeTopics, reset offset to the start, no commits)
// through the --consume address until every partition reaches its end
// offset. Prints one JSON line on stdout:
//
//	{"produce_ms":..,"consume_ms":..,"ends":{"0":n,..},"records":[[p,off,key,value],..],
//	 "acked":[[p,off],..]}
//
// where acked[i] is the partition and offset the broker acknowledged for
// message i. franz-go's own log (WARN and above) goes to stderr. Exits 1
// with a message on stderr on any error or when --timeout-ms passes.
// Built by scripts/deps.sh: go build -o tests/clients/go/kzgo-roundtrip.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	produce, consume, topic, group string
	messages, keys, chunk          int
	timeoutMs                      int
}

type result struct {
	ProduceMs int64            `json:"produce_ms"`
	ConsumeMs int64            `json:"consume_ms"`
	Ends      map[string]int64 `json:"ends"`
	Records   [][4]any         `json:"records"`
	Acked     [][2]int64       `json:"acked"`
}

func parseArgs() options {
	var o options
	fs := flag.NewFlagSet("kzgo-roundtrip", flag.ContinueOnError)
	fs.StringVar(&o.produce, "produce", "", "bootstrap address to produce through (H:P)")
	fs.StringVar(&o.consume, "consume", "", "bootstrap address to consume through (H:P)")
	fs.StringVar(&o.topic, "topic", "", "topic")
	fs.IntVar(&o.messages, "messages", 10000, "messages to produce")
	fs.IntVar(&o.keys, "keys", 100, "distinct keys")
	fs.StringVar(&o.group, "group", fmt.Sprintf("kzgo-%d-%d", os.Getpid(), time.Now().UnixMilli()), "consumer group")
	fs.IntVar(&o.timeoutMs, "timeout-ms", 60000, "deadline for produce + consume")
	fs.IntVar(&o.chunk, "chunk", 500, "messages per ProduceSync call")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(1)
	}
	if fs.NArg() != 0 {
		fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	for name, v := range map[string]string{"produce": o.produce, "consume": o.consume, "topic": o.topic} {
		if v == "" {
			fail(fmt.Errorf("--%s is required", name))
		}
	}
	if o.messages < 0 || o.keys <= 0 || o.chunk <= 0 || o.timeoutMs <= 0 {
		fail(errors.New("--messages, --keys, --chunk and --timeout-ms must be positive"))
	}
	return o
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "kzgo-roundtrip: %v\n", err)
	os.Exit(1)
}

func logger(prefix string) kgo.Opt {
	return kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, func() string {
		return "franz-go " + prefix + " "
	}))
}

func produce(ctx context.Context, o options) ([][2]int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(o.produce),
		kgo.ClientID("kzgo-producer"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.DialTimeout(5*time.Second),
		kgo.RequestTimeoutOverhead(15*time.Second),
		logger("producer"),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	acked := make([][2]int64, o.messages)
	for start := 0; start < o.messages; start += o.chunk {
		end := min(o.messages, start+o.chunk)
		recs := make([]*kgo.Record, 0, end-start)
		for i := start; i < end; i++ {
			k, seq := i%o.keys, i/o.keys
			recs = append(recs, &kgo.Record{
				Topic: o.topic,
				Key:   []byte("k" + strconv.Itoa(k)),
				Value: []byte("k" + strconv.Itoa(k) + "." + strconv.Itoa(seq)),
			})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			return nil, fmt.Errorf("produce: messages %d..%d: %w", start, end-1, err)
		}
		for n, r := range recs {
			acked[start+n] = [2]int64{int64(r.Partition), r.Offset}
		}
	}
	return acked, nil
}

func endOffsets(ctx context.Context, o options) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.consume), kgo.ClientID("kzgo-admin"),
		kgo.DialTimeout(5*time.Second), logger("admin"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, o.topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	ends := map[int32]int64{}
	listed.Each(func(lo kadm.ListedOffset) {
		if lo.Topic == o.topic {
			ends[lo.Partition] = lo.Offset
		}
	})
	if len(ends) == 0 {
		return nil, fmt.Errorf("end offsets: topic %s has no partitions", o.topic)
	}
	return ends, nil
}

func consume(ctx context.Context, o options, ends map[int32]int64) ([][4]any, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(o.consume),
		kgo.ClientID("kzgo-consumer"),
		kgo.ConsumerGroup(o.group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.DialTimeout(5*time.Second),
		logger("consumer"),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close() // leaves the group; nothing to commit
	pending := map[int32]bool{}
	for p, end := range ends {
		if end > 0 {
			pending[p] = true
		}
	}
	records := [][4]any{}
	fetchErrors := 0
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if fetches.IsClientClosed() {
			return nil, errors.New("consume: the client was closed")
		}
		if ctx.Err() != nil {
			left := make([]int, 0, len(pending))
			for p := range pending {
				left = append(left, int(p))
			}
			sort.Ints(left)
			return nil, fmt.Errorf("consume: partitions %v not at their end offsets before the deadline (%d records read)",
				left, len(records))
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			// What reaches here is what kgo does not retry by itself, except a
			// topic or partition not (yet) known, which it keeps retrying.
			fetchErrors++
			fmt.Fprintf(os.Stderr, "franz-go consumer: fetch error %s[%d]: %v\n", t, p, err)
			if fetchErrors > 20 && fatal == nil {
				fatal = fmt.Errorf("consume: %d fetch errors, the last on %s[%d]: %w", fetchErrors, t, p, err)
			}
		})
		if fatal != nil {
			return nil, fatal
		}
		fetches.EachRecord(func(r *kgo.Record) {
			records = append(records, [4]any{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			if pending[r.Partition] && r.Offset+1 >= ends[r.Partition] {
				delete(pending, r.Partition)
			}
		})
	}
	return records, nil
}

func main() {
	o := parseArgs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.timeoutMs)*time.Millisecond)
	defer cancel()

	t0 := time.Now()
	acked, err := produce(ctx, o)
	if err != nil {
		fail(err)
	}
	produceMs := time.Since(t0).Milliseconds()

	t1 := time.Now()
	ends, err := endOffsets(ctx, o)
	if err != nil {
		fail(err)
	}
	records, err := consume(ctx, o, ends)
	if err != nil {
		fail(err)
	}
	consumeMs := time.Since(t1).Milliseconds()

	res := result{ProduceMs: produceMs, ConsumeMs: consumeMs, Ends: map[string]int64{}, Records: records, Acked: acked}
	for p, end := range ends {
		res.Ends[strconv.Itoa(int(p))] = end
	}
	var sb strings.Builder
	if err := json.NewEncoder(&sb).Encode(res); err != nil {
		fail(err)
	}
	if _, err := os.Stdout.WriteString(sb.String()); err != nil {
		fail(err)
	}
}
