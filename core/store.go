package core

import (
	"context"
	"time"
)

// Conn is the record of one open connection, as the store keeps it.
type Conn struct {
	// ID is the connection id: API Gateway's connectionId on AWS, a random
	// URL-safe string on the local server.
	ID string
	// User is the token's subject.
	User string
	// Admin reports whether the token carried the admin claim.
	Admin bool
	// IP is the client IP the limits are counted against.
	IP string
	// ConnectedAt is when the connection was admitted.
	ConnectedAt time.Time
	// Endpoint says where the connection is held, for delivery: empty for
	// this process, a local server's advertise URL (http or https), or an
	// API Gateway management endpoint prefixed with [APIGatewayPrefix].
	Endpoint string
}

// APIGatewayPrefix marks a [Conn.Endpoint] that is an API Gateway
// management API endpoint rather than a wsgate server.
const APIGatewayPrefix = "apigw:"

// Target is where a frame is delivered: a connection id and its endpoint.
type Target struct {
	ID       string
	Endpoint string
}

// Limits are the per-IP connection limits a [Store] enforces in
// [Store.Admit]. A zero limit is off.
type Limits struct {
	// MaxConnectionsPerIP bounds the concurrent open connections of one IP.
	MaxConnectionsPerIP int
	// MaxConnectsPerHour bounds the connections admitted for one IP in any
	// rolling hour.
	MaxConnectsPerHour int
	// MaxAge is the age after which a connection whose disconnect was never
	// recorded stops counting (API Gateway closes connections at 2 h).
	MaxAge time.Duration
}

// Counts is a batch of message counter increments.
type Counts struct {
	Received int64 // inbound data messages
	Sent     int64 // outbound data messages
}

// Snapshot is the store's reading of the metrics at a given time.
type Snapshot struct {
	ActiveConnections int64
	ConnectionsToday  int64
	MessagesSent      int64
	MessagesReceived  int64
	// ClosedToday and DurationToday give the mean duration of the
	// connections that closed since 00:00 UTC.
	ClosedToday   int64
	DurationToday time.Duration
	// MessagesLastMinute counts inbound messages in the last 60 s.
	MessagesLastMinute int64
}

// Store keeps the state that must hold across every instance: open
// connections, per-IP limits, subscriptions and counters. Implementations
// must be safe for concurrent use and must wrap transport failures with
// [ErrUnavailable].
type Store interface {
	// Admit atomically checks the per-IP limits and records c as open. It
	// returns [ErrTooManyConnections], or a [*RetryError] wrapping
	// [ErrTooManyConnects]. Two Admits racing for the last slot never both
	// succeed. An admitted connection also counts in the day's connections.
	Admit(ctx context.Context, c Conn, lim Limits, now time.Time) error
	// Release records that connection id closed: it frees its per-IP slot,
	// drops its subscriptions and adds its duration to the day's figures.
	// It reports whether the connection was open; releasing twice is a no-op.
	Release(ctx context.Context, id string, now time.Time) (Conn, bool, error)
	// Lookup returns the open connection id, or [ErrNotFound].
	Lookup(ctx context.Context, id string) (Conn, error)
	// Subscribe adds channel to connection id's subscriptions. Subscribing
	// twice counts once; a new subscription beyond max returns
	// [ErrTooManySubscriptions] (max 0: no bound).
	Subscribe(ctx context.Context, c Conn, channel string, max int) error
	// Unsubscribe removes channel from connection id's subscriptions.
	Unsubscribe(ctx context.Context, id, channel string) error
	// Subscribers lists where channel's subscribers are held.
	Subscribers(ctx context.Context, channel string) ([]Target, error)
	// Count adds message counts to the day's and the last minute's figures.
	Count(ctx context.Context, n Counts, now time.Time) error
	// Snapshot reads the metrics at now; connections older than maxAge are
	// not active.
	Snapshot(ctx context.Context, now time.Time, maxAge time.Duration) (Snapshot, error)
}

// RateStore is implemented by stores that keep the per-connection message
// rate window themselves, for transports where a connection's messages are
// handled by many processes (API Gateway's Lambdas). Long-lived transports
// keep the window in memory instead, at no store cost.
type RateStore interface {
	// AllowMessage records one inbound message of connection id at now if
	// fewer than limit were recorded in the rolling minute before it;
	// otherwise it returns a [*RetryError] wrapping [ErrRateLimited].
	AllowMessage(ctx context.Context, id string, limit int, now time.Time) error
}

// CountedHeader is the HTTP header a wsgate instance sets when it delivers a
// fan-out event through another instance's `@connections` API: the sender
// has counted the message already, so the receiver must not count it again.
const CountedHeader = "X-Wsgate-Counted"

// Sender delivers a text frame to a connection. It returns [ErrGone] when
// the connection no longer exists. Send must not block on a slow client.
type Sender interface {
	Send(ctx context.Context, t Target, frame []byte) error
}

// Clock tells the time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

// Now is time.Now.
func (systemClock) Now() time.Time { return time.Now() }
