package lambdaadapter_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

var quiet = slog.New(slog.DiscardHandler)

var testSecret = []byte("lambda-test-secret-at-least-32-bytes")

// endpoint is the management API base URL the connect fixture implies
// once its domainName is set to testDomain.
const (
	testDomain   = "abc123.execute-api.eu-west-1.amazonaws.com"
	testStage    = "prod"
	testEndpoint = core.APIGatewayPrefix + "https://" + testDomain + "/" + testStage
)

// post is one frame a fakeSender was asked to deliver.
type post struct {
	To    core.Target
	Frame string
}

// fakeSender records deliveries and answers Gone for chosen ids.
type fakeSender struct {
	mu    sync.Mutex
	posts []post
	gone  map[string]bool
}

func newSender() *fakeSender { return &fakeSender{gone: map[string]bool{}} }

func (s *fakeSender) Send(_ context.Context, t core.Target, frame []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone[t.ID] {
		return core.ErrGone
	}
	s.posts = append(s.posts, post{t, string(frame)})
	return nil
}

func (s *fakeSender) setGone(id string) {
	s.mu.Lock()
	s.gone[id] = true
	s.mu.Unlock()
}

// take returns and forgets the recorded posts.
func (s *fakeSender) take() []post {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.posts
	s.posts = nil
	return p
}

func auth(t *testing.T) *core.Authenticator {
	t.Helper()
	a, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return testSecret, nil },
		Methods: []string{"HS256", "HS384", "HS512"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// token signs an HS256 token for sub, valid for an hour.
func token(t *testing.T, sub string, admin bool) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if admin {
		claims["is_staff"] = true
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// config is the SPEC's defaults on a fresh memory store, after mutate.
func config(t *testing.T, st core.Store, sender core.Sender, mutate func(*core.Config)) core.Config {
	t.Helper()
	cfg := core.Config{
		Auth:                 auth(t),
		Store:                st,
		Sender:               sender,
		Logger:               quiet,
		MaxConnectionsPerIP:  5,
		MaxConnectsPerHour:   10,
		MaxMessagesPerMinute: 60,
		ClientPublish:        true,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// wsEnv is a WebSocket handler on a memory store with a fake sender.
type wsEnv struct {
	h      *lambdaadapter.WebSocket
	store  *memory.Store
	sender *fakeSender
}

func newWS(t *testing.T, mutate func(*core.Config), opts lambdaadapter.Options) *wsEnv {
	t.Helper()
	st, sender := memory.New(), newSender()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	h, err := lambdaadapter.NewWebSocket(config(t, st, sender, mutate), opts)
	if err != nil {
		t.Fatalf("NewWebSocket: %v", err)
	}
	return &wsEnv{h: h, store: st, sender: sender}
}

// fixture decodes testdata/name into v.
func fixture(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
}

// connectEvent is the captured $connect event for connection id from ip,
// on testDomain/testStage, with no token and no Origin.
func connectEvent(t *testing.T, id, ip string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	var ev events.APIGatewayWebsocketProxyRequest
	fixture(t, "apigw-websocket-request.json", &ev)
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.Identity.SourceIP = ip
	ev.RequestContext.DomainName = testDomain
	ev.RequestContext.Stage = testStage
	ev.Headers["Host"] = testDomain
	ev.MultiValueHeaders["Host"] = []string{testDomain}
	return ev
}

// withToken puts tok in the query, as browsers do.
func withToken(ev events.APIGatewayWebsocketProxyRequest, tok string) events.APIGatewayWebsocketProxyRequest {
	ev.QueryStringParameters = map[string]string{"token": tok}
	ev.MultiValueQueryStringParameters = map[string][]string{"token": {tok}}
	return ev
}

// messageEvent is the captured $default event from connection id with body.
func messageEvent(t *testing.T, id, body string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	var ev events.APIGatewayWebsocketProxyRequest
	fixture(t, "apigw-websocket-request-send-message.json", &ev)
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.DomainName = testDomain
	ev.RequestContext.Stage = testStage
	ev.Body = body
	return ev
}

// disconnectEvent is the captured $disconnect event of connection id.
func disconnectEvent(t *testing.T, id string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	var ev events.APIGatewayWebsocketProxyRequest
	fixture(t, "apigw-websocket-request-disconnect.json", &ev)
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.DomainName = testDomain
	ev.RequestContext.Stage = testStage
	return ev
}

// connect admits connection id for sub, failing the test on refusal.
func (e *wsEnv) connect(t *testing.T, id, sub string) {
	t.Helper()
	resp, err := e.h.Handle(context.Background(), withToken(connectEvent(t, id, "198.51.100.7"), token(t, sub, false)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("connect %s: %d %s %v", id, resp.StatusCode, resp.Body, err)
	}
}

// send handles a $default message from id and returns what was posted.
func (e *wsEnv) send(t *testing.T, id, body string) []post {
	t.Helper()
	resp, err := e.h.Handle(context.Background(), messageEvent(t, id, body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("$default from %s: %d %v, want 200", id, resp.StatusCode, err)
	}
	return e.sender.take()
}

// reply returns the one post to id among posts.
func reply(t *testing.T, posts []post, id string) string {
	t.Helper()
	var got []string
	for _, p := range posts {
		if p.To.ID == id {
			got = append(got, p.Frame)
		}
	}
	if len(got) != 1 {
		t.Fatalf("posts to %s = %q, want exactly one (all posts: %+v)", id, got, posts)
	}
	return got[0]
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("not JSON: %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("got %s, want %s", gb, wb)
	}
}

// newExampleHandler is a WebSocket handler on a memory store, for examples.
func newExampleHandler() *lambdaadapter.WebSocket {
	a, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return testSecret, nil },
		Methods: []string{"HS256"},
	})
	if err != nil {
		panic(err)
	}
	h, err := lambdaadapter.NewWebSocket(core.Config{Auth: a, Store: memory.New(), Sender: newSender(), Logger: quiet}, lambdaadapter.Options{Logger: quiet})
	if err != nil {
		panic(err)
	}
	return h
}

// exampleConnect is the captured $connect event of connection id, without
// a token.
func exampleConnect(id string) events.APIGatewayWebsocketProxyRequest {
	var ev events.APIGatewayWebsocketProxyRequest
	b, err := os.ReadFile(filepath.Join("testdata", "apigw-websocket-request.json"))
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		panic(err)
	}
	ev.RequestContext.ConnectionID = id
	return ev
}
