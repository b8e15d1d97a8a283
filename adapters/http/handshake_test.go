package httpadapter_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

func TestTokenRefusals(t *testing.T) {
	e := newEnv(t, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsTok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(rsaKey)
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("another-secret-of-the-same-length!!!"))

	tests := []struct {
		name  string
		token string
	}{
		{"no token", ""},
		{"garbage", "not.a.jwt"},
		{"alg none", noneTok},
		{"RS token against an HS key", rsTok},
		{"wrong secret", otherKey},
		{"expired", token(t, "a", false, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
		{"no exp", token(t, "a", false, func(c jwt.MapClaims) { delete(c, "exp") })},
		{"exp as string", token(t, "a", false, func(c jwt.MapClaims) { c["exp"] = fmt.Sprint(time.Now().Add(time.Hour).Unix()) })},
		{"iat as string", token(t, "a", false, func(c jwt.MapClaims) { c["iat"] = "yesterday" })},
		{"future nbf", token(t, "a", false, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() })},
		{"missing sub", token(t, "", false, func(c jwt.MapClaims) { delete(c, "sub") })},
		{"empty sub", token(t, "", false)},
		{"numeric sub", token(t, "", false, func(c jwt.MapClaims) { c["sub"] = 42 })},
		{"100 KB token", strings.Repeat("a", 100<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := e.refusal(t, e.ws+"?token="+tc.token, nil)
			if status != 401 || body["error"] != "unauthorized" {
				t.Fatalf("got %d %v, want 401 unauthorized", status, body)
			}
		})
	}
	// Within the 30 s leeway an expired token still passes.
	e.dial(t, token(t, "a", false, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() }))
	// The server is still healthy.
	if got := roundTrip(t, e.dial(t, token(t, "b", false)), `{"type":"ping"}`); got["type"] != "pong" {
		t.Fatalf("after refusals: %v", got)
	}
}

func TestHSTokenAgainstRSKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pub, err := jwt.ParseRSAPublicKeyFromPEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return pub, nil },
		Methods: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.Auth = auth })
	claims := jwt.MapClaims{"sub": "rs-user", "exp": time.Now().Add(time.Hour).Unix()}
	// The classic confusion attack: HS256 signed with the public key's PEM.
	hsTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pemKey)
	if status, _, _ := e.refusal(t, e.ws+"?token="+hsTok, nil); status != 401 {
		t.Fatalf("HS token against RS key: %d, want 401", status)
	}
	rsTok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(rsaKey)
	c := e.dial(t, rsTok)
	if got := roundTrip(t, c, `{"type":"whoami"}`); got["user"] != "rs-user" {
		t.Fatalf("whoami with RS token: %v", got)
	}
}

func TestTokenTransports(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, "carol", false)
	t.Run("header", func(t *testing.T) {
		c, _, err := websocket.Dial(tctx(t), e.ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if got := roundTrip(t, c, `{"type":"whoami"}`); got["user"] != "carol" {
			t.Fatalf("whoami: %v", got)
		}
	})
	t.Run("subprotocol", func(t *testing.T) {
		c, _, err := websocket.Dial(tctx(t), e.ws, &websocket.DialOptions{Subprotocols: []string{"bearer", tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if c.Subprotocol() != "bearer" {
			t.Fatalf("selected subprotocol %q, want bearer", c.Subprotocol())
		}
		if got := roundTrip(t, c, `{"type":"whoami"}`); got["user"] != "carol" {
			t.Fatalf("whoami: %v", got)
		}
	})
	t.Run("query token with an offered subprotocol", func(t *testing.T) {
		c, _, err := websocket.Dial(tctx(t), e.ws+"?token="+tok, &websocket.DialOptions{Subprotocols: []string{"bearer", "not-a-token"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if c.Subprotocol() != "bearer" {
			t.Fatalf("selected %q; a browser fails a handshake that selects none of its offers", c.Subprotocol())
		}
	})
	t.Run("query wins", func(t *testing.T) {
		c, _, err := websocket.Dial(tctx(t), e.ws+"?token="+token(t, "query-user", false),
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if got := roundTrip(t, c, `{"type":"whoami"}`); got["user"] != "query-user" {
			t.Fatalf("whoami: %v", got)
		}
	})
}

func TestOrigin(t *testing.T) {
	e := newEnv(t, func(_ *core.Config, _ *httpadapter.Options) {})
	e2 := newEnv(t, func(c *core.Config, _ *httpadapter.Options) {
		c.Origins = core.OriginPolicy{Hosts: []string{"app.example.com", "*.example.org"}}
	})
	tok := token(t, "o", false)
	host := strings.TrimPrefix(e.ts.URL, "http://")
	host2 := strings.TrimPrefix(e2.ts.URL, "http://")
	tests := []struct {
		env    *env
		origin string
		ok     bool
	}{
		{e, "", true},
		{e, "http://" + host, true},
		{e, "https://evil.example.com", false},
		{e, "http://" + strings.Replace(host, "127.0.0.1", "localhost", 1), false},
		{e, "null", false},
		{e2, "https://app.example.com:8443", true},
		{e2, "https://a.b.example.org", true},
		{e2, "https://example.org", false},
		{e2, "https://app.example.com.evil.net", false},
		{e2, "http://" + host2, true},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			if tc.ok {
				c, resp, err := websocket.Dial(tctx(t), tc.env.ws+"?token="+tok, &websocket.DialOptions{HTTPHeader: h})
				if err != nil {
					t.Fatalf("origin %q refused: %v %v", tc.origin, err, resp)
				}
				c.CloseNow()
				return
			}
			status, body, _ := tc.env.refusal(t, tc.env.ws+"?token="+tok, &websocket.DialOptions{HTTPHeader: h})
			if status != 403 || body["error"] != "forbidden_origin" {
				t.Fatalf("origin %q: %d %v, want 403 forbidden_origin", tc.origin, status, body)
			}
		})
	}
	// Origin is checked before the token.
	h := http.Header{"Origin": {"https://evil.example.com"}}
	if status, _, _ := e.refusal(t, e.ws, &websocket.DialOptions{HTTPHeader: h}); status != 403 {
		t.Fatalf("bad origin and no token: %d, want 403", status)
	}
}

func TestConnectionLimits(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) {
		c.MaxConnectionsPerIP = 2
		c.MaxConnectsPerHour = 3
	})
	tok := token(t, "l", false)
	a := e.dial(t, tok)
	e.dial(t, tok)
	status, body, _ := e.refusal(t, e.ws+"?token="+tok, nil)
	if status != 429 || body["error"] != "too_many_connections" {
		t.Fatalf("third concurrent: %d %v", status, body)
	}
	a.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the slot to free", func() bool { return num(e.metrics(t), "active_connections") == 1 })
	e.dial(t, tok) // third accepted connect this hour
	status, body, hdr := e.refusal(t, e.ws+"?token="+tok, nil)
	if status != 429 || body["error"] != "too_many_connections" {
		t.Fatalf("concurrency is checked first: %d %v", status, body)
	}
	// A different token does not help: limits are per IP.
	_ = hdr
	e2 := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.MaxConnectsPerHour = 2 })
	for range 2 {
		e2.dial(t, tok).Close(websocket.StatusNormalClosure, "")
	}
	status, body, hdr = e2.refusal(t, e2.ws+"?token="+token(t, "other", false), nil)
	if status != 429 || body["error"] != "too_many_connects" {
		t.Fatalf("third connect in the hour: %d %v", status, body)
	}
	ra := hdr.Get("Retry-After")
	var secs int
	if _, err := fmt.Sscan(ra, &secs); err != nil || secs < 3590 || secs > 3600 {
		t.Fatalf("Retry-After %q, want about 3600", ra)
	}
}

func TestConnectRace(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.MaxConnectionsPerIP = 5 })
	tok := token(t, "racer", false)
	var ok, refused atomic.Int32
	var mu sync.Mutex
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			c, resp, err := websocket.Dial(tctx(t), e.ws+"?token="+tok, nil)
			switch {
			case err == nil:
				ok.Add(1)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			case resp != nil && resp.StatusCode == 429:
				refused.Add(1)
			default:
				t.Errorf("dial: %v", err)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	if ok.Load() != 5 || refused.Load() != 45 {
		t.Fatalf("50 racing connects: %d admitted, %d refused; want 5 and 45", ok.Load(), refused.Load())
	}
	if got := num(e.metrics(t), "active_connections"); got != 5 {
		t.Fatalf("active_connections = %v, want 5", got)
	}
}

func TestForwardedFor(t *testing.T) {
	untrusted := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.MaxConnectionsPerIP = 1 })
	tok := token(t, "x", false)
	forged := func(ip string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {ip}}}
	}
	// A forged X-Forwarded-For from an untrusted peer is ignored: both
	// connections count against 127.0.0.1.
	c, _, err := websocket.Dial(tctx(t), untrusted.ws+"?token="+tok, forged("203.0.113.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if status, body, _ := untrusted.refusal(t, untrusted.ws+"?token="+tok, forged("203.0.113.2")); status != 429 {
		t.Fatalf("forged XFF let a second connection through: %d %v", status, body)
	}
	// Behind a trusted proxy, the rightmost untrusted address counts.
	trusted := newEnv(t, func(c *core.Config, o *httpadapter.Options) {
		c.MaxConnectionsPerIP = 1
		o.TrustedProxies = mustPrefixes(t, "127.0.0.0/8", "10.0.0.0/8")
	})
	for _, xff := range []string{"198.51.100.7, 203.0.113.1", "203.0.113.2, 10.1.1.1"} {
		c, resp, err := websocket.Dial(tctx(t), trusted.ws+"?token="+tok, forged(xff))
		if err != nil {
			t.Fatalf("XFF %q: %v %v", xff, err, resp)
		}
		defer c.CloseNow()
	}
	if status, _, _ := trusted.refusal(t, trusted.ws+"?token="+tok, forged("203.0.113.1")); status != 429 {
		t.Fatalf("same forwarded IP again: %d, want 429", status)
	}
}

func TestStoreUnavailable(t *testing.T) {
	fs := &flakyStore{Store: memory.New()}
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.Store = fs })
	tok := token(t, "s", false)
	c := e.dial(t, tok)
	fs.down.Store(true)
	status, body, _ := e.refusal(t, e.ws+"?token="+tok, nil)
	if status != 503 || body["error"] != "unavailable" {
		t.Fatalf("connect with the store down: %d %v", status, body)
	}
	if got := roundTrip(t, c, `{"type":"subscribe","channel":"x","id":7}`); got["code"] != "unavailable" || got["id"] != 7.0 {
		t.Fatalf("subscribe with the store down: %v", got)
	}
	if status, _ := e.admin(t, "GET", "/api/monitoring/websocket/metrics/", "Bearer "+token(t, "root", true), ""); status != 503 {
		t.Fatalf("metrics with the store down: %d", status)
	}
	fs.down.Store(false)
	if got := roundTrip(t, c, `{"type":"ping"}`); got["type"] != "pong" {
		t.Fatalf("after recovery: %v", got)
	}
}

// flakyStore fails every call while down.
type flakyStore struct {
	core.Store
	down atomic.Bool
}

var errDown = fmt.Errorf("%w: test store down", core.ErrUnavailable)

func (f *flakyStore) Admit(ctx context.Context, c core.Conn, l core.Limits, now time.Time) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Admit(ctx, c, l, now)
}

func (f *flakyStore) Subscribe(ctx context.Context, c core.Conn, ch string, max int) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Subscribe(ctx, c, ch, max)
}

func (f *flakyStore) Count(ctx context.Context, n core.Counts, now time.Time) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Count(ctx, n, now)
}

func (f *flakyStore) Snapshot(ctx context.Context, now time.Time, maxAge time.Duration) (core.Snapshot, error) {
	if f.down.Load() {
		return core.Snapshot{}, errDown
	}
	return f.Store.Snapshot(ctx, now, maxAge)
}

func TestHandshakeProtocolErrors(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, "h", false)
	raw := func(t *testing.T, head string) string {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		return string(buf[:n])
	}
	base := "GET /ws?token=" + tok + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	tests := []struct{ name, head string }{
		{"repeated key", base + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"},
		{"wrong version", base + "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"},
		{"no key", base + "Sec-WebSocket-Version: 13\r\n\r\n"},
		{"short key", base + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := raw(t, tc.head)
			if !strings.HasPrefix(got, "HTTP/1.1 4") {
				t.Fatalf("got %q, want a 4xx", got)
			}
		})
	}
	if n := num(e.metrics(t), "connections_today"); n != 0 {
		t.Fatalf("malformed handshakes were admitted: connections_today = %v", n)
	}
}

func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, p := range s {
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pr)
	}
	return out
}
