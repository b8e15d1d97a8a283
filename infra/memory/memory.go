// Package memory is wsgate's in-memory [core.Store], the embedded default of
// the local server. It keeps the same semantics as the DynamoDB store within
// one process: atomic per-IP limits, rolling windows, daily counters that
// reset at 00:00 UTC and a per-second window of the last minute's messages.
package memory

import (
	"context"
	"sync"
	"time"

	"github.com/wsgate/wsgate/core"
)

var (
	_ core.Store     = (*Store)(nil)
	_ core.RateStore = (*Store)(nil)
)

type entry struct {
	conn core.Conn
	subs map[string]struct{}
	rate core.RateWindow
}

// Store is an in-memory [core.Store]. The zero value is not usable; call
// [New].
type Store struct {
	mu       sync.Mutex
	conns    map[string]*entry
	byIP     map[string]map[string]*entry
	connects map[string][]time.Time // accepted connect times per IP, oldest first

	smu      sync.RWMutex
	channels map[string]map[string]core.Target

	cmu      sync.Mutex
	counters dayCounters
	seconds  [60]secondBucket
}

type dayCounters struct {
	day                      int64 // days since 1970-01-01 UTC
	connects, sent, received int64
	closed                   int64
	duration                 time.Duration
}

type secondBucket struct {
	sec int64 // unix second this bucket counts
	n   int64
}

// New returns an empty store.
func New() *Store {
	return &Store{
		conns:    make(map[string]*entry),
		byIP:     make(map[string]map[string]*entry),
		connects: make(map[string][]time.Time),
		channels: make(map[string]map[string]core.Target),
	}
}

// Admit implements [core.Store].
func (s *Store) Admit(ctx context.Context, c core.Conn, lim core.Limits, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.conns[c.ID]; dup {
		return nil // already admitted: admitting twice counts once
	}
	if lim.MaxConnectionsPerIP > 0 {
		open := 0
		for _, e := range s.byIP[c.IP] {
			if lim.MaxAge <= 0 || now.Sub(e.conn.ConnectedAt) < lim.MaxAge {
				open++
			}
		}
		if open >= lim.MaxConnectionsPerIP {
			return core.ErrTooManyConnections
		}
	}
	log := pruneBefore(s.connects[c.IP], now.Add(-time.Hour))
	if lim.MaxConnectsPerHour > 0 && len(log) >= lim.MaxConnectsPerHour {
		s.connects[c.IP] = log
		wait := log[len(log)-lim.MaxConnectsPerHour].Add(time.Hour).Sub(now)
		return &core.RetryError{Err: core.ErrTooManyConnects, After: wait}
	}
	s.connects[c.IP] = append(log, now)
	e := &entry{conn: c}
	s.conns[c.ID] = e
	ips := s.byIP[c.IP]
	if ips == nil {
		ips = make(map[string]*entry)
		s.byIP[c.IP] = ips
	}
	ips[c.ID] = e

	s.cmu.Lock()
	s.today(now).connects++
	s.cmu.Unlock()
	return nil
}

// pruneBefore drops the times before cut from an ascending log.
func pruneBefore(log []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(log) && !log[i].After(cut) {
		i++
	}
	if i == len(log) {
		return log[:0]
	}
	return log[i:]
}

// Release implements [core.Store].
func (s *Store) Release(ctx context.Context, id string, now time.Time) (core.Conn, bool, error) {
	s.mu.Lock()
	e, ok := s.conns[id]
	if !ok {
		s.mu.Unlock()
		return core.Conn{}, false, nil
	}
	delete(s.conns, id)
	if ips := s.byIP[e.conn.IP]; ips != nil {
		delete(ips, id)
		if len(ips) == 0 {
			delete(s.byIP, e.conn.IP)
		}
	}
	// Forget the IP's connect log once it holds nothing of the last hour,
	// so that the store does not grow with every address ever seen.
	if log := pruneBefore(s.connects[e.conn.IP], now.Add(-time.Hour)); len(log) == 0 {
		delete(s.connects, e.conn.IP)
	} else {
		s.connects[e.conn.IP] = log
	}
	subs := e.subs
	s.mu.Unlock()

	if len(subs) > 0 {
		s.smu.Lock()
		for ch := range subs {
			if m := s.channels[ch]; m != nil {
				delete(m, id)
				if len(m) == 0 {
					delete(s.channels, ch)
				}
			}
		}
		s.smu.Unlock()
	}

	s.cmu.Lock()
	d := s.today(now)
	d.closed++
	d.duration += max(now.Sub(e.conn.ConnectedAt), 0)
	s.cmu.Unlock()
	return e.conn, true, nil
}

// Lookup implements [core.Store].
func (s *Store) Lookup(ctx context.Context, id string) (core.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.conns[id]; ok {
		return e.conn, nil
	}
	return core.Conn{}, core.ErrNotFound
}

// Subscribe implements [core.Store].
func (s *Store) Subscribe(ctx context.Context, c core.Conn, channel string, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.conns[c.ID]
	if !ok {
		return core.ErrNotFound
	}
	if _, dup := e.subs[channel]; dup {
		return nil
	}
	if max > 0 && len(e.subs) >= max {
		return core.ErrTooManySubscriptions
	}
	if e.subs == nil {
		e.subs = make(map[string]struct{})
	}
	e.subs[channel] = struct{}{}
	s.smu.Lock()
	m := s.channels[channel]
	if m == nil {
		m = make(map[string]core.Target)
		s.channels[channel] = m
	}
	m[c.ID] = core.Target{ID: c.ID, Endpoint: e.conn.Endpoint}
	s.smu.Unlock()
	return nil
}

// Unsubscribe implements [core.Store].
func (s *Store) Unsubscribe(ctx context.Context, id, channel string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.conns[id]; ok {
		delete(e.subs, channel)
	}
	s.smu.Lock()
	if m := s.channels[channel]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(s.channels, channel)
		}
	}
	s.smu.Unlock()
	return nil
}

// Subscribers implements [core.Store].
func (s *Store) Subscribers(ctx context.Context, channel string) ([]core.Target, error) {
	s.smu.RLock()
	defer s.smu.RUnlock()
	m := s.channels[channel]
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]core.Target, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	return out, nil
}

// AllowMessage implements [core.RateStore].
func (s *Store) AllowMessage(ctx context.Context, id string, limit int, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.conns[id]
	if !ok {
		return core.ErrNotFound
	}
	if ok, wait := e.rate.Allow(now, limit); !ok {
		return &core.RetryError{Err: core.ErrRateLimited, After: wait}
	}
	return nil
}

// Count implements [core.Store].
func (s *Store) Count(ctx context.Context, n core.Counts, now time.Time) error {
	s.cmu.Lock()
	d := s.today(now)
	d.received += n.Received
	d.sent += n.Sent
	if n.Received > 0 {
		sec := now.Unix()
		b := &s.seconds[sec%60]
		if b.sec != sec {
			b.sec, b.n = sec, 0
		}
		b.n += n.Received
	}
	s.cmu.Unlock()
	return nil
}

// today returns the counters of now's UTC day, starting a new day at
// midnight. s.cmu must be held.
func (s *Store) today(now time.Time) *dayCounters {
	day := now.Unix() / 86400 // times before 1970 never occur here
	if day > s.counters.day {
		s.counters = dayCounters{day: day}
	}
	return &s.counters
}

// Snapshot implements [core.Store].
func (s *Store) Snapshot(ctx context.Context, now time.Time, maxAge time.Duration) (core.Snapshot, error) {
	var out core.Snapshot
	s.mu.Lock()
	for _, e := range s.conns {
		if maxAge <= 0 || now.Sub(e.conn.ConnectedAt) < maxAge {
			out.ActiveConnections++
		}
	}
	s.mu.Unlock()

	s.cmu.Lock()
	defer s.cmu.Unlock()
	if d := s.today(now); d != nil {
		out.ConnectionsToday = d.connects
		out.MessagesSent = d.sent
		out.MessagesReceived = d.received
		out.ClosedToday = d.closed
		out.DurationToday = d.duration
	}
	sec := now.Unix()
	for _, b := range s.seconds {
		if b.sec > sec-60 && b.sec <= sec {
			out.MessagesLastMinute += b.n
		}
	}
	return out, nil
}
