package lambdaadapter_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// downStore is a memory store whose connects, lookups and rate checks find
// the store unreachable.
type downStore struct{ *memory.Store }

func (downStore) Admit(context.Context, core.Conn, core.Limits, time.Time) error {
	return fmt.Errorf("%w: test outage", core.ErrUnavailable)
}

func (downStore) Lookup(context.Context, string) (core.Conn, error) {
	return core.Conn{}, fmt.Errorf("%w: test outage", core.ErrUnavailable)
}

func (downStore) AllowMessage(context.Context, string, int, time.Time) error {
	return fmt.Errorf("%w: test outage", core.ErrUnavailable)
}

// TestFixturesDecode: the captured payloads carry what the handlers read.
func TestFixturesDecode(t *testing.T) {
	t.Parallel()
	var c, m, d events.APIGatewayWebsocketProxyRequest
	fixture(t, "apigw-websocket-request.json", &c)
	fixture(t, "apigw-websocket-request-send-message.json", &m)
	fixture(t, "apigw-websocket-request-disconnect.json", &d)
	for _, tc := range []struct {
		ev               events.APIGatewayWebsocketProxyRequest
		route, eventType string
	}{{c, "$connect", "CONNECT"}, {m, "$default", "MESSAGE"}, {d, "$disconnect", "DISCONNECT"}} {
		rc := tc.ev.RequestContext
		if rc.RouteKey != tc.route || rc.EventType != tc.eventType || rc.ConnectionID == "" || rc.Identity.SourceIP == "" || rc.DomainName == "" || rc.Stage == "" {
			t.Errorf("fixture %s: routeKey %q eventType %q connectionId %q sourceIp %q domain %q stage %q",
				tc.route, rc.RouteKey, rc.EventType, rc.ConnectionID, rc.Identity.SourceIP, rc.DomainName, rc.Stage)
		}
	}
}

// TestConnectRefusals: each refusal is the SPEC's status and code, with the
// JSON body, before anything is recorded.
func TestConnectRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name   string
		mutate func(*core.Config)
		store  func() core.Store
		// prior connections admitted from the same IP before the refused one
		prior  int
		event  func(t *testing.T) events.APIGatewayWebsocketProxyRequest
		status int
		code   string
	}{
		{name: "no token", status: 401, code: "unauthorized",
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				return connectEvent(t, "c-new", "203.0.113.1")
			}},
		{name: "bad token", status: 401, code: "unauthorized",
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				return withToken(connectEvent(t, "c-new", "203.0.113.1"), token(t, "alice", false)+"x")
			}},
		{name: "non-bearer Authorization", status: 401, code: "unauthorized",
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				ev := connectEvent(t, "c-new", "203.0.113.1")
				ev.Headers["Authorization"] = "Basic " + token(t, "alice", false)
				return ev
			}},
		{name: "foreign origin", status: 403, code: "forbidden_origin",
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				ev := withToken(connectEvent(t, "c-new", "203.0.113.1"), token(t, "alice", false))
				ev.Headers["origin"] = "https://evil.example"
				return ev
			}},
		{name: "connections per IP", status: 429, code: "too_many_connections", prior: 2,
			mutate: func(c *core.Config) { c.MaxConnectionsPerIP = 2 },
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				return withToken(connectEvent(t, "c-new", "203.0.113.1"), token(t, "alice", false))
			}},
		{name: "connects per hour", status: 429, code: "too_many_connects", prior: 1,
			mutate: func(c *core.Config) { c.MaxConnectsPerHour = 1 },
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				return withToken(connectEvent(t, "c-new", "203.0.113.1"), token(t, "alice", false))
			}},
		{name: "store down", status: 503, code: "unavailable",
			store: func() core.Store { return downStore{memory.New()} },
			event: func(t *testing.T) events.APIGatewayWebsocketProxyRequest {
				return withToken(connectEvent(t, "c-new", "203.0.113.1"), token(t, "alice", false))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var st core.Store = memory.New()
			if tc.store != nil {
				st = tc.store()
			}
			h, err := lambdaadapter.NewWebSocket(config(t, st, newSender(), tc.mutate), lambdaadapter.Options{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.prior {
				ev := withToken(connectEvent(t, fmt.Sprintf("c-%d", i), "203.0.113.1"), token(t, "alice", false))
				if resp, _ := h.Handle(ctx, ev); resp.StatusCode != 200 {
					t.Fatalf("prior connect %d: %d %s", i, resp.StatusCode, resp.Body)
				}
			}
			resp, err := h.Handle(ctx, tc.event(t))
			if err != nil {
				t.Fatalf("Handle returned an error: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.status, resp.Body)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body["error"] != tc.code || body["message"] == "" || len(body) != 2 {
				t.Errorf("body %q, want {\"error\":%q,\"message\":…}", resp.Body, tc.code)
			}
			if resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("Content-Type %q", resp.Headers["Content-Type"])
			}
			ra := resp.Headers["Retry-After"]
			if tc.code == "too_many_connects" {
				if n, err := fmt.Sscan(ra, new(int)); n != 1 || err != nil || ra == "0" || len(ra) > 4 {
					t.Errorf("Retry-After %q, want whole seconds in 1..3600", ra)
				}
			} else if ra != "" {
				t.Errorf("Retry-After %q on a %s refusal", ra, tc.code)
			}
			if st, ok := st.(*memory.Store); ok {
				if _, err := st.Lookup(ctx, "c-new"); !errors.Is(err, core.ErrNotFound) {
					t.Errorf("refused connection recorded: Lookup = %v", err)
				}
			}
		})
	}
}

// TestConnectTokenSources: query, Authorization (any case, also only in
// multiValueHeaders) and subprotocol, in that precedence; `bearer` is
// selected whenever the client offered it, as the local server does; the
// connection is recorded with its id, IP, user and management endpoint.
func TestConnectTokenSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good, other := token(t, "alice", false), token(t, "bob", false)
	cases := []struct {
		name    string
		set     func(*events.APIGatewayWebsocketProxyRequest)
		user    string
		subprot bool
	}{
		{"query", func(ev *events.APIGatewayWebsocketProxyRequest) { *ev = withToken(*ev, good) }, "alice", false},
		{"multi-value query only", func(ev *events.APIGatewayWebsocketProxyRequest) {
			ev.MultiValueQueryStringParameters = map[string][]string{"token": {good}}
		}, "alice", false},
		{"authorization lower case", func(ev *events.APIGatewayWebsocketProxyRequest) { ev.Headers["authorization"] = "bearer " + good }, "alice", false},
		{"authorization multi-value only", func(ev *events.APIGatewayWebsocketProxyRequest) {
			ev.MultiValueHeaders["Authorization"] = []string{"Bearer " + good}
		}, "alice", false},
		{"subprotocol", func(ev *events.APIGatewayWebsocketProxyRequest) {
			ev.Headers["Sec-WebSocket-Protocol"] = "bearer, " + good
			ev.MultiValueHeaders["Sec-WebSocket-Protocol"] = []string{"bearer, " + good}
		}, "alice", true},
		{"subprotocol lower-case header", func(ev *events.APIGatewayWebsocketProxyRequest) {
			ev.Headers["sec-websocket-protocol"] = "chat,bearer," + good
		}, "alice", true},
		{"query beats header", func(ev *events.APIGatewayWebsocketProxyRequest) {
			*ev = withToken(*ev, good)
			ev.Headers["Authorization"] = "Bearer " + other
		}, "alice", false},
		{"header beats subprotocol, bearer still selected", func(ev *events.APIGatewayWebsocketProxyRequest) {
			ev.Headers["Authorization"] = "Bearer " + good
			ev.Headers["Sec-WebSocket-Protocol"] = "bearer, " + other
		}, "alice", true},
		{"query with bearer offered alone", func(ev *events.APIGatewayWebsocketProxyRequest) {
			*ev = withToken(*ev, good)
			ev.Headers["Sec-WebSocket-Protocol"] = "bearer"
		}, "alice", true},
		{"other subprotocols only", func(ev *events.APIGatewayWebsocketProxyRequest) {
			*ev = withToken(*ev, good)
			ev.Headers["Sec-WebSocket-Protocol"] = "chat, v2"
		}, "alice", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newWS(t, nil, lambdaadapter.Options{})
			id := fmt.Sprintf("conn-%d=", i)
			ev := connectEvent(t, id, "192.0.2.44")
			ev.Headers["Origin"] = "https://" + testDomain // same host
			tc.set(&ev)
			resp, err := e.h.Handle(ctx, ev)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("connect: %d %s %v", resp.StatusCode, resp.Body, err)
			}
			if got := resp.Headers["Sec-WebSocket-Protocol"]; (got == "bearer") != tc.subprot || (got != "" && got != "bearer") {
				t.Errorf("Sec-WebSocket-Protocol %q, bearer offered %v", got, tc.subprot)
			}
			c, err := e.store.Lookup(ctx, id)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if c.User != tc.user || c.IP != "192.0.2.44" || c.Endpoint != testEndpoint {
				t.Errorf("recorded %+v, want user %s, IP 192.0.2.44, endpoint %s", c, tc.user, testEndpoint)
			}
		})
	}
}

// TestEndpointSetting: WSGATE_APIGW_ENDPOINT replaces the event's
// domainName/stage, for connects and for replies.
func TestEndpointSetting(t *testing.T) {
	t.Parallel()
	e := newWS(t, nil, lambdaadapter.Options{APIGWEndpoint: "https://ws.example.com/v1/"})
	e.connect(t, "A=", "alice")
	c, err := e.store.Lookup(context.Background(), "A=")
	if err != nil || c.Endpoint != "apigw:https://ws.example.com/v1" {
		t.Fatalf("recorded endpoint %q (%v)", c.Endpoint, err)
	}
	posts := e.send(t, "A=", `{"type":"ping"}`)
	if len(posts) != 1 || posts[0].To != (core.Target{ID: "A=", Endpoint: "apigw:https://ws.example.com/v1"}) {
		t.Fatalf("posts %+v", posts)
	}
}

// TestPing: the reply is posted to the caller's own connection through the
// sender, with the id echoed.
func TestPing(t *testing.T) {
	t.Parallel()
	e := newWS(t, nil, lambdaadapter.Options{})
	e.connect(t, "A=", "alice")
	posts := e.send(t, "A=", `{"type":"ping","id":"p-1"}`)
	if len(posts) != 1 || posts[0].To != (core.Target{ID: "A=", Endpoint: testEndpoint}) {
		t.Fatalf("posts %+v, want one to A= at %s", posts, testEndpoint)
	}
	jsonEqual(t, posts[0].Frame, `{"type":"pong","id":"p-1"}`)
	jsonEqual(t, reply(t, e.send(t, "A=", `{"type":"whoami","id":7}`), "A="), `{"type":"whoami","connection_id":"A=","user":"alice","id":7}`)
}

// TestSubscribePublish: a publish from one connection reaches a subscriber
// held at another connection id; the publisher gets `published`.
func TestSubscribePublish(t *testing.T) {
	t.Parallel()
	e := newWS(t, nil, lambdaadapter.Options{})
	e.connect(t, "A=", "alice")
	e.connect(t, "B=", "bob")
	jsonEqual(t, reply(t, e.send(t, "A=", `{"type":"subscribe","channel":"news","id":1}`), "A="), `{"type":"subscribed","channel":"news","id":1}`)
	posts := e.send(t, "B=", `{"type":"publish","channel":"news","data":{"x":[1,2]},"id":"q"}`)
	if len(posts) != 2 {
		t.Fatalf("posts %+v, want the event to A= and the reply to B=", posts)
	}
	jsonEqual(t, reply(t, posts, "A="), `{"type":"event","channel":"news","data":{"x":[1,2]},"from":"bob"}`)
	jsonEqual(t, reply(t, posts, "B="), `{"type":"published","channel":"news","delivered":1,"id":"q"}`)
	jsonEqual(t, reply(t, e.send(t, "A=", `{"type":"unsubscribe","channel":"news"}`), "A="), `{"type":"unsubscribed","channel":"news"}`)
	jsonEqual(t, reply(t, e.send(t, "B=", `{"type":"publish","channel":"news","data":1}`), "B="), `{"type":"published","channel":"news","delivered":0}`)
}

// TestGoneCleanup: a subscriber whose connection answers Gone is not
// counted, and is released: no longer open, no longer subscribed, no
// longer holding its IP slot.
func TestGoneCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newWS(t, func(c *core.Config) { c.MaxConnectionsPerIP = 2 }, lambdaadapter.Options{})
	e.connect(t, "A=", "alice")
	e.connect(t, "B=", "bob")
	e.send(t, "A=", `{"type":"subscribe","channel":"news"}`)
	e.sender.setGone("A=")
	jsonEqual(t, reply(t, e.send(t, "B=", `{"type":"publish","channel":"news","data":"hi"}`), "B="), `{"type":"published","channel":"news","delivered":0}`)
	if _, err := e.store.Lookup(ctx, "A="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("gone connection still open: %v", err)
	}
	if subs, _ := e.store.Subscribers(ctx, "news"); len(subs) != 0 {
		t.Errorf("gone connection still subscribed: %+v", subs)
	}
	m, err := e.h.Gateway().Metrics(ctx)
	if err != nil || m.ActiveConnections != 1 {
		t.Errorf("active connections %d (%v), want 1", m.ActiveConnections, err)
	}
	e.connect(t, "C=", "carol") // A's IP slot is free again
	// A reply that finds its own connection gone cleans it up too.
	e.sender.setGone("C=")
	if posts := e.send(t, "C=", `{"type":"ping"}`); len(posts) != 0 {
		t.Errorf("posts to a gone connection: %+v", posts)
	}
	if _, err := e.store.Lookup(ctx, "C="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("connection whose reply was Gone still open: %v", err)
	}
}

// TestDisconnect: the captured $disconnect releases the connection and
// answers 200, also when repeated.
func TestDisconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newWS(t, nil, lambdaadapter.Options{})
	e.connect(t, "A=", "alice")
	e.send(t, "A=", `{"type":"subscribe","channel":"news"}`)
	for i := range 2 {
		resp, err := e.h.Handle(ctx, disconnectEvent(t, "A="))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("disconnect %d: %d %v", i, resp.StatusCode, err)
		}
	}
	if _, err := e.store.Lookup(ctx, "A="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("still open after $disconnect: %v", err)
	}
	if subs, _ := e.store.Subscribers(ctx, "news"); len(subs) != 0 {
		t.Errorf("still subscribed after $disconnect: %+v", subs)
	}
	m, _ := e.h.Gateway().Metrics(ctx)
	if m.ActiveConnections != 0 || m.ConnectionsToday != 1 {
		t.Errorf("metrics %+v", m)
	}
}

// TestRateLimitInStore: each event resumes a fresh session, so the rate
// window must live in the store: the third message in a minute with a
// limit of 2 is refused.
func TestRateLimitInStore(t *testing.T) {
	t.Parallel()
	e := newWS(t, func(c *core.Config) { c.MaxMessagesPerMinute = 2 }, lambdaadapter.Options{})
	e.connect(t, "A=", "alice")
	for i := range 2 {
		jsonEqual(t, reply(t, e.send(t, "A=", fmt.Sprintf(`{"type":"ping","id":%d}`, i)), "A="), fmt.Sprintf(`{"type":"pong","id":%d}`, i))
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(reply(t, e.send(t, "A=", `{"type":"ping","id":2}`), "A=")), &f); err != nil {
		t.Fatal(err)
	}
	if f["code"] != "rate_limited" || f["id"] != 2.0 {
		t.Errorf("third message answered %v, want rate_limited with id 2", f)
	}
	if ra, ok := f["retry_after"].(float64); !ok || ra <= 0 || ra > 60 {
		t.Errorf("retry_after %v, want a number in (0, 60]", f["retry_after"])
	}
}

// TestMessageEdgeCases: what cannot reach the protocol is answered with an
// error frame (the fake sender cannot close connections), and $default
// always answers 200.
func TestMessageEdgeCases(t *testing.T) {
	t.Parallel()
	e := newWS(t, nil, lambdaadapter.Options{MaxMessageBytes: 64})
	e.connect(t, "A=", "alice")
	code := func(frame string) (string, any) { return errorCode(t, frame) }
	if c, _ := code(reply(t, e.send(t, "A=", `{"type":"ping","pad":"`+strings.Repeat("x", 64)+`"}`), "A=")); c != "bad_request" {
		t.Errorf("oversized message: %s", c)
	}
	exact := `{"type":"ping","pad":"` + strings.Repeat("x", 64-24) + `"}`
	if len(exact) != 64 {
		t.Fatalf("exact is %d bytes", len(exact))
	}
	jsonEqual(t, reply(t, e.send(t, "A=", exact), "A="), `{"type":"pong"}`)
	bin := messageEvent(t, "A=", base64.StdEncoding.EncodeToString([]byte(`{"type":"ping"}`)))
	bin.IsBase64Encoded = true
	if _, err := e.h.Handle(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	if c, _ := code(reply(t, e.sender.take(), "A=")); c != "bad_request" {
		t.Errorf("binary message: %s", c)
	}
	if c, id := code(reply(t, e.send(t, "nobody=", `{"type":"ping","id":"z"}`), "nobody=")); c != "unavailable" || id != "z" {
		t.Errorf("message from an unknown connection: %s %v", c, id)
	}
	if c, _ := code(reply(t, e.send(t, "A=", `not json`), "A=")); c != "bad_request" {
		t.Errorf("not JSON: %s", c)
	}
	if c, _ := code(reply(t, e.send(t, "A=", `{"type":"nope"}`), "A=")); c != "unknown_type" {
		t.Errorf("unknown type: %s", c)
	}
	// Every inbound message counted as received, every error frame as sent.
	m, err := e.h.Gateway().Metrics(context.Background())
	if err != nil || m.MessagesReceived != 6 || m.MessagesSent != 6 {
		t.Errorf("received %d, sent %d (%v), want 6 and 6", m.MessagesReceived, m.MessagesSent, err)
	}
}

// TestStoreDownMessage: a store that cannot be reached answers
// `unavailable` with the message's id.
func TestStoreDownMessage(t *testing.T) {
	t.Parallel()
	sender := newSender()
	h, err := lambdaadapter.NewWebSocket(config(t, downStore{memory.New()}, sender, nil), lambdaadapter.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := h.Handle(context.Background(), messageEvent(t, "A=", `{"type":"ping","id":"k"}`)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	jsonEqual(t, reply(t, sender.take(), "A="), `{"type":"error","code":"unavailable","message":"service unavailable, try again","id":"k"}`)
}

// closingSender is a fakeSender that can close connections.
type closingSender struct {
	*fakeSender
	closed []string
}

func (s *closingSender) Close(_ context.Context, t core.Target) error {
	s.closed = append(s.closed, t.ID)
	return nil
}

// TestCloser: with a sender that can close connections, an oversized
// message closes the connection and records the disconnect, and a message
// from a connection the store does not know closes it after the reply.
func TestCloser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, sender := memory.New(), &closingSender{fakeSender: newSender()}
	h, err := lambdaadapter.NewWebSocket(config(t, st, sender, nil), lambdaadapter.Options{Logger: quiet, MaxMessageBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.Handle(ctx, withToken(connectEvent(t, "A=", "192.0.2.1"), token(t, "alice", false))); resp.StatusCode != 200 {
		t.Fatalf("connect %d", resp.StatusCode)
	}
	if _, err := h.Handle(ctx, messageEvent(t, "A=", `{"type":"ping","pad":"xxxxxxxx"}`)); err != nil {
		t.Fatal(err)
	}
	if len(sender.closed) != 1 || sender.closed[0] != "A=" || len(sender.take()) != 0 {
		t.Errorf("closed %v, want [A=] and no post", sender.closed)
	}
	if _, err := st.Lookup(ctx, "A="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("closed connection still open: %v", err)
	}
	// A connection the store does not know is told to reconnect, then closed.
	if _, err := h.Handle(ctx, messageEvent(t, "nobody=", `{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if c, _ := errorCode(t, reply(t, sender.take(), "nobody=")); c != "unavailable" {
		t.Errorf("unknown connection's reply: %s", c)
	}
	if len(sender.closed) != 2 || sender.closed[1] != "nobody=" {
		t.Errorf("closed %v, want the unknown connection closed too", sender.closed)
	}
}

// TestNewWebSocketNeedsRateStore: a store that cannot keep rate windows is
// refused at construction.
func TestNewWebSocketNeedsRateStore(t *testing.T) {
	t.Parallel()
	type plain struct{ core.Store }
	if _, err := lambdaadapter.NewWebSocket(config(t, plain{memory.New()}, newSender(), nil), lambdaadapter.Options{}); err == nil {
		t.Fatal("NewWebSocket accepted a store without AllowMessage")
	}
}

// errorCode reads an error frame's code and id.
func errorCode(t *testing.T, frame string) (string, any) {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal([]byte(frame), &f); err != nil {
		t.Fatalf("frame %q: %v", frame, err)
	}
	c, _ := f["code"].(string)
	return c, f["id"]
}
