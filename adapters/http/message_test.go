package httpadapter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
)

func TestMessageTable(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.MaxMessagesPerMinute = 0 })
	c := e.dial(t, token(t, "alice", false))
	tests := []struct {
		name, send string
		want       map[string]any // fields the reply must have
	}{
		{"ping", `{"type":"ping"}`, map[string]any{"type": "pong"}},
		{"ping with string id", `{"type":"ping","id":"abc"}`, map[string]any{"type": "pong", "id": "abc"}},
		{"ping with number id", `{"id":42,"type":"ping"}`, map[string]any{"type": "pong", "id": 42.0}},
		{"whoami", `{"type":"whoami"}`, map[string]any{"type": "whoami", "user": "alice"}},
		{"subscribe", `{"type":"subscribe","channel":"room.1","id":1}`, map[string]any{"type": "subscribed", "channel": "room.1", "id": 1.0}},
		{"subscribe twice", `{"type":"subscribe","channel":"room.1"}`, map[string]any{"type": "subscribed", "channel": "room.1"}},
		{"own private channel", `{"type":"subscribe","channel":"user:alice"}`, map[string]any{"type": "subscribed", "channel": "user:alice"}},
		{"unsubscribe", `{"type":"unsubscribe","channel":"room.1"}`, map[string]any{"type": "unsubscribed", "channel": "room.1"}},
		{"publish without subscribers", `{"type":"publish","channel":"empty","data":{"x":1}}`, map[string]any{"type": "published", "channel": "empty", "delivered": 0.0}},
		{"not JSON", `hello`, map[string]any{"type": "error", "code": "bad_request"}},
		{"JSON array", `[{"type":"ping"}]`, map[string]any{"type": "error", "code": "bad_request"}},
		{"JSON null", `null`, map[string]any{"type": "error", "code": "bad_request"}},
		{"no type", `{"id":"n"}`, map[string]any{"type": "error", "code": "bad_request", "id": "n"}},
		{"numeric type", `{"type":5,"id":"t5"}`, map[string]any{"type": "error", "code": "bad_request", "id": "t5"}},
		{"null type", `{"type":null}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"object id", `{"type":"ping","id":{"a":1}}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"null id", `{"type":"ping","id":null}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"bool id", `{"type":"ping","id":true}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"unknown type", `{"type":"dance","id":"u"}`, map[string]any{"type": "error", "code": "unknown_type", "id": "u"}},
		{"empty channel", `{"type":"subscribe","channel":""}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"channel with space", `{"type":"subscribe","channel":"a b"}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"channel too long", `{"type":"subscribe","channel":"` + strings.Repeat("c", 129) + `"}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"channel not a string", `{"type":"subscribe","channel":7}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"channel missing", `{"type":"unsubscribe"}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"unicode channel", `{"type":"publish","channel":"caf\u00e9","data":1}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"publish without data", `{"type":"publish","channel":"room"}`, map[string]any{"type": "error", "code": "bad_request"}},
		{"someone else's private channel", `{"type":"subscribe","channel":"user:bob"}`, map[string]any{"type": "error", "code": "forbidden"}},
		{"publish to someone else's private channel", `{"type":"publish","channel":"user:bob","data":1}`, map[string]any{"type": "error", "code": "forbidden"}},
		{"private prefix is case-sensitive", `{"type":"subscribe","channel":"User:bob"}`, map[string]any{"type": "subscribed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := roundTrip(t, c, tc.send)
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("send %s: reply %v, want %s=%v", tc.send, got, k, v)
				}
			}
			if got["type"] == "error" {
				if msg, _ := got["message"].(string); msg == "" {
					t.Fatalf("error reply without a message: %v", got)
				}
			} else if _, hasID := got["id"]; hasID != strings.Contains(tc.send, `"id"`) {
				t.Fatalf("id echo: sent %s, got %v", tc.send, got)
			}
		})
	}
	// whoami's connection id is non-empty and addresses @connections.
	got := roundTrip(t, c, `{"type":"whoami"}`)
	id, _ := got["connection_id"].(string)
	if id == "" {
		t.Fatalf("whoami connection_id: %v", got)
	}
	if status, _ := e.admin(t, "GET", "/@connections/"+id, "Bearer "+token(t, "root", true), ""); status != 200 {
		t.Fatalf("GET /@connections/%s = %d", id, status)
	}
}

func TestInvalidUTF8(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial(t, token(t, "u", false))
	got := roundTrip(t, c, "{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")
	if got["code"] != "bad_request" {
		t.Fatalf("invalid UTF-8: %v", got)
	}
	if got := roundTrip(t, c, `{"type":"ping"}`); got["type"] != "pong" {
		t.Fatalf("connection unhealthy after invalid UTF-8: %v", got)
	}
}

func TestPublishFanOut(t *testing.T) {
	e := newEnv(t, nil)
	pub := e.dial(t, token(t, "pub", false))
	subs := []*websocket.Conn{e.dial(t, token(t, "s1", false)), e.dial(t, token(t, "s2", false))}
	for _, c := range append(subs, pub) {
		if got := roundTrip(t, c, `{"type":"subscribe","channel":"news"}`); got["type"] != "subscribed" {
			t.Fatal(got)
		}
	}
	got := roundTrip(t, pub, `{"type":"publish","channel":"news","data":{"headline":"hi","n":[1,2]},"id":"p1"}`)
	if got["type"] != "published" || got["delivered"] != 2.0 || got["id"] != "p1" || got["channel"] != "news" {
		t.Fatalf("published: %v", got)
	}
	for _, c := range subs {
		ev := read(t, c)
		data, _ := ev["data"].(map[string]any)
		if ev["type"] != "event" || ev["channel"] != "news" || ev["from"] != "pub" || data["headline"] != "hi" || len(ev) != 4 {
			t.Fatalf("event: %v", ev)
		}
	}
	// The publisher does not receive its own event: its next frame is the pong.
	if got := roundTrip(t, pub, `{"type":"ping"}`); got["type"] != "pong" {
		t.Fatalf("publisher got %v", got)
	}
	// Admin publish arrives from "server".
	status, body := e.admin(t, "POST", "/api/publish", "Bearer "+token(t, "root", true), `{"channel":"news","data":"breaking"}`)
	if status != 200 || body["delivered"] != 3.0 {
		t.Fatalf("admin publish: %d %v", status, body)
	}
	for _, c := range append(subs, pub) {
		if ev := read(t, c); ev["from"] != "server" || ev["data"] != "breaking" {
			t.Fatalf("admin event: %v", ev)
		}
	}
	// Private channels: only the owner subscribes; the owner or an admin publishes.
	owner := e.dial(t, token(t, "pub", false))
	roundTrip(t, owner, `{"type":"subscribe","channel":"user:s1"}`)
	s1 := subs[0]
	if got := roundTrip(t, s1, `{"type":"subscribe","channel":"user:s1"}`); got["type"] != "subscribed" {
		t.Fatal(got)
	}
	adminConn := e.dial(t, token(t, "boss", true))
	if got := roundTrip(t, adminConn, `{"type":"publish","channel":"user:s1","data":1}`); got["delivered"] != 1.0 {
		t.Fatalf("admin publish to a private channel: %v", got)
	}
	if ev := read(t, s1); ev["channel"] != "user:s1" || ev["from"] != "boss" {
		t.Fatalf("private event: %v", ev)
	}
}

func TestClientPublishDisabled(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.ClientPublish = false })
	c := e.dial(t, token(t, "p", false))
	if got := roundTrip(t, c, `{"type":"publish","channel":"a","data":1}`); got["code"] != "forbidden" {
		t.Fatalf("publish with client publishing off: %v", got)
	}
	if status, body := e.admin(t, "POST", "/api/publish", "Bearer "+token(t, "root", true), `{"channel":"a","data":1}`); status != 200 {
		t.Fatalf("admin publish still works: %d %v", status, body)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.MaxMessagesPerMinute = 0 })
	c := e.dial(t, token(t, "many", false))
	for i := range 100 {
		if got := roundTrip(t, c, fmt.Sprintf(`{"type":"subscribe","channel":"c%d"}`, i)); got["type"] != "subscribed" {
			t.Fatalf("subscription %d: %v", i+1, got)
		}
	}
	if got := roundTrip(t, c, `{"type":"subscribe","channel":"c100","id":"x"}`); got["code"] != "too_many_subscriptions" || got["id"] != "x" {
		t.Fatalf("101st subscription: %v", got)
	}
	if got := roundTrip(t, c, `{"type":"subscribe","channel":"c5"}`); got["type"] != "subscribed" {
		t.Fatalf("re-subscribing at the limit: %v", got)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, nil) // 60 per minute
	c := e.dial(t, token(t, "r", false))
	for i := range 60 {
		if got := roundTrip(t, c, `{"type":"ping"}`); got["type"] != "pong" {
			t.Fatalf("message %d: %v", i+1, got)
		}
	}
	got := roundTrip(t, c, `{"type":"subscribe","channel":"a","id":61}`)
	ra := num(got, "retry_after")
	if got["code"] != "rate_limited" || got["id"] != 61.0 || ra <= 0 || ra > 60 {
		t.Fatalf("61st message: %v", got)
	}
	// Not acted on: the subscription did not happen.
	if subs, _ := e.store.Subscribers(context.Background(), "a"); len(subs) != 0 {
		t.Fatalf("rate-limited subscribe was acted on: %v", subs)
	}
	// Other connections are unaffected.
	other := e.dial(t, token(t, "r2", false))
	if got := roundTrip(t, other, `{"type":"ping"}`); got["type"] != "pong" {
		t.Fatal(got)
	}
	if m := e.metrics(t); num(m, "messages_received") != 62 {
		t.Fatalf("every inbound message counts as received: %v", m)
	}
}

func TestMessageSize(t *testing.T) {
	const limit = 1024
	e := newEnv(t, func(_ *core.Config, o *httpadapter.Options) { o.MaxMessageBytes = limit })
	c := e.dial(t, token(t, "big", false))
	pad := func(n int) string {
		base := `{"type":"ping","pad":""}`
		return `{"type":"ping","pad":"` + strings.Repeat("x", n-len(base)) + `"}`
	}
	if got := roundTrip(t, c, pad(limit)); got["type"] != "pong" {
		t.Fatalf("a message of exactly the limit: %v", got)
	}
	if err := c.Write(tctx(t), websocket.MessageText, []byte(pad(limit+1))); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(tctx(t))
	if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: close %v (%v), want 1009", s, err)
	}
	// A frame header announcing far more never makes the server allocate it.
	c2 := e.dial(t, token(t, "big2", false))
	w, err := c2.Writer(tctx(t), websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // a fragmented message over the limit
		if _, err := w.Write([]byte(strings.Repeat("y", 400))); err != nil {
			break
		}
	}
	w.Close()
	_, _, err = c2.Read(tctx(t))
	if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
		t.Fatalf("fragmented oversized message: close %v, want 1009", s)
	}
}

func TestBinaryFrame(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial(t, token(t, "bin", false))
	if err := c.Write(tctx(t), websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(tctx(t))
	if s := websocket.CloseStatus(err); s != websocket.StatusUnsupportedData {
		t.Fatalf("binary frame: close %v, want 1003", s)
	}
	eventually(t, "the disconnect to be recorded", func() bool { return num(e.metrics(t), "active_connections") == 0 })
	if got := num(e.metrics(t), "messages_received"); got != 1 {
		t.Fatalf("a binary message counts as received: messages_received = %v", got)
	}
}

func TestConcurrentMessagesCounted(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) {
		c.MaxConnectionsPerIP = 0
		c.MaxMessagesPerMinute = 0
	})
	const clients, each = 10, 50
	var wg sync.WaitGroup
	for i := range clients {
		c := e.dial(t, token(t, fmt.Sprint("c", i), false))
		wg.Go(func() {
			for range each {
				if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
					t.Error(err)
					return
				}
			}
			for range each {
				if _, _, err := c.Read(tctx(t)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	m := e.metrics(t)
	if num(m, "messages_received") != clients*each || num(m, "messages_sent") != clients*each || num(m, "messages_per_minute") != clients*each {
		t.Fatalf("after %d x %d pings: %v", clients, each, m)
	}
}

func TestSlowClientDoesNotStallOthers(t *testing.T) {
	e := newEnv(t, func(c *core.Config, o *httpadapter.Options) {
		c.MaxMessagesPerMinute = 0
		o.MaxQueuedFrames = 16
	})
	slow := e.dial(t, token(t, "slow", false)) // never reads after subscribing
	fast := e.dial(t, token(t, "fast", false))
	for _, c := range []*websocket.Conn{slow, fast} {
		roundTrip(t, c, `{"type":"subscribe","channel":"firehose"}`)
	}
	adminTok := "Bearer " + token(t, "root", true)
	payload := `{"channel":"firehose","data":"` + strings.Repeat("z", 16<<10) + `"}`
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		start := time.Now()
		status, _ := e.admin(t, "POST", "/api/publish", adminTok, payload)
		if status != 200 {
			t.Fatalf("publish %d: %d", i, status)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("publish %d took %v: a slow client delays delivery", i, d)
		}
		if _, _, err := fast.Read(tctx(t)); err != nil {
			t.Fatalf("fast client: %v", err)
		}
		if num(e.metrics(t), "active_connections") == 1 {
			break // the slow client was dropped
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow client was never closed")
		}
	}
	// The slow client sees 1008 once it reads again (after the queued data).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, _, err = slow.Read(ctx)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.StatusPolicyViolation {
		t.Fatalf("slow client closed with %v, want 1008", ce.Code)
	}
}
