// Package storetest is the conformance suite every [core.Store] must pass.
// Call [Run] from a test in the store's package, in the shape of
// testing/slogtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) core.Store { return memory.New() })
//	}
//
// Each subtest gets a fresh store from newStore. Times are explicit, so the
// suite needs no clock: windows and midnight rollovers are driven by the
// times passed to the store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/core"
)

// base is a fixed time well inside a UTC day.
var base = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) core.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s core.Store)
	}{
		{"AdmitPerIPLimit", testAdmitPerIPLimit},
		{"AdmitRaceForLastSlot", testAdmitRace},
		{"ConnectsPerRollingHour", testConnectsPerHour},
		{"AgedConnectionsStopCounting", testAged},
		{"ReleaseIdempotent", testReleaseIdempotent},
		{"LookupAndEndpoint", testLookup},
		{"Subscriptions", testSubscriptions},
		{"SubscriptionLimit", testSubscriptionLimit},
		{"ReleaseDropsSubscriptions", testReleaseDropsSubs},
		{"CountersAndMidnight", testCounters},
		{"MessagesLastMinute", testLastMinute},
		{"ConcurrentCounts", testConcurrentCounts},
		{"RateWindow", testRateWindow},
		{"AdmitTwiceCountsOnce", testAdmitTwice},
		{"LastMinuteAcrossMidnight", testLastMinuteMidnight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

var ctx = context.Background()

func conn(id, ip string, at time.Time) core.Conn {
	return core.Conn{ID: id, User: "u-" + id, IP: ip, ConnectedAt: at, Endpoint: "http://127.0.0.1:1"}
}

func mustAdmit(t *testing.T, s core.Store, c core.Conn, lim core.Limits) {
	t.Helper()
	if err := s.Admit(ctx, c, lim, c.ConnectedAt); err != nil {
		t.Fatalf("Admit(%s): %v", c.ID, err)
	}
}

func snapshot(t *testing.T, s core.Store, now time.Time) core.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(ctx, now, 2*time.Hour)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return snap
}

func testAdmitPerIPLimit(t *testing.T, s core.Store) {
	lim := core.Limits{MaxConnectionsPerIP: 2, MaxAge: 2 * time.Hour}
	mustAdmit(t, s, conn("a1", "10.0.0.1", base), lim)
	mustAdmit(t, s, conn("a2", "10.0.0.1", base), lim)
	if err := s.Admit(ctx, conn("a3", "10.0.0.1", base), lim, base); !errors.Is(err, core.ErrTooManyConnections) {
		t.Fatalf("third connect from one IP: got %v, want ErrTooManyConnections", err)
	}
	mustAdmit(t, s, conn("b1", "10.0.0.2", base), lim) // other IPs unaffected
	if _, _, err := s.Release(ctx, "a1", base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	mustAdmit(t, s, conn("a3", "10.0.0.1", base.Add(time.Second)), lim)
	if got := snapshot(t, s, base.Add(2*time.Second)); got.ActiveConnections != 3 || got.ConnectionsToday != 4 {
		t.Fatalf("active=%d today=%d, want 3 and 4", got.ActiveConnections, got.ConnectionsToday)
	}
}

func testAdmitRace(t *testing.T, s core.Store) {
	const limit, racers = 5, 30
	lim := core.Limits{MaxConnectionsPerIP: limit, MaxAge: 2 * time.Hour}
	var won, lost atomic.Int32
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			err := s.Admit(ctx, conn(fmt.Sprintf("r%d", i), "10.9.9.9", base), lim, base)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, core.ErrTooManyConnections):
				lost.Add(1)
			default:
				t.Errorf("Admit: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != limit || lost.Load() != racers-limit {
		t.Fatalf("%d racers for %d slots: %d admitted, %d refused", racers, limit, won.Load(), lost.Load())
	}
}

func testConnectsPerHour(t *testing.T, s core.Store) {
	lim := core.Limits{MaxConnectsPerHour: 3, MaxAge: 2 * time.Hour}
	for i := range 3 {
		at := base.Add(time.Duration(i) * 10 * time.Minute)
		mustAdmit(t, s, conn(fmt.Sprintf("h%d", i), "10.0.0.3", at), lim)
		if _, _, err := s.Release(ctx, fmt.Sprintf("h%d", i), at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Three accepted at +0, +10m, +20m: at +30m the window is full, and the
	// first slot frees at +60m.
	now := base.Add(30 * time.Minute)
	err := s.Admit(ctx, conn("h3", "10.0.0.3", now), lim, now)
	var re *core.RetryError
	if !errors.Is(err, core.ErrTooManyConnects) || !errors.As(err, &re) {
		t.Fatalf("fourth connect in the hour: got %v, want RetryError(ErrTooManyConnects)", err)
	}
	if re.After <= 29*time.Minute || re.After > 30*time.Minute {
		t.Fatalf("retry after %v, want about 30m", re.After)
	}
	// Refused connects do not count: just after +60m one slot is free.
	later := base.Add(time.Hour + time.Second)
	mustAdmit(t, s, conn("h4", "10.0.0.3", later), lim)
	if err := s.Admit(ctx, conn("h5", "10.0.0.3", later), lim, later); !errors.Is(err, core.ErrTooManyConnects) {
		t.Fatalf("second connect after one slot freed: got %v", err)
	}
}

func testAged(t *testing.T, s core.Store) {
	lim := core.Limits{MaxConnectionsPerIP: 1, MaxAge: 2 * time.Hour}
	mustAdmit(t, s, conn("old", "10.0.0.4", base), lim) // its disconnect is never recorded
	if got := snapshot(t, s, base.Add(time.Hour)); got.ActiveConnections != 1 {
		t.Fatalf("active after 1h = %d, want 1", got.ActiveConnections)
	}
	if err := s.Admit(ctx, conn("new0", "10.0.0.4", base.Add(time.Hour)), lim, base.Add(time.Hour)); !errors.Is(err, core.ErrTooManyConnections) {
		t.Fatalf("connect while the old one counts: %v", err)
	}
	later := base.Add(2*time.Hour + time.Second)
	if got := snapshot(t, s, later); got.ActiveConnections != 0 {
		t.Fatalf("active past max age = %d, want 0", got.ActiveConnections)
	}
	mustAdmit(t, s, conn("new", "10.0.0.4", later), lim)
}

func testReleaseIdempotent(t *testing.T, s core.Store) {
	mustAdmit(t, s, conn("x", "10.0.0.5", base), core.Limits{})
	end := base.Add(10 * time.Second)
	c, was, err := s.Release(ctx, "x", end)
	if err != nil || !was || c.User != "u-x" {
		t.Fatalf("first Release: conn=%+v was=%v err=%v", c, was, err)
	}
	if _, was, err := s.Release(ctx, "x", end); err != nil || was {
		t.Fatalf("second Release: was=%v err=%v, want false, nil", was, err)
	}
	if _, was, err := s.Release(ctx, "never", end); err != nil || was {
		t.Fatalf("Release of unknown id: was=%v err=%v", was, err)
	}
	got := snapshot(t, s, end)
	if got.ClosedToday != 1 || got.DurationToday != 10*time.Second || got.ActiveConnections != 0 {
		t.Fatalf("closed=%d duration=%v active=%d, want 1, 10s, 0", got.ClosedToday, got.DurationToday, got.ActiveConnections)
	}
}

func testLookup(t *testing.T, s core.Store) {
	c := conn("look", "10.0.0.6", base)
	c.Admin = true
	mustAdmit(t, s, c, core.Limits{})
	got, err := s.Lookup(ctx, "look")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.User != c.User || !got.Admin || got.IP != c.IP || got.Endpoint != c.Endpoint || !got.ConnectedAt.Equal(c.ConnectedAt) {
		t.Fatalf("Lookup = %+v, want %+v", got, c)
	}
	if _, err := s.Lookup(ctx, "missing"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Lookup(missing) = %v, want ErrNotFound", err)
	}
}

func ids(ts []core.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	slices.Sort(out)
	return out
}

func testSubscriptions(t *testing.T, s core.Store) {
	a, b := conn("sa", "10.0.1.1", base), conn("sb", "10.0.1.2", base)
	mustAdmit(t, s, a, core.Limits{})
	mustAdmit(t, s, b, core.Limits{})
	for _, c := range []core.Conn{a, a, b} { // a subscribes twice
		if err := s.Subscribe(ctx, c, "news", 100); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Subscribers(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{"sa", "sb"}) {
		t.Fatalf("subscribers = %v", ids(got))
	}
	for _, tg := range got {
		if tg.Endpoint != a.Endpoint {
			t.Fatalf("target %+v lost its endpoint", tg)
		}
	}
	if err := s.Unsubscribe(ctx, "sa", "news"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(ctx, "sa", "never-subscribed"); err != nil {
		t.Fatalf("unsubscribe from an unknown channel: %v", err)
	}
	got, _ = s.Subscribers(ctx, "news")
	if !slices.Equal(ids(got), []string{"sb"}) {
		t.Fatalf("after unsubscribe: %v", ids(got))
	}
	if got, _ := s.Subscribers(ctx, "empty"); len(got) != 0 {
		t.Fatalf("empty channel has %v", got)
	}
}

func testSubscriptionLimit(t *testing.T, s core.Store) {
	c := conn("lim", "10.0.1.3", base)
	mustAdmit(t, s, c, core.Limits{})
	for i := range 3 {
		if err := s.Subscribe(ctx, c, fmt.Sprintf("c%d", i), 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Subscribe(ctx, c, "c0", 3); err != nil {
		t.Fatalf("re-subscribing at the limit: %v", err)
	}
	if err := s.Subscribe(ctx, c, "c3", 3); !errors.Is(err, core.ErrTooManySubscriptions) {
		t.Fatalf("fourth subscription: %v", err)
	}
	if err := s.Unsubscribe(ctx, c.ID, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, c, "c3", 3); err != nil {
		t.Fatalf("subscription after freeing one: %v", err)
	}
}

func testReleaseDropsSubs(t *testing.T, s core.Store) {
	c := conn("gone", "10.0.1.4", base)
	mustAdmit(t, s, c, core.Limits{})
	if err := s.Subscribe(ctx, c, "room", 10); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Release(ctx, c.ID, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Subscribers(ctx, "room"); len(got) != 0 {
		t.Fatalf("released connection still subscribed: %v", got)
	}
}

func testCounters(t *testing.T, s core.Store) {
	day1 := time.Date(2026, 3, 14, 23, 59, 0, 0, time.UTC)
	mustAdmit(t, s, conn("d1", "10.0.2.1", day1), core.Limits{})
	if err := s.Count(ctx, core.Counts{Received: 3, Sent: 5}, day1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Release(ctx, "d1", day1.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, s, day1.Add(40*time.Second))
	if got.ConnectionsToday != 1 || got.MessagesReceived != 3 || got.MessagesSent != 5 || got.ClosedToday != 1 || got.DurationToday != 30*time.Second {
		t.Fatalf("day 1: %+v", got)
	}
	// Past midnight UTC the day's figures start again.
	day2 := time.Date(2026, 3, 15, 0, 0, 30, 0, time.UTC)
	got = snapshot(t, s, day2)
	if got.ConnectionsToday != 0 || got.MessagesReceived != 0 || got.MessagesSent != 0 || got.ClosedToday != 0 {
		t.Fatalf("after midnight: %+v, want zeros", got)
	}
	mustAdmit(t, s, conn("d2", "10.0.2.1", day2), core.Limits{})
	if err := s.Count(ctx, core.Counts{Received: 1, Sent: 2}, day2); err != nil {
		t.Fatal(err)
	}
	got = snapshot(t, s, day2.Add(time.Second))
	if got.ConnectionsToday != 1 || got.MessagesReceived != 1 || got.MessagesSent != 2 || got.ActiveConnections != 1 {
		t.Fatalf("day 2: %+v", got)
	}
}

func testLastMinute(t *testing.T, s core.Store) {
	for i := range 10 {
		if err := s.Count(ctx, core.Counts{Received: 1}, base.Add(time.Duration(i)*5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Messages at +0s … +45s.
	for _, tc := range []struct {
		at   time.Duration
		want int64
	}{
		{45 * time.Second, 10},
		{59 * time.Second, 10},
		{60 * time.Second, 9}, // +0s has left the window
		{80 * time.Second, 5},
		{106 * time.Second, 0},
		{10 * time.Minute, 0},
	} {
		if got := snapshot(t, s, base.Add(tc.at)).MessagesLastMinute; got != tc.want {
			t.Errorf("messages in the minute before +%v = %d, want %d", tc.at, got, tc.want)
		}
	}
}

func testConcurrentCounts(t *testing.T, s core.Store) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := s.Count(ctx, core.Counts{Received: 1, Sent: 1}, base); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := snapshot(t, s, base)
	if got.MessagesReceived != workers*each || got.MessagesSent != workers*each || got.MessagesLastMinute != workers*each {
		t.Fatalf("after %d concurrent counts: %+v", workers*each, got)
	}
}

func testRateWindow(t *testing.T, s core.Store) {
	rs, ok := s.(core.RateStore)
	if !ok {
		t.Fatal("every wsgate store must implement core.RateStore (the Lambda adapter needs it)")
	}
	mustAdmit(t, s, conn("rw", "10.0.3.1", base), core.Limits{})
	for i := range 3 {
		if err := rs.AllowMessage(ctx, "rw", 3, base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	err := rs.AllowMessage(ctx, "rw", 3, base.Add(10*time.Second))
	var re *core.RetryError
	if !errors.Is(err, core.ErrRateLimited) || !errors.As(err, &re) || re.After != 50*time.Second {
		t.Fatalf("fourth message in the minute: %v, want RetryError after 50s", err)
	}
	if err := rs.AllowMessage(ctx, "rw", 3, base.Add(60*time.Second)); err != nil {
		t.Fatalf("message once the first left the window: %v", err)
	}
}

func testAdmitTwice(t *testing.T, s core.Store) {
	lim := core.Limits{MaxConnectionsPerIP: 2, MaxConnectsPerHour: 10, MaxAge: 2 * time.Hour}
	c := conn("twice", "10.0.4.1", base)
	mustAdmit(t, s, c, lim)
	mustAdmit(t, s, c, lim) // a retried connect of the same id
	mustAdmit(t, s, conn("other", "10.0.4.1", base), lim)
	if err := s.Admit(ctx, conn("third", "10.0.4.1", base), lim, base); !errors.Is(err, core.ErrTooManyConnections) {
		t.Fatalf("third connection with two open: %v, want ErrTooManyConnections", err)
	}
	if got := snapshot(t, s, base); got.ActiveConnections != 2 || got.ConnectionsToday != 2 {
		t.Fatalf("active=%d today=%d, want 2 and 2", got.ActiveConnections, got.ConnectionsToday)
	}
}

func testLastMinuteMidnight(t *testing.T, s core.Store) {
	before := time.Date(2026, 3, 14, 23, 59, 50, 0, time.UTC)
	if err := s.Count(ctx, core.Counts{Received: 2}, before); err != nil {
		t.Fatal(err)
	}
	after := time.Date(2026, 3, 15, 0, 0, 5, 0, time.UTC)
	if err := s.Count(ctx, core.Counts{Received: 3}, after); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, s, after.Add(15*time.Second))
	if got.MessagesLastMinute != 5 || got.MessagesReceived != 3 {
		t.Fatalf("20 s after midnight: last minute %d, today %d; want 5 and 3", got.MessagesLastMinute, got.MessagesReceived)
	}
	if got := snapshot(t, s, before.Add(time.Minute)); got.MessagesLastMinute != 3 {
		t.Fatalf("a minute after the first count: last minute %d, want 3", got.MessagesLastMinute)
	}
}
