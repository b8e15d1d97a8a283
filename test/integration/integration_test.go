package integration_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/core"
)

func TestCrossInstanceFanOut(t *testing.T) {
	table := newTable(t)
	a := newInstance(t, endpoint, table, limits{}, nil)
	b := newInstance(t, endpoint, table, limits{}, nil)
	subA := a.mustDial(t, "sub-a")
	subB := b.mustDial(t, "sub-b")
	pubB := b.mustDial(t, "pub-b")
	for _, c := range []*websocket.Conn{subA, subB} {
		if got := roundTrip(t, c, `{"type":"subscribe","channel":"room"}`); got["type"] != "subscribed" {
			t.Fatal(got)
		}
	}
	got := roundTrip(t, pubB, `{"type":"publish","channel":"room","data":{"n":1},"id":"p"}`)
	if got["delivered"] != 2.0 || got["id"] != "p" {
		t.Fatalf("publish on B: %v", got)
	}
	for name, c := range map[string]*websocket.Conn{"A": subA, "B": subB} {
		if ev := read(t, c); ev["type"] != "event" || ev["from"] != "pub-b" {
			t.Fatalf("subscriber on %s got %v", name, ev)
		}
	}
	// The back end's publish reaches both instances through either one.
	for _, in := range []*instance{a, b} {
		status, body := in.admin(t, "POST", "/api/publish", `{"channel":"room","data":"x"}`)
		if status != 200 || body["delivered"] != 2.0 {
			t.Fatalf("admin publish: %d %v", status, body)
		}
		for _, c := range []*websocket.Conn{subA, subB} {
			if ev := read(t, c); ev["from"] != "server" {
				t.Fatalf("admin event: %v", ev)
			}
		}
	}
	// Both instances read the same metrics once each has written its
	// batched counts (every FlushInterval).
	agree(t, a, b)
	if ma := a.metrics(t); num(ma, "active_connections") != 3 || num(ma, "connections_today") != 3 ||
		num(ma, "messages_received") != 3 || num(ma, "messages_sent") != 3+2+4 {
		t.Fatalf("metrics: %v", ma)
	}
}

// dropReleases loses every disconnect while set, like a crashed instance.
type dropReleases struct {
	core.Store
	drop atomic.Bool
}

func (d *dropReleases) Release(ctx context.Context, id string, now time.Time) (core.Conn, bool, error) {
	if d.drop.Load() {
		return core.Conn{}, false, nil
	}
	return d.Store.Release(ctx, id, now)
}

func TestCrashedInstanceIsCleanedUp(t *testing.T) {
	table := newTable(t)
	a := newInstance(t, endpoint, table, limits{perIP: 4}, nil)
	var crash *dropReleases
	b := newInstance(t, endpoint, table, limits{perIP: 4}, func(s core.Store) core.Store {
		crash = &dropReleases{Store: s}
		return crash
	})
	subA := a.mustDial(t, "a")
	roundTrip(t, subA, `{"type":"subscribe","channel":"room"}`)
	for i := range 3 {
		c := b.mustDial(t, fmt.Sprint("b", i))
		roundTrip(t, c, `{"type":"subscribe","channel":"room"}`)
	}
	if _, status := a.dial(t, "one-too-many"); status != 429 {
		t.Fatalf("fifth connection from one IP: %d, want 429", status)
	}
	// B dies: its connections drop and no disconnect is recorded.
	crash.drop.Store(true)
	b.stop()
	if m := a.metrics(t); num(m, "active_connections") != 4 {
		t.Fatalf("before any send, B's lost connections still count: %v", m)
	}
	// A's fan-out finds B's connections gone (B does not answer) and cleans them up.
	status, body := a.admin(t, "POST", "/api/publish", `{"channel":"room","data":1}`)
	if status != 200 || body["delivered"] != 1.0 {
		t.Fatalf("publish after B died: %d %v", status, body)
	}
	if ev := read(t, subA); ev["type"] != "event" {
		t.Fatal(ev)
	}
	if m := a.metrics(t); num(m, "active_connections") != 1 {
		t.Fatalf("B's connections were not cleaned up: %v", m)
	}
	subs, err := a.store.Subscribers(context.Background(), "room")
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscribers after cleanup: %v %v", subs, err)
	}
	// The IP's slots are free again.
	for i := range 3 {
		a.mustDial(t, fmt.Sprint("again", i))
	}
}

func TestLimitsAcrossInstances(t *testing.T) {
	table := newTable(t)
	a := newInstance(t, endpoint, table, limits{perIP: 5}, nil)
	b := newInstance(t, endpoint, table, limits{perIP: 5}, nil)
	for i := range 3 {
		a.mustDial(t, fmt.Sprint("a", i))
	}
	for i := range 2 {
		b.mustDial(t, fmt.Sprint("b", i))
	}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if _, status := in.dial(t, "sixth"); status != 429 {
			t.Fatalf("sixth connection on %s: %d, want 429", name, status)
		}
	}

	// 20 concurrent connects from one IP across both admit exactly the limit.
	table2 := newTable(t)
	c := newInstance(t, endpoint, table2, limits{perIP: 5}, nil)
	d := newInstance(t, endpoint, table2, limits{perIP: 5}, nil)
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		in := c
		if i%2 == 1 {
			in = d
		}
		wg.Go(func() {
			conn, resp, err := websocket.Dial(tctx(t), in.ws+"?token="+token(t, fmt.Sprint("r", i), false), nil)
			switch {
			case err == nil:
				ok.Add(1)
				t.Cleanup(func() { conn.CloseNow() })
			case resp != nil && resp.StatusCode == 429:
				refused.Add(1)
			default:
				t.Errorf("dial: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 5 || refused.Load() != 15 {
		t.Fatalf("20 racing connects across two servers: %d admitted, %d refused", ok.Load(), refused.Load())
	}
	agree(t, c, d)
	if m := c.metrics(t); num(m, "active_connections") != 5 || num(m, "connections_today") != 5 {
		t.Fatalf("metrics: %v", m)
	}
}

func TestStoreFaults(t *testing.T) {
	table := newTable(t)
	p := newProxy(t, endpoint)
	p.setDown(true)
	in := newInstance(t, p.url(), table, limits{perIP: 5}, nil)

	// Unreachable at start: refused with 503, never let through.
	if _, status := in.dial(t, "early"); status != 503 {
		t.Fatalf("connect with the store down: %d, want 503", status)
	}
	if status, _ := in.admin(t, "GET", "/api/monitoring/websocket/metrics/", ""); status != 503 {
		t.Fatalf("metrics with the store down: %d, want 503", status)
	}

	p.setDown(false)
	c := in.mustDial(t, "u")
	sent := 0
	for range 3 {
		roundTrip(t, c, `{"type":"ping"}`)
		sent++
	}

	// The store goes away mid-session.
	p.setDown(true)
	if got := roundTrip(t, c, `{"type":"subscribe","channel":"x","id":1}`); got["code"] != "unavailable" || got["id"] != 1.0 {
		t.Fatalf("subscribe with the store gone: %v", got)
	}
	sent++
	if _, status := in.dial(t, "during"); status != 503 {
		t.Fatalf("connect with the store gone: %d", status)
	}

	// Back again: the session goes on and no counter was lost or doubled.
	p.setDown(false)
	for range 2 {
		if got := roundTrip(t, c, `{"type":"ping"}`); got["type"] != "pong" {
			t.Fatalf("after recovery: %v", got)
		}
		sent++
	}
	eventually(t, "the counts to be written", func() bool {
		m := in.metrics(t)
		return num(m, "messages_received") == float64(sent)
	})
	m := in.metrics(t)
	if num(m, "connections_today") != 1 || num(m, "messages_sent") != float64(sent) || num(m, "active_connections") != 1 {
		t.Fatalf("after recovery: %v (sent %d messages on 1 connection)", m, sent)
	}
}

// agree waits until two instances report the same figures.
func agree(t *testing.T, a, b *instance) {
	t.Helper()
	var ma, mb map[string]any
	same := func() bool {
		ma, mb = a.metrics(t), b.metrics(t)
		for _, k := range []string{"active_connections", "connections_today", "messages_received", "messages_sent", "messages_per_minute"} {
			if ma[k] != mb[k] {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); !same(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("instances disagree: %v vs %v", ma, mb)
		}
	}
}

// TestRequestsPerMessageOnLocalServer: the local server keeps rate windows
// in memory and batches counters, so messages cost DynamoDB requests only
// at each flush, not per message.
func TestRequestsPerMessageOnLocalServer(t *testing.T) {
	table := newTable(t)
	in := newInstance(t, endpoint, table, limits{perIP: 5}, nil)
	c := in.mustDial(t, "counter")
	roundTrip(t, c, `{"type":"ping"}`)
	time.Sleep(300 * time.Millisecond) // let the connect's counts flush
	before := requests.Load()
	start := time.Now()
	const n = 50
	for range n {
		roundTrip(t, c, `{"type":"ping"}`)
	}
	elapsed := time.Since(start)
	used := requests.Load() - before
	flushes := int64(elapsed/(200*time.Millisecond)) + 2
	t.Logf("%d pings in %v cost %d DynamoDB requests (flush interval 200ms)", n, elapsed, used)
	if used > flushes {
		t.Fatalf("%d pings cost %d requests, more than the %d flushes in %v", n, used, flushes, elapsed)
	}
}
