package lambdatest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// step is one scenario step, run through a transport. Exactly one of the
// action fields is set; want is the outcome both transports must report.
type step struct {
	// connect: client name, token source ("query", "header",
	// "subprotocol", "none", "bad"), user, and an Origin header.
	connect, via, user, origin string
	// send: client name and the frame it sends; the outcome is the reply.
	send, frame string
	// event: client name that must have received one event frame.
	event string
	// disconnect: client name whose connection closes.
	disconnect string
	want       string
}

// parityScenario covers the handshake refusals in the SPEC's order, each
// message type, error frames, channel rules, fan-out, the message rate
// limit and the two per-IP limits.
var parityScenario = []step{
	{connect: "x", via: "none", want: "401 unauthorized"},
	{connect: "x", via: "bad", user: "alice", want: "401 unauthorized"},
	{connect: "x", via: "query", user: "alice", origin: "https://evil.example", want: "403 forbidden_origin"},
	{connect: "x", via: "none", origin: "https://evil.example", want: "403 forbidden_origin"}, // Origin is checked first
	{connect: "a", via: "query", user: "alice", want: "ok"},
	{connect: "b", via: "subprotocol", user: "bob", want: "ok bearer"},
	{connect: "c", via: "header", user: "carol", want: "ok"},
	{connect: "d", via: "query", user: "dave", want: "429 too_many_connections"},
	{send: "a", frame: `{"type":"ping","id":"1"}`, want: `{"id":"1","type":"pong"}`},
	{send: "a", frame: `{"type":"whoami","id":2}`, want: `{"connection_id":"ID","id":2,"type":"whoami","user":"alice"}`},
	{send: "a", frame: `{"type":"subscribe","channel":"news"}`, want: `{"channel":"news","type":"subscribed"}`},
	{send: "c", frame: `{"type":"subscribe","channel":"news"}`, want: `{"channel":"news","type":"subscribed"}`},
	{send: "b", frame: `{"type":"subscribe","channel":"user:alice"}`, want: `{"code":"forbidden","type":"error"}`},
	{send: "a", frame: `{"type":"subscribe","channel":"user:alice","id":3}`, want: `{"channel":"user:alice","id":3,"type":"subscribed"}`},
	{send: "b", frame: `{"type":"subscribe","channel":"no spaces"}`, want: `{"code":"bad_request","type":"error"}`},
	{send: "b", frame: `{"type":"publish","channel":"news","data":{"x":[1,"y"]},"id":"p"}`, want: `{"channel":"news","delivered":2,"id":"p","type":"published"}`},
	{event: "a", want: `{"channel":"news","data":{"x":[1,"y"]},"from":"bob","type":"event"}`},
	{event: "c", want: `{"channel":"news","data":{"x":[1,"y"]},"from":"bob","type":"event"}`},
	{send: "b", frame: `{"type":"publish","channel":"user:alice","data":1}`, want: `{"code":"forbidden","type":"error"}`},
	{send: "c", frame: `{"type":"unsubscribe","channel":"news"}`, want: `{"channel":"news","type":"unsubscribed"}`},
	{send: "a", frame: `{"type":"publish","channel":"news","data":"solo"}`, want: `{"channel":"news","delivered":0,"type":"published"}`},
	{send: "a", frame: `not json`, want: `{"code":"bad_request","type":"error"}`},
	{send: "a", frame: `{"type":"nope","id":"n"}`, want: `{"code":"unknown_type","id":"n","type":"error"}`},
	{send: "a", frame: `{"type":"ping","id":true}`, want: `{"code":"bad_request","type":"error"}`},
	{send: "a", frame: `{"type":"ping"}`, want: `{"type":"pong"}`},
	{send: "a", frame: `{"type":"ping"}`, want: `{"type":"pong"}`}, // a's 10th message this minute
	{send: "a", frame: `{"type":"ping","id":"r"}`, want: `{"code":"rate_limited","id":"r","retry_after":"SECONDS","type":"error"}`},
	{send: "b", frame: `{"type":"ping"}`, want: `{"type":"pong"}`}, // the limit is per connection
	{disconnect: "c"},
	{connect: "e", via: "query", user: "erin", want: "ok"}, // c's slot is free; the 4th connect of the hour
	{disconnect: "e"},
	{connect: "f", via: "query", user: "fay", want: "429 too_many_connects retry-after"},
}

// transport is one way of serving the gateway: the local server, or the
// Lambda handlers.
type transport interface {
	connect(t *testing.T, s step) string
	send(t *testing.T, name, frame string) string
	event(t *testing.T, name string) string
	disconnect(t *testing.T, name string)
}

// parityConfig is the gateway configuration both transports get.
func parityConfig(t *testing.T, st core.Store, sender core.Sender) core.Config {
	return core.Config{
		Auth: hsAuth(t), Store: st, Sender: sender, Logger: quiet,
		MaxConnectionsPerIP: 3, MaxConnectsPerHour: 4, MaxMessagesPerMinute: 10, ClientPublish: true,
	}
}

// TestParity runs one scenario through the local server (a real
// WebSocket client on loopback) and through the Lambda handlers, each on
// a fresh memory store, and requires the same outcome at every step.
func TestParity(t *testing.T) {
	t.Parallel()
	transports := map[string]func(t *testing.T) transport{
		"local server": newLocalTransport,
		"lambda":       newLambdaTransport,
	}
	outcomes := map[string][]string{}
	var mu sync.Mutex
	t.Run("transports", func(t *testing.T) {
		for name, newT := range transports {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tr := newT(t)
				var got []string
				for i, s := range parityScenario {
					var out string
					switch {
					case s.connect != "":
						out = tr.connect(t, s)
					case s.send != "":
						out = normalize(t, tr.send(t, s.send, s.frame))
					case s.event != "":
						out = normalize(t, tr.event(t, s.event))
					case s.disconnect != "":
						tr.disconnect(t, s.disconnect)
					}
					if withoutMessage(t, out) != s.want {
						t.Errorf("step %d %+v:\n got %s\nwant %s", i, s, out, s.want)
					}
					got = append(got, out)
				}
				mu.Lock()
				outcomes[name] = got
				mu.Unlock()
			})
		}
	})
	l, a := outcomes["local server"], outcomes["lambda"]
	for i := range min(len(l), len(a)) {
		if l[i] != a[i] {
			t.Errorf("step %d differs: local server %s, lambda %s", i, l[i], a[i])
		}
	}
}

var (
	connIDField = regexp.MustCompile(`"connection_id":"[^"]+"`)
	retryField  = regexp.MustCompile(`"retry_after":([0-9.]+)`)
)

// normalize canonicalizes a frame, replacing what differs by nature
// between runs: connection ids, and retry_after when it is in (0, 60].
func normalize(t *testing.T, frame string) string {
	t.Helper()
	s := canon(t, frame)
	s = connIDField.ReplaceAllString(s, `"connection_id":"ID"`)
	return retryField.ReplaceAllStringFunc(s, func(m string) string {
		n, err := strconv.ParseFloat(retryField.FindStringSubmatch(m)[1], 64)
		if err != nil || n <= 0 || n > 60 {
			return m
		}
		return `"retry_after":"SECONDS"`
	})
}

// withoutMessage drops the human-readable message of an error frame, which
// the scenario does not pin (the transports must still agree on it).
func withoutMessage(t *testing.T, out string) string {
	t.Helper()
	if !strings.HasPrefix(out, "{") || field(t, out, "type") != "error" {
		return out
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(out), &m)
	delete(m, "message")
	b, _ := json.Marshal(m)
	return string(b)
}

// refusalOutcome is how a refused handshake is reported.
func refusalOutcome(t *testing.T, status int, body, retryAfter string) string {
	t.Helper()
	out := fmt.Sprintf("%d %v", status, field(t, body, "error"))
	if retryAfter != "" {
		if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 || n > 3600 {
			t.Errorf("Retry-After %q, want 1..3600", retryAfter)
		}
		out += " retry-after"
	}
	return out
}

// tokenFor returns the token a step presents: a valid one for its user,
// a corrupted one ("bad"), or none.
func tokenFor(t *testing.T, s step) string {
	switch s.via {
	case "none":
		return ""
	case "bad":
		return token(t, s.user, false) + "x"
	}
	return token(t, s.user, false)
}

// localTransport is the scenario on adapters/http.
type localTransport struct {
	srv     *localServer
	clients map[string]*client
}

func newLocalTransport(t *testing.T) transport {
	return &localTransport{srv: startLocalServer(t, parityConfig(t, memory.New(), nil)), clients: map[string]*client{}}
}

func (l *localTransport) connect(t *testing.T, s step) string {
	tok := tokenFor(t, s)
	q, h, protos := "", http.Header{}, []string(nil)
	switch s.via {
	case "query", "bad":
		q = "token=" + tok
	case "header":
		h.Set("Authorization", "Bearer "+tok)
	case "subprotocol":
		protos = []string{"bearer", tok}
	}
	if s.origin != "" {
		h.Set("Origin", s.origin)
	}
	c, status, body, resp := l.srv.dialStatus(t, q, h, protos)
	if c == nil {
		return refusalOutcome(t, status, body, resp.Header.Get("Retry-After"))
	}
	l.clients[s.connect] = c
	if p := c.c.Subprotocol(); p != "" {
		return "ok " + p
	}
	return "ok"
}

func (l *localTransport) send(t *testing.T, name, frame string) string {
	return l.clients[name].request(t, frame)
}

func (l *localTransport) event(t *testing.T, name string) string { return l.clients[name].read(t) }

// disconnect closes the client and waits until the server recorded it.
func (l *localTransport) disconnect(t *testing.T, name string) {
	c := l.clients[name]
	delete(l.clients, name)
	want := int64(len(l.clients))
	_ = c.c.Close(1000, "bye")
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := l.srv.srv.Gateway().Metrics(context.Background())
		if err == nil && m.ActiveConnections == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("disconnect of %s not recorded: %+v %v", name, m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lambdaTransport is the scenario on the Lambda handlers, fed the
// events/ files, with a sender that records what API Gateway would post.
type lambdaTransport struct {
	h      *lambdaadapter.WebSocket
	sender *recordingSender
}

// recordingSender queues the frames posted to each connection id.
type recordingSender struct {
	mu     sync.Mutex
	frames map[string][]string
}

func (r *recordingSender) Send(_ context.Context, tg core.Target, frame []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames[tg.ID] = append(r.frames[tg.ID], string(frame))
	return nil
}

// next pops the oldest frame posted to id.
func (r *recordingSender) next(t *testing.T, id string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.frames[id]
	if len(q) == 0 {
		t.Fatalf("nothing was posted to %s", id)
	}
	r.frames[id] = q[1:]
	return q[0]
}

func newLambdaTransport(t *testing.T) transport {
	sender := &recordingSender{frames: map[string][]string{}}
	h, err := lambdaadapter.NewWebSocket(parityConfig(t, memory.New(), sender), lambdaadapter.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &lambdaTransport{h: h, sender: sender}
}

func (l *lambdaTransport) invoke(t *testing.T, ev []byte) events.APIGatewayProxyResponse {
	t.Helper()
	var req events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(ev, &req); err != nil {
		t.Fatal(err)
	}
	resp, err := l.h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

func (l *lambdaTransport) connect(t *testing.T, s step) string {
	tok := tokenFor(t, s)
	ev := eventFile(t, "connect.json", map[string]string{"REPLACE_WITH_A_JWT": tok}, func(ev *events.APIGatewayWebsocketProxyRequest) {
		ev.RequestContext.ConnectionID = s.connect + "="
		ev.RequestContext.Identity.SourceIP = "127.0.0.1"
		if s.via != "query" && s.via != "bad" {
			ev.QueryStringParameters, ev.MultiValueQueryStringParameters = nil, nil
		}
		switch s.via {
		case "header":
			ev.Headers["Authorization"] = "Bearer " + tok
		case "subprotocol":
			ev.Headers["Sec-WebSocket-Protocol"] = "bearer, " + tok
		}
		if s.origin != "" {
			ev.Headers["Origin"] = s.origin
		}
	})
	resp := l.invoke(t, ev)
	if resp.StatusCode != 200 {
		return refusalOutcome(t, resp.StatusCode, resp.Body, resp.Headers["Retry-After"])
	}
	if p := resp.Headers["Sec-WebSocket-Protocol"]; p != "" {
		return "ok " + p
	}
	return "ok"
}

func (l *lambdaTransport) send(t *testing.T, name, frame string) string {
	ev := eventFile(t, "default-ping.json", nil, func(ev *events.APIGatewayWebsocketProxyRequest) {
		ev.RequestContext.ConnectionID = name + "="
		ev.Body = frame
	})
	if resp := l.invoke(t, ev); resp.StatusCode != 200 {
		t.Fatalf("$default answered %d", resp.StatusCode)
	}
	return l.sender.next(t, name+"=")
}

func (l *lambdaTransport) event(t *testing.T, name string) string { return l.sender.next(t, name+"=") }

func (l *lambdaTransport) disconnect(t *testing.T, name string) {
	ev := eventFile(t, "disconnect.json", nil, func(ev *events.APIGatewayWebsocketProxyRequest) {
		ev.RequestContext.ConnectionID = name + "="
	})
	if resp := l.invoke(t, ev); resp.StatusCode != 200 {
		t.Fatalf("$disconnect answered %d", resp.StatusCode)
	}
}
