package httpadapter_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// quiet drops the servers' logs in tests.
var quiet = slog.New(slog.DiscardHandler)

var testSecret = []byte("test-secret-at-least-32-bytes-long!!")

// fakeClock is a settable core.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// env is one server on a loopback httptest listener.
type env struct {
	t     testing.TB
	srv   *httpadapter.Server
	ts    *httptest.Server
	store core.Store
	ws    string // ws://host/ws
}

func hsAuth(t testing.TB) *core.Authenticator {
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

// newEnv starts a server with the SPEC's defaults, after mutate.
func newEnv(t testing.TB, mutate func(*core.Config, *httpadapter.Options)) *env {
	t.Helper()
	st := memory.New()
	cfg := core.Config{
		Auth:                 hsAuth(t),
		Store:                st,
		MaxConnectionsPerIP:  5,
		MaxConnectsPerHour:   0,
		MaxMessagesPerMinute: 60,
		ClientPublish:        true,
		Logger:               quiet,
	}
	opts := httpadapter.Options{Logger: quiet}
	if mutate != nil {
		mutate(&cfg, &opts)
	}
	srv, err := httpadapter.New(cfg, opts)
	if err != nil {
		t.Fatalf("httpadapter.New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return &env{t: t, srv: srv, ts: ts, store: cfg.Store, ws: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"}
}

// token signs an HS256 token for sub, valid for an hour, after mods.
func token(t testing.TB, sub string, admin bool, mods ...func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if admin {
		claims["is_staff"] = true
	}
	for _, m := range mods {
		m(claims)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects with the token in the query; it fails the test on refusal.
func (e *env) dial(t *testing.T, tok string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(tctx(t), e.ws+"?token="+tok, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// refusal dials and expects an HTTP refusal; it returns status and body.
func (e *env) refusal(t *testing.T, url string, opts *websocket.DialOptions) (int, map[string]any, http.Header) {
	t.Helper()
	c, resp, err := websocket.Dial(tctx(t), url, opts)
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial %s succeeded, want a refusal", url)
	}
	if resp == nil {
		t.Fatalf("dial: no HTTP response: %v", err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, resp.Header
}

// roundTrip sends one text frame and reads one reply.
func roundTrip(t *testing.T, c *websocket.Conn, frame string) map[string]any {
	t.Helper()
	if err := c.Write(tctx(t), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("write %s: %v", frame, err)
	}
	return read(t, c)
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	typ, b, err := c.Read(tctx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("got a %v frame, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("reply %q is not a JSON object: %v", b, err)
	}
	return m
}

// adminGet calls an admin endpoint with an Authorization header value.
func (e *env) admin(t *testing.T, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(tctx(t), method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (e *env) metrics(t *testing.T) map[string]any {
	t.Helper()
	status, m := e.admin(t, "GET", "/api/monitoring/websocket/metrics/", "Bearer "+token(t, "root", true), "")
	if status != 200 {
		t.Fatalf("metrics: status %d %v", status, m)
	}
	return m
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}
