package core

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
)

// fanoutWorkers bounds the concurrent deliveries of one publish to
// connections held elsewhere (other instances, API Gateway).
const fanoutWorkers = 16

// Inline is implemented by senders that can tell that a target is held in
// this process, where a send is a non-blocking hand-off. Such targets are
// delivered inline; the rest go through a bounded worker pool.
type Inline interface {
	Holds(t Target) bool
}

// Publish sends data to every subscriber of channel as an event from the
// server (the admin API's POST /api/publish) and returns how many
// connections it was handed to.
func (g *Gateway) Publish(ctx context.Context, channel string, data json.RawMessage) (int, error) {
	if !ValidChannel(channel) {
		return 0, badRequest("bad channel name")
	}
	if len(data) == 0 || !json.Valid(data) {
		return 0, badRequest("data must be JSON")
	}
	return g.fanout(ctx, channel, data, "server", "")
}

// Delivered counts n data messages sent outside the message protocol (the
// `@connections` API).
func (g *Gateway) Delivered(ctx context.Context, n int) error {
	return g.cfg.Store.Count(ctx, Counts{Sent: int64(n)}, g.clock.Now())
}

// Discarded counts an inbound data message that the transport refused
// before the protocol saw it (a binary frame, an oversized message): it
// counts as received all the same.
func (g *Gateway) Discarded(ctx context.Context) {
	if err := g.cfg.Store.Count(ctx, Counts{Received: 1}, g.clock.Now()); err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "received message not counted", slog.String("error", err.Error()))
	}
}

// fanout delivers one event frame to every subscriber of channel but except.
func (g *Gateway) fanout(ctx context.Context, channel string, data json.RawMessage, from, except string) (int, error) {
	targets, err := g.cfg.Store.Subscribers(ctx, channel)
	if err != nil {
		return 0, err
	}
	if len(targets) == 0 || (len(targets) == 1 && targets[0].ID == except) {
		return 0, nil
	}
	frame := eventFrame(channel, data, from)
	inline, _ := g.cfg.Sender.(Inline)
	var delivered atomic.Int64
	var remote []Target
	for _, t := range targets {
		if t.ID == except {
			continue
		}
		if inline != nil && inline.Holds(t) {
			if g.deliver(ctx, channel, t, frame) {
				delivered.Add(1)
			}
			continue
		}
		remote = append(remote, t)
	}
	if len(remote) > 0 {
		work := make(chan Target)
		var wg sync.WaitGroup
		for i := 0; i < min(fanoutWorkers, len(remote)); i++ {
			wg.Go(func() {
				for t := range work {
					if g.deliver(ctx, channel, t, frame) {
						delivered.Add(1)
					}
				}
			})
		}
		for _, t := range remote {
			work <- t
		}
		close(work)
		wg.Wait()
	}
	n := int(delivered.Load())
	if n > 0 {
		if err := g.Delivered(ctx, n); err != nil {
			g.log.LogAttrs(ctx, slog.LevelError, "sent messages not counted", slog.Int("n", n), slog.String("error", err.Error()))
		}
	}
	return n, nil
}

// deliver sends one frame and cleans up a connection found gone: its
// disconnect is recorded and, should a subscription have outlived its
// connection record, the subscription is dropped too.
func (g *Gateway) deliver(ctx context.Context, channel string, t Target, frame []byte) bool {
	err := g.cfg.Sender.Send(ctx, t, frame)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrGone):
		cctx := context.WithoutCancel(ctx)
		_ = g.Disconnect(cctx, t.ID, "gone")
		_ = g.cfg.Store.Unsubscribe(cctx, t.ID, channel)
	default:
		g.log.LogAttrs(ctx, slog.LevelWarn, "delivery failed", slog.String("connection_id", t.ID), slog.String("error", err.Error()))
	}
	return false
}

func eventFrame(channel string, data json.RawMessage, from string) []byte {
	b := append(make([]byte, 0, 64+len(channel)+len(data)+len(from)), `{"type":"event","channel":"`...)
	b = append(b, channel...)
	b = append(b, `","data":`...)
	b = append(b, data...)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	return append(b, '}')
}
