package dynamodb_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/dynamodb"
)

// TestRequestCost counts, with an SDK middleware, the DynamoDB requests of
// each store operation and checks them against the targets: at most 4 per
// connect, 2 per inbound message (Count + AllowMessage) and 3 per
// disconnect without subscriptions. go test -v -run RequestCost prints the
// table.
func TestRequestCost(t *testing.T) {
	var reqs requests
	client := newClient("", reqs.middleware)
	table := newTable(t)
	direct := newStore(t, dynamodb.Options{Client: client, Table: table})
	other := newStore(t, dynamodb.Options{Client: client, Table: table}) // a second process: cold cache
	third := newStore(t, dynamodb.Options{Client: client, Table: table}) // a third, cold too
	fourth := newStore(t, dynamodb.Options{Client: client, Table: table})
	batched := newStore(t, dynamodb.Options{Client: client, Table: table, FlushInterval: time.Hour})
	lim := core.Limits{MaxConnectionsPerIP: 5, MaxConnectsPerHour: 10, MaxAge: 2 * time.Hour}
	now := base
	step := func(what string, limit int, fn func() error) {
		t.Helper()
		reqs.take()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n, ops := reqs.take()
		t.Logf("%-58s %d  %s", what, n, ops)
		if limit >= 0 && n > limit {
			t.Errorf("%s took %d requests, want at most %d", what, n, limit)
		}
	}
	message := func(s *dynamodb.Store, id string) func() error {
		return func() error {
			now = now.Add(time.Second)
			if err := s.Count(ctx, core.Counts{Received: 1, Sent: 1}, now); err != nil {
				return err
			}
			return s.AllowMessage(ctx, id, 60, now)
		}
	}
	c := conn("cost", "10.8.8.8", now)
	step("Admit (per-IP limits on)", 4, func() error { return direct.Admit(ctx, c, lim, now) })
	step("Admit (limits off)", 2, func() error { return direct.Admit(ctx, conn("free", "10.8.8.9", now), core.Limits{}, now) })
	step("Count+AllowMessage, first message", 3, message(direct, c.ID))
	step("Count+AllowMessage, warm process", 2, message(direct, c.ID))
	step("Count+AllowMessage, other process (cold cache)", 3, message(other, c.ID))
	step("Count+AllowMessage, first process again (stale cache)", 4, message(direct, c.ID))
	step("Lookup, cold process", 1, func() error { _, err := fourth.Lookup(ctx, c.ID); return err })
	step("Lambda $default whoami, cold process: Count+AllowMessage+Lookup", 3, func() error {
		if err := message(third, c.ID)(); err != nil {
			return err
		}
		got, err := third.Lookup(ctx, c.ID) // the record AllowMessage read serves it
		if err == nil && got.User != c.User {
			err = fmt.Errorf("Lookup gave %+v", got)
		}
		return err
	})
	step("Lambda $default ping, warm process: Count+AllowMessage", 2, message(third, c.ID))
	step("Subscribe", 2, func() error { return direct.Subscribe(ctx, c, "room", 100) })
	step("Subscribers (one page)", 1, func() error { _, err := direct.Subscribers(ctx, "room"); return err })
	step("Unsubscribe", 2, func() error { return direct.Unsubscribe(ctx, c.ID, "room") })
	step("Subscribe again", 2, func() error { return direct.Subscribe(ctx, c, "room", 100) })
	step("Release (1 subscription)", 4, func() error { _, _, err := direct.Release(ctx, c.ID, now); return err })
	step("Release again (no-op)", 1, func() error { _, _, err := direct.Release(ctx, c.ID, now); return err })
	c2 := conn("cost2", "10.8.8.8", now)
	if err := direct.Admit(ctx, c2, lim, now); err != nil {
		t.Fatal(err)
	}
	step("Release (no subscriptions)", 3, func() error { _, _, err := direct.Release(ctx, c2.ID, now); return err })
	full := core.Limits{MaxConnectionsPerIP: 1, MaxAge: time.Hour}
	if err := direct.Admit(ctx, conn("holder", "10.8.8.10", now), full, now); err != nil {
		t.Fatal(err)
	}
	step("Admit refused", 1, func() error {
		if err := direct.Admit(ctx, conn("refused", "10.8.8.10", now), full, now); err != core.ErrTooManyConnections {
			return fmt.Errorf("got %v, want refusal", err)
		}
		return nil
	})
	step(fmt.Sprintf("Snapshot (%d shards)", dynamodb.DefaultShards), -1, func() error { _, err := direct.Snapshot(ctx, now, time.Hour); return err })

	c3 := conn("cost3", "10.8.8.11", now)
	step("batched: Admit", 3, func() error { return batched.Admit(ctx, c3, lim, now) })
	if err := message(batched, c3.ID)(); err != nil { // warms the cache
		t.Fatal(err)
	}
	step("batched: Count+AllowMessage, warm", 1, message(batched, c3.ID))
	step("batched: Count alone (x100)", 0, func() error {
		for range 100 {
			if err := batched.Count(ctx, core.Counts{Received: 1, Sent: 1}, now); err != nil {
				return err
			}
		}
		return nil
	})
	step("batched: Release (no subscriptions)", 2, func() error { _, _, err := batched.Release(ctx, c3.ID, now); return err })
	step("batched: Flush (one day, counts in 2 seconds)", 2, func() error { return batched.Flush(ctx) })
	for i := range 300 {
		if err := batched.Count(ctx, core.Counts{Received: 1}, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	step("batched: Flush of 300 seconds of counts (last 60 kept)", 60, func() error { return batched.Flush(ctx) })
}

// BenchmarkRequests reports the DynamoDB requests per operation
// (requests/op) with direct counting, as a Lambda pays them.
func BenchmarkRequests(b *testing.B) {
	var reqs requests
	client := newClient("", reqs.middleware)
	s := newStore(b, dynamodb.Options{Client: client})
	lim := core.Limits{MaxConnectionsPerIP: 5, MaxConnectsPerHour: 10, MaxAge: 2 * time.Hour}
	report := func(b *testing.B) {
		n, _ := reqs.take()
		b.ReportMetric(float64(n)/float64(b.N), "requests/op")
	}
	b.Run("Connect", func(b *testing.B) {
		reqs.take()
		for i := 0; b.Loop(); i++ {
			if err := s.Admit(ctx, conn(fmt.Sprintf("b%d", i), fmt.Sprintf("ip%d", i), base), lim, base); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("Message", func(b *testing.B) {
		if err := s.Admit(ctx, conn("msg", "10.9.0.1", base), lim, base); err != nil {
			b.Fatal(err)
		}
		now := base
		reqs.take()
		for b.Loop() {
			now = now.Add(time.Second)
			if err := s.Count(ctx, core.Counts{Received: 1, Sent: 1}, now); err != nil {
				b.Fatal(err)
			}
			if err := s.AllowMessage(ctx, "msg", 60, now); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("Disconnect", func(b *testing.B) {
		total := 0
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			id := fmt.Sprintf("d%d", i)
			if err := s.Admit(ctx, conn(id, fmt.Sprintf("dip%d", i), base), lim, base); err != nil {
				b.Fatal(err)
			}
			reqs.take()
			b.StartTimer()
			if _, _, err := s.Release(ctx, id, base.Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
			n, _ := reqs.take()
			total += n
		}
		b.ReportMetric(float64(total)/float64(b.N), "requests/op")
	})
}
