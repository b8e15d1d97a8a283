package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/dynamodb"
)

var base = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func conn(id, ip string, at time.Time) core.Conn {
	return core.Conn{ID: id, User: "u-" + id, IP: ip, ConnectedAt: at, Endpoint: "http://10.1.1.1:8080"}
}

// TestUnreachable: with DynamoDB gone, every call fails quickly with an
// error that matches core.ErrUnavailable, and nothing panics.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	s, err := dynamodb.New(ctx, dynamodb.Options{Client: newClient(dead), Table: "wsgate"})
	if err != nil {
		t.Fatalf("New must not need the table: %v", err)
	}
	lim := core.Limits{MaxConnectionsPerIP: 5, MaxConnectsPerHour: 10, MaxAge: 2 * time.Hour}
	c := conn("c1", "10.0.0.1", base)
	calls := map[string]func() error{
		"Admit":         func() error { return s.Admit(ctx, c, lim, base) },
		"AdmitNoLimits": func() error { return s.Admit(ctx, c, core.Limits{}, base) },
		"Release":       func() error { _, _, err := s.Release(ctx, "c1", base); return err },
		"Lookup":        func() error { _, err := s.Lookup(ctx, "c1"); return err },
		"Subscribe":     func() error { return s.Subscribe(ctx, c, "news", 100) },
		"Unsubscribe":   func() error { return s.Unsubscribe(ctx, "c1", "news") },
		"Subscribers":   func() error { _, err := s.Subscribers(ctx, "news"); return err },
		"Count":         func() error { return s.Count(ctx, core.Counts{Received: 1, Sent: 1}, base) },
		"AllowMessage":  func() error { return s.AllowMessage(ctx, "c1", 60, base) },
		"Snapshot":      func() error { _, err := s.Snapshot(ctx, base, time.Hour); return err },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			start := time.Now()
			err := call()
			if !errors.Is(err, core.ErrUnavailable) {
				t.Errorf("%s = %v, want an error matching core.ErrUnavailable", name, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("%s took %v, want at most the 2 s call timeout", name, d)
			}
		})
	}
	wg.Wait()

	// Batching: Count keeps the count in memory, Flush and Close report
	// the failure and keep it.
	b, err := dynamodb.New(ctx, dynamodb.Options{Client: newClient(dead), Table: "wsgate", FlushInterval: time.Hour, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Count(ctx, core.Counts{Received: 1}, base); err != nil {
		t.Fatalf("batched Count = %v, want nil (no request)", err)
	}
	if err := b.Close(ctx); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Close with counts pending = %v, want core.ErrUnavailable", err)
	}
	if _, err := dynamodb.CreateTable(ctx, newClient(dead), "wsgate"); err == nil {
		t.Fatal("CreateTable on a dead endpoint succeeded")
	}
}

// faulty fails the requests for which fail says so with a throttling
// error, as DynamoDB would once the SDK's retries are spent.
type faulty struct {
	dynamodb.API
	fail   func() bool
	failed atomic.Int64
}

func (f *faulty) err() error {
	if f.fail() {
		f.failed.Add(1)
		return &types.ProvisionedThroughputExceededException{Message: aws.String("injected by the test")}
	}
	return nil
}

func (f *faulty) GetItem(ctx context.Context, in *ddb.GetItemInput, o ...func(*ddb.Options)) (*ddb.GetItemOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.GetItem(ctx, in, o...)
}

func (f *faulty) PutItem(ctx context.Context, in *ddb.PutItemInput, o ...func(*ddb.Options)) (*ddb.PutItemOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.PutItem(ctx, in, o...)
}

func (f *faulty) UpdateItem(ctx context.Context, in *ddb.UpdateItemInput, o ...func(*ddb.Options)) (*ddb.UpdateItemOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.UpdateItem(ctx, in, o...)
}

func (f *faulty) DeleteItem(ctx context.Context, in *ddb.DeleteItemInput, o ...func(*ddb.Options)) (*ddb.DeleteItemOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.DeleteItem(ctx, in, o...)
}

func (f *faulty) Query(ctx context.Context, in *ddb.QueryInput, o ...func(*ddb.Options)) (*ddb.QueryOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.Query(ctx, in, o...)
}

func (f *faulty) BatchGetItem(ctx context.Context, in *ddb.BatchGetItemInput, o ...func(*ddb.Options)) (*ddb.BatchGetItemOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.BatchGetItem(ctx, in, o...)
}

func (f *faulty) BatchWriteItem(ctx context.Context, in *ddb.BatchWriteItemInput, o ...func(*ddb.Options)) (*ddb.BatchWriteItemOutput, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.API.BatchWriteItem(ctx, in, o...)
}

// TestThrottledMidway: with a third of the requests failing mid-way, each
// call either succeeds or fails with core.ErrUnavailable, and once the
// table answers again the counters hold exactly what succeeded, every
// connection can be released and the IP's slots are all free.
func TestThrottledMidway(t *testing.T) {
	for _, mode := range []struct {
		name  string
		flush time.Duration
	}{{"Direct", 0}, {"Batched", 5 * time.Millisecond}} {
		t.Run(mode.name, func(t *testing.T) {
			var (
				inject atomic.Bool
				mu     sync.Mutex
				rng    = rand.New(rand.NewPCG(7, 11))
			)
			f := &faulty{API: newClient(""), fail: func() bool {
				mu.Lock()
				defer mu.Unlock()
				return inject.Load() && rng.Float64() < 0.33
			}}
			s := newStore(t, dynamodb.Options{Client: f, FlushInterval: mode.flush})
			lim := core.Limits{MaxConnectionsPerIP: 3, MaxConnectsPerHour: 0, MaxAge: 2 * time.Hour}
			const ip = "10.7.7.7"
			var (
				admitted, released, counted int64
				duration                    time.Duration
				open                        []core.Conn
			)
			unavailable := func(what string, err error) {
				t.Helper()
				if err != nil && !errors.Is(err, core.ErrUnavailable) {
					t.Fatalf("%s: %v, want nil or core.ErrUnavailable", what, err)
				}
			}
			release := func(c core.Conn, at time.Time) bool {
				t.Helper()
				_, was, err := s.Release(ctx, c.ID, at)
				unavailable("Release", err)
				if was {
					released++
					duration += at.Sub(c.ConnectedAt)
				}
				return err == nil
			}
			now := base
			inject.Store(true)
			for i := range 80 {
				now = now.Add(time.Second)
				c := conn(fmt.Sprintf("c%d", i), ip, now)
				switch err := s.Admit(ctx, c, lim, now); {
				case err == nil:
					admitted++
					open = append(open, c)
				case errors.Is(err, core.ErrTooManyConnections): // slots held by calls that failed half way
				default:
					unavailable("Admit", err)
				}
				for _, c := range open {
					err := s.Count(ctx, core.Counts{Received: 1, Sent: 1}, now)
					unavailable("Count", err)
					if err == nil {
						counted++
					}
					unavailable("AllowMessage", s.AllowMessage(ctx, c.ID, 1000, now))
				}
				if len(open) >= 2 && release(open[0], now) {
					open = open[1:]
				}
			}
			inject.Store(false)
			if f.failed.Load() < 20 {
				t.Fatalf("only %d requests failed: the test injected too few faults", f.failed.Load())
			}
			for _, c := range open {
				if !release(c, now) {
					t.Fatalf("Release(%s) failed with the table healthy", c.ID)
				}
			}
			if err := s.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			got, err := s.Snapshot(ctx, now, 2*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			want := core.Snapshot{ActiveConnections: 0, ConnectionsToday: admitted, MessagesSent: counted, MessagesReceived: counted,
				ClosedToday: admitted, DurationToday: duration, MessagesLastMinute: got.MessagesLastMinute}
			if got != want || released != admitted {
				t.Fatalf("after healing: %+v\nwant %+v (released %d)", got, want, released)
			}
			t.Logf("%d requests failed; %d connects admitted, %d counts taken", f.failed.Load(), admitted, counted)
			// No slot stays taken by a call that failed half way.
			for i := range 3 {
				if err := s.Admit(ctx, conn(fmt.Sprintf("after%d", i), ip, now), lim, now); err != nil {
					t.Fatalf("Admit %d after healing: %v", i+1, err)
				}
			}
			if err := s.Admit(ctx, conn("after3", ip, now), lim, now); !errors.Is(err, core.ErrTooManyConnections) {
				t.Fatalf("fourth Admit after healing: %v, want ErrTooManyConnections", err)
			}
		})
	}
}

// TestSDKRetriesThrottling: throttling and 5xx answers from the server are
// retried by the SDK's retryer (NewClient's), so the calls succeed and
// the counters are exact.
func TestSDKRetriesThrottling(t *testing.T) {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// Every third operation gets a throttling answer to its first attempt
	// and a 503 to its second; the third attempt reaches dynalite.
	var ops, injected atomic.Int64
	var mu sync.Mutex
	doomed := map[string]bool{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Amz-Sdk-Invocation-Id")
		attempt := r.Header.Get("Amz-Sdk-Request") // "attempt=N; max=M"
		mu.Lock()
		if strings.HasPrefix(attempt, "attempt=1;") && ops.Add(1)%3 == 0 {
			doomed[id] = true
		}
		fail := doomed[id]
		mu.Unlock()
		switch {
		case fail && strings.HasPrefix(attempt, "attempt=1;"):
			injected.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`)
		case fail && strings.HasPrefix(attempt, "attempt=2;"):
			injected.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			proxy.ServeHTTP(w, r)
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	s := newStore(t, dynamodb.Options{Client: newClient("http://" + l.Addr().String()), Table: newTable(t)})
	lim := core.Limits{MaxConnectionsPerIP: 2, MaxConnectsPerHour: 10, MaxAge: time.Hour}
	for i := range 4 {
		c := conn(fmt.Sprintf("r%d", i), "10.3.3.3", base)
		err := s.Admit(ctx, c, lim, base)
		if i >= 2 {
			if !errors.Is(err, core.ErrTooManyConnections) {
				t.Fatalf("Admit %d: %v, want ErrTooManyConnections", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Admit %d: %v", i, err)
		}
		if err := s.Count(ctx, core.Counts{Received: 2, Sent: 3}, base); err != nil {
			t.Fatalf("Count: %v", err)
		}
	}
	if _, was, err := s.Release(ctx, "r0", base.Add(time.Second)); !was || err != nil {
		t.Fatalf("Release: %v %v", was, err)
	}
	got, err := s.Snapshot(ctx, base.Add(time.Second), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := core.Snapshot{ActiveConnections: 1, ConnectionsToday: 2, MessagesSent: 6, MessagesReceived: 4, ClosedToday: 1, DurationToday: time.Second, MessagesLastMinute: 4}
	if got != want {
		t.Fatalf("snapshot %+v, want %+v", got, want)
	}
	if injected.Load() < 10 || ops.Load() < 20 {
		t.Fatalf("only %d answers injected over %d operations", injected.Load(), ops.Load())
	}
}

// TestLostDisconnects: connections whose disconnect never arrives stop
// counting against their IP and in active_connections, and stop being
// fan-out targets, once MaxAge has passed; their late release frees
// nothing but their own slot.
func TestLostDisconnects(t *testing.T) {
	var clock atomic.Int64
	clock.Store(base.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	s := newStore(t, dynamodb.Options{Clock: now})
	lim := core.Limits{MaxConnectionsPerIP: 2, MaxConnectsPerHour: 100, MaxAge: 2 * time.Hour}
	const ip = "10.4.4.4"
	for _, id := range []string{"lost1", "lost2"} {
		c := conn(id, ip, base)
		if err := s.Admit(ctx, c, lim, base); err != nil {
			t.Fatal(err)
		}
		if err := s.Subscribe(ctx, c, "room", 100); err != nil {
			t.Fatal(err)
		}
	}
	check := func(at time.Time, active int64, subscribers int) {
		t.Helper()
		clock.Store(at.UnixNano())
		snap, err := s.Snapshot(ctx, at, lim.MaxAge)
		if err != nil {
			t.Fatal(err)
		}
		subs, err := s.Subscribers(ctx, "room")
		if err != nil {
			t.Fatal(err)
		}
		if snap.ActiveConnections != active || len(subs) != subscribers {
			t.Fatalf("at +%v: active %d, subscribers %d; want %d and %d", at.Sub(base), snap.ActiveConnections, len(subs), active, subscribers)
		}
	}
	hour := base.Add(time.Hour)
	check(hour, 2, 2)
	if err := s.Admit(ctx, conn("early", ip, hour), lim, hour); !errors.Is(err, core.ErrTooManyConnections) {
		t.Fatalf("Admit while both count: %v", err)
	}
	// The disconnects are never recorded; time passes MaxAge.
	later := base.Add(lim.MaxAge + time.Second)
	check(later, 0, 0)
	for _, id := range []string{"new1", "new2"} {
		if err := s.Admit(ctx, conn(id, ip, later), lim, later); err != nil {
			t.Fatalf("Admit(%s) past MaxAge: %v", id, err)
		}
	}
	if err := s.Admit(ctx, conn("new3", ip, later), lim, later); !errors.Is(err, core.ErrTooManyConnections) {
		t.Fatalf("third Admit past MaxAge: %v", err)
	}
	check(later, 2, 0)
	// A late disconnect of a lost connection is still recorded once, and
	// frees no slot of the new ones.
	if _, was, err := s.Release(ctx, "lost1", later); !was || err != nil {
		t.Fatalf("late Release: %v %v", was, err)
	}
	if err := s.Admit(ctx, conn("new3", ip, later), lim, later); !errors.Is(err, core.ErrTooManyConnections) {
		t.Fatalf("Admit after a late release: %v", err)
	}
	check(later, 2, 0)
}

// TestAdmitAcrossInstances: 20 connects from one IP racing on two stores
// that share a table admit exactly the limit, for the concurrent limit and
// for the hourly one, and both stores read the same metrics.
func TestAdmitAcrossInstances(t *testing.T) {
	table := newTable(t)
	stores := []*dynamodb.Store{newStore(t, dynamodb.Options{Table: table}), newStore(t, dynamodb.Options{Table: table, FlushInterval: time.Hour})}
	for _, tc := range []struct {
		ip  string
		lim core.Limits
		err error
	}{
		{"10.5.5.5", core.Limits{MaxConnectionsPerIP: 5, MaxAge: 2 * time.Hour}, core.ErrTooManyConnections},
		{"10.6.6.6", core.Limits{MaxConnectsPerHour: 5, MaxAge: 2 * time.Hour}, core.ErrTooManyConnects},
	} {
		var won, lost atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				err := stores[i%2].Admit(ctx, conn(fmt.Sprintf("%s-%d", tc.ip, i), tc.ip, base), tc.lim, base)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, tc.err):
					lost.Add(1)
				default:
					t.Errorf("Admit: %v", err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 5 || lost.Load() != 15 {
			t.Fatalf("%+v: %d admitted, %d refused; want 5 and 15", tc.lim, won.Load(), lost.Load())
		}
	}
	if err := stores[1].Flush(ctx); err != nil { // batched counts reach the table
		t.Fatal(err)
	}
	a, err := stores[0].Snapshot(ctx, base, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := stores[1].Snapshot(ctx, base, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.ActiveConnections != 10 || a.ConnectionsToday != 10 {
		t.Fatalf("the two stores read %+v and %+v; want both 10 active and 10 today", a, b)
	}
}

// TestCreateTable: creating is idempotent, tolerates a server without the
// TTL API, and the table matches TableSpec.
func TestCreateTable(t *testing.T) {
	client := newClient("")
	name := newTable(t)
	ttl, err := dynamodb.CreateTable(ctx, client, name)
	if err != nil {
		t.Fatalf("CreateTable on an existing table: %v", err)
	}
	t.Logf("TTL enabled: %v (dynalite has no TTL API)", ttl)
	desc, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	spec := dynamodb.TableSpec(name)
	if len(desc.Table.KeySchema) != len(spec.KeySchema) || len(desc.Table.GlobalSecondaryIndexes) != 1 ||
		aws.ToString(desc.Table.GlobalSecondaryIndexes[0].IndexName) != dynamodb.ActiveIndex {
		t.Fatalf("table %+v does not match the spec", desc.Table)
	}
	// A table from elsewhere, without the index, is refused.
	other := name + "-bare"
	if _, err := client.CreateTable(ctx, &ddb.CreateTableInput{
		TableName:            &other,
		AttributeDefinitions: spec.AttributeDefinitions[:2],
		KeySchema:            spec.KeySchema,
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateTable(ctx, client, other); err == nil {
		t.Fatal("CreateTable accepted a table without the active index")
	}
}

// TestBatchedClose: Close writes the counts kept in memory, and a store
// closed during a shutdown still counts what follows, directly.
func TestBatchedClose(t *testing.T) {
	table := newTable(t)
	reader := newStore(t, dynamodb.Options{Table: table})
	s, err := dynamodb.New(ctx, dynamodb.Options{Client: newClient(""), Table: table, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(ctx, conn("b1", "10.2.2.2", base), core.Limits{}, base); err != nil {
		t.Fatal(err)
	}
	if err := s.Count(ctx, core.Counts{Received: 4, Sent: 5}, base); err != nil {
		t.Fatal(err)
	}
	read := func() core.Snapshot {
		t.Helper()
		snap, err := reader.Snapshot(ctx, base.Add(time.Second), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	if got := read(); got.ConnectionsToday != 0 || got.MessagesReceived != 0 || got.ActiveConnections != 1 {
		t.Fatalf("before Close another instance reads %+v: counts should still be in memory", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(); got.ConnectionsToday != 1 || got.MessagesReceived != 4 || got.MessagesSent != 5 || got.MessagesLastMinute != 4 {
		t.Fatalf("after Close: %+v", got)
	}
	if _, was, err := s.Release(ctx, "b1", base.Add(time.Second)); !was || err != nil {
		t.Fatalf("Release after Close: %v %v", was, err)
	}
	if got := read(); got.ClosedToday != 1 || got.DurationToday != time.Second || got.ActiveConnections != 0 {
		t.Fatalf("a disconnect after Close is not counted: %+v", got)
	}
}

// TestAllowMessageAcrossInstances: 40 messages of one connection racing on
// two stores (two Lambdas) accept exactly the limit, and the window stays
// exact for later messages on either store.
func TestAllowMessageAcrossInstances(t *testing.T) {
	table := newTable(t)
	stores := []*dynamodb.Store{newStore(t, dynamodb.Options{Table: table}), newStore(t, dynamodb.Options{Table: table})}
	if err := stores[0].Admit(ctx, conn("chatty", "10.1.2.3", base), core.Limits{}, base); err != nil {
		t.Fatal(err)
	}
	const limit = 10
	var won, lost atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			at := base.Add(time.Duration(i) * 10 * time.Millisecond)
			err := stores[i%2].AllowMessage(ctx, "chatty", limit, at)
			var re *core.RetryError
			switch {
			case err == nil:
				won.Add(1)
			case errors.As(err, &re) && errors.Is(err, core.ErrRateLimited) && re.After > 59*time.Second && re.After < 61*time.Second: // times a few ms apart, out of order
				lost.Add(1)
			default:
				t.Errorf("AllowMessage: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != limit || lost.Load() != 40-limit {
		t.Fatalf("%d accepted, %d refused; want %d and %d", won.Load(), lost.Load(), limit, 40-limit)
	}
	// A minute after the first accepted ones, slots free again, whichever
	// store asks (one of them holds a stale window in its cache).
	later := base.Add(time.Minute + time.Second)
	for i := range limit {
		if err := stores[i%2].AllowMessage(ctx, "chatty", limit, later); err != nil {
			t.Fatalf("message %d a minute later: %v", i, err)
		}
	}
	if err := stores[1].AllowMessage(ctx, "chatty", limit, later); !errors.Is(err, core.ErrRateLimited) {
		t.Fatalf("message beyond the limit a minute later: %v", err)
	}
	if _, _, err := stores[0].Release(ctx, "chatty", later); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].AllowMessage(ctx, "chatty", limit, later.Add(time.Minute)); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("message of a released connection: %v, want ErrNotFound", err)
	}
}
