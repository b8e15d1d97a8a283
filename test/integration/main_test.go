// Package integration runs several wsgate servers against one real
// DynamoDB-API server (dynalite): cross-instance fan-out, limits that hold
// across instances, crashed instances and a store that goes away.
package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/delivery"
	ddbstore "github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/internal/dynalite"
)

var (
	endpoint string
	secret   = []byte("integration-secret-0123456789abcd")
	quiet    = slog.New(slog.DiscardHandler)
	seq      atomic.Int64
)

func TestMain(m *testing.M) {
	ep, stop, err := dynalite.Endpoint()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: integration tests: %v\n", err)
		os.Exit(1)
	}
	endpoint = ep
	code := m.Run()
	stop()
	os.Exit(code)
}

// requests counts every DynamoDB request the instances make.
var requests atomic.Int64

func client(ep string) ddbstore.API {
	return ddbstore.NewClient(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		APIOptions: []func(*middleware.Stack) error{func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					requests.Add(1)
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		}},
	}, ep)
}

// newTable creates a fresh table for t.
func newTable(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("i%d_%s", seq.Add(1), regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := ddbstore.CreateTable(ctx, client(endpoint).(ddbstore.TableAPI), name); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return name
}

// instance is one local server on the shared table.
type instance struct {
	t     *testing.T
	srv   *httpadapter.Server
	ts    *httptest.Server
	store core.Store
	ws    string
}

type limits struct{ perIP, perHour int }

// newInstance starts a local server on table through ep, as cmd/local
// wires it with WSGATE_STORE=dynamodb; wrap, when set, wraps its store.
func newInstance(t *testing.T, ep, table string, lim limits, wrap func(core.Store) core.Store) *instance {
	t.Helper()
	st, err := ddbstore.New(context.Background(), ddbstore.Options{
		Client: client(ep), Table: table, FlushInterval: 200 * time.Millisecond, Logger: quiet, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var store core.Store = st
	if wrap != nil {
		store = wrap(st)
	}
	remote, err := delivery.New(delivery.Options{Secret: secret, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	auth, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return secret, nil }, Methods: []string{"HS256"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpadapter.New(core.Config{
		Auth: auth, Store: store, Logger: quiet, ClientPublish: true,
		MaxConnectionsPerIP: lim.perIP, MaxConnectsPerHour: lim.perHour, MaxMessagesPerMinute: 60,
	}, httpadapter.Options{Endpoint: ts.URL, Remote: remote, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h = srv
	in := &instance{t: t, srv: srv, ts: ts, store: store, ws: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"}
	t.Cleanup(func() { in.stop(); st.Close(context.Background()) })
	return in
}

func (in *instance) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in.srv.Shutdown(ctx)
	in.ts.Close()
}

func token(t *testing.T, sub string, admin bool) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	if admin {
		claims["is_staff"] = true
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects; status is the refusal's HTTP status, 0 when connected.
func (in *instance) dial(t *testing.T, sub string) (*websocket.Conn, int) {
	t.Helper()
	c, resp, err := websocket.Dial(tctx(t), in.ws+"?token="+token(t, sub, false), nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, 0
}

func (in *instance) mustDial(t *testing.T, sub string) *websocket.Conn {
	t.Helper()
	c, status := in.dial(t, sub)
	if c == nil {
		t.Fatalf("dial %s: refused with %d", sub, status)
	}
	return c
}

func roundTrip(t *testing.T, c *websocket.Conn, frame string) map[string]any {
	t.Helper()
	if err := c.Write(tctx(t), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("write: %v", err)
	}
	return read(t, c)
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_, b, err := c.Read(tctx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return m
}

func (in *instance) admin(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(tctx(t), method, in.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token(t, "root", true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (in *instance) metrics(t *testing.T) map[string]any {
	t.Helper()
	status, m := in.admin(t, "GET", "/api/monitoring/websocket/metrics/", "")
	if status != 200 {
		t.Fatalf("metrics: %d %v", status, m)
	}
	return m
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// proxy is a TCP proxy to DynamoDB that can be taken down: while down it
// refuses new connections and has cut the open ones.
type proxy struct {
	ln      net.Listener
	backend string
	down    atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

func newProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backend: strings.TrimPrefix(backend, "http://"), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { io.Copy(b, c); b.Close() }()
		go func() { io.Copy(c, b); c.Close() }()
	}
}

func (p *proxy) setDown(down bool) {
	p.down.Store(down)
	if down {
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]struct{}{}
		p.mu.Unlock()
	}
}

func num(m map[string]any, k string) float64 { f, _ := m[k].(float64); return f }
