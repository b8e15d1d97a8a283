package core

import (
	"context"
	"math"
	"time"
)

// Metrics is the admin API's reading, with the SPEC's field names.
type Metrics struct {
	// ActiveConnections counts the open connections now.
	ActiveConnections int64 `json:"active_connections"`
	// ConnectionsToday counts the connections accepted since 00:00 UTC.
	ConnectionsToday int64 `json:"connections_today"`
	// MessagesSent counts the data messages sent since 00:00 UTC.
	MessagesSent int64 `json:"messages_sent"`
	// MessagesReceived counts the data messages received since 00:00 UTC.
	MessagesReceived int64 `json:"messages_received"`
	// AvgConnectionDuration is the mean duration in seconds of the
	// connections that closed since 00:00 UTC, 0 when none did.
	AvgConnectionDuration float64 `json:"avg_connection_duration"`
	// MessagesPerMinute counts the messages received in the last 60 s.
	MessagesPerMinute int64 `json:"messages_per_minute"`
	// Timestamp is the time of the reading, RFC 3339 UTC.
	Timestamp string `json:"timestamp"`
}

// Metrics reads the live metrics from the store.
func (g *Gateway) Metrics(ctx context.Context) (Metrics, error) {
	now := g.clock.Now()
	s, err := g.cfg.Store.Snapshot(ctx, now, g.cfg.MaxConnectionAge)
	if err != nil {
		return Metrics{}, err
	}
	avg := 0.0
	if s.ClosedToday > 0 {
		avg = math.Round(s.DurationToday.Seconds()/float64(s.ClosedToday)*100) / 100
	}
	return Metrics{
		ActiveConnections:     s.ActiveConnections,
		ConnectionsToday:      s.ConnectionsToday,
		MessagesSent:          s.MessagesSent,
		MessagesReceived:      s.MessagesReceived,
		AvgConnectionDuration: avg,
		MessagesPerMinute:     s.MessagesLastMinute,
		Timestamp:             now.UTC().Format(time.RFC3339),
	}, nil
}
