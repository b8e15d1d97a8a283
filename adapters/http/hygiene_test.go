package httpadapter_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestLogsNeverHoldTokens(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	e := newEnv(t, func(c *core.Config, o *httpadapter.Options) {
		c.Logger, o.Logger = log, log
		c.MaxMessagesPerMinute = 1
	})
	good := token(t, strings.Repeat("u", 3000), false)
	expired := token(t, "x", false, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	e.refusal(t, e.ws+"?token="+expired, nil)
	e.refusal(t, e.ws+"?token="+good, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://" + strings.Repeat("o", 5000) + ".example"}}})
	c := e.dial(t, good)
	roundTrip(t, c, `{"type":"ping"}`)
	roundTrip(t, c, `{"type":"ping"}`) // rate limited: logged
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the disconnect log", func() bool { return strings.Contains(logs.String(), `"msg":"disconnect"`) })

	out := logs.String()
	for _, want := range []string{`"msg":"connect"`, `"msg":"refused"`, `"reason":"unauthorized"`, `"reason":"forbidden_origin"`, `"msg":"rate limited"`, `"duration_s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	for _, tok := range []string{good, expired, strings.Split(good, ".")[2], strings.Split(expired, ".")[2]} {
		if strings.Contains(out, tok) {
			t.Fatal("a token (or its signature) appears in the logs")
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(line) > 2048+512 {
			t.Fatalf("log line of %d bytes echoes too much client input: %.200s…", len(line), line)
		}
	}
}

func TestClosedConnectionsReleaseGoroutines(t *testing.T) {
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) { c.MaxConnectionsPerIP = 0 })
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	var conns []*websocket.Conn
	for i := range 40 {
		c := e.dial(t, token(t, "g", false))
		roundTrip(t, c, `{"type":"subscribe","channel":"g"}`)
		if i%2 == 0 {
			conns = append(conns, c)
		} else {
			c.CloseNow() // abrupt: no closing handshake
		}
	}
	if status, _ := e.admin(t, "POST", "/api/publish", "Bearer "+token(t, "root", true), `{"channel":"g","data":1}`); status != 200 {
		t.Fatal(status)
	}
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	deadline := time.Now().Add(5 * time.Second)
	for http.DefaultClient.CloseIdleConnections(); runtime.NumGoroutine() > before+2; http.DefaultClient.CloseIdleConnections() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d before, %d 5 s after closing\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := num(e.metrics(t), "active_connections"); got != 0 {
		t.Fatalf("active_connections = %v after every close", got)
	}
}
