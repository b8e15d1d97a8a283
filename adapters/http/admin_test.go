package httpadapter_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
)

func TestAdminAuth(t *testing.T) {
	e := newEnv(t, nil)
	adminTok := token(t, "root", true)
	userTok := token(t, "joe", false)
	paths := []struct{ method, path, body string }{
		{"GET", "/api/monitoring/websocket/metrics/", ""},
		{"GET", "/api/monitoring/websocket/metrics", ""},
		{"GET", "/api/monitoring/websocket/active-connections/", ""},
		{"GET", "/api/monitoring/websocket/active-connections", ""},
		{"POST", "/api/publish", `{"channel":"a","data":1}`},
		{"GET", "/@connections/abc", ""},
	}
	auths := []struct {
		name, header string
		want         int
	}{
		{"no token", "", 401},
		{"garbage", "Bearer garbage", 401},
		{"wrong scheme", "Token " + adminTok, 401},
		{"basic", "Basic " + adminTok, 401},
		{"non-admin", "Bearer " + userTok, 403},
		{"admin claim false", "Bearer " + token(t, "x", false, func(c jwt.MapClaims) { c["is_staff"] = false }), 403},
		{"admin claim as string", "Bearer " + token(t, "x", false, func(c jwt.MapClaims) { c["is_staff"] = "true" }), 403},
	}
	for _, p := range paths {
		for _, a := range auths {
			t.Run(p.path+"/"+a.name, func(t *testing.T) {
				status, body := e.admin(t, p.method, p.path, a.header, p.body)
				if status != a.want {
					t.Fatalf("%s %s with %s: %d %v, want %d", p.method, p.path, a.name, status, body, a.want)
				}
			})
		}
	}
	// A token in the query does not count.
	resp, err := http.Get(e.ts.URL + "/api/monitoring/websocket/metrics/?token=" + adminTok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("query token on the admin API: %d, want 401", resp.StatusCode)
	}
	// Both spellings answer directly, without a redirect.
	for _, p := range []string{"/api/monitoring/websocket/metrics", "/api/monitoring/websocket/metrics/"} {
		status, body := e.admin(t, "GET", p, "Bearer "+adminTok, "")
		if status != 200 || body["timestamp"] == nil {
			t.Fatalf("%s: %d %v", p, status, body)
		}
	}
}

func TestAdminPublishBadBodies(t *testing.T) {
	e := newEnv(t, nil)
	auth := "Bearer " + token(t, "root", true)
	for _, body := range []string{
		``, `nope`, `[]`, `"x"`, `null`, `{}`, `{"channel":"a"}`, `{"data":1}`,
		`{"channel":5,"data":1}`, `{"channel":"bad name","data":1}`, `{"channel":"` + strings.Repeat("a", 129) + `","data":1}`,
		`{"channel":"a","data":}`,
	} {
		status, got := e.admin(t, "POST", "/api/publish", auth, body)
		if status != 400 || got["error"] != "bad_request" {
			t.Errorf("body %q: %d %v, want 400 bad_request", body, status, got)
		}
	}
	if status, _ := e.admin(t, "GET", "/api/publish", auth, ""); status != 405 {
		t.Errorf("GET /api/publish: %d, want 405", status)
	}
	if status, got := e.admin(t, "POST", "/api/publish", auth, `{"channel":"a","data":null}`); status != 200 || got["delivered"] != 0.0 {
		t.Errorf("publish of null data: %d %v", status, got)
	}
}

func TestConnectionsAPI(t *testing.T) {
	e := newEnv(t, nil)
	auth := "Bearer " + token(t, "root", true)
	c := e.dial(t, token(t, "target", false))
	id := roundTrip(t, c, `{"type":"whoami"}`)["connection_id"].(string)

	status, info := e.admin(t, "GET", "/@connections/"+id, auth, "")
	identity, _ := info["identity"].(map[string]any)
	if status != 200 || identity["sourceIp"] != "127.0.0.1" || info["connectedAt"] == nil || info["lastActiveAt"] == nil {
		t.Fatalf("GET: %d %v", status, info)
	}
	if status, _ := e.admin(t, "POST", "/@connections/"+id, auth, `{"hello":"from the back end"}`); status/100 != 2 {
		t.Fatalf("POST: %d", status)
	}
	if got := read(t, c); got["hello"] != "from the back end" {
		t.Fatalf("posted frame: %v", got)
	}
	if status, _ := e.admin(t, "DELETE", "/@connections/"+id, auth, ""); status/100 != 2 {
		t.Fatalf("DELETE: %d", status)
	}
	if _, _, err := c.Read(tctx(t)); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after DELETE: %v", err)
	}
	eventually(t, "the connection to go", func() bool {
		status, _ := e.admin(t, "GET", "/@connections/"+id, auth, "")
		return status == 410
	})
	for _, m := range []string{"GET", "POST", "DELETE"} {
		if status, _ := e.admin(t, m, "/@connections/unknown-id", auth, "x"); status != 410 {
			t.Fatalf("%s unknown id: %d, want 410", m, status)
		}
	}
	m := e.metrics(t)
	if num(m, "messages_sent") != 2 { // the whoami reply and the posted frame
		t.Fatalf("messages_sent = %v, want 2", m["messages_sent"])
	}
}

func TestHealthzAndStatic(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Get(e.ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	resp, err = http.Get(e.ts.URL + "/dev/tokens")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/dev/tokens outside dev mode: %d, want 404", resp.StatusCode)
	}
}

// TestMetricsWindows drives the gateway's clock across the minute window and
// midnight and checks every field against what the test did.
func TestMetricsWindows(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 23, 58, 0, 0, time.UTC)}
	e := newEnv(t, func(c *core.Config, _ *httpadapter.Options) {
		c.Clock = clock
		c.MaxMessagesPerMinute = 0
	})
	a := e.dial(t, token(t, "a", false))
	b := e.dial(t, token(t, "b", false))
	for range 3 {
		roundTrip(t, a, `{"type":"ping"}`)
	}
	roundTrip(t, b, `{"type":"subscribe","channel":"ch"}`)
	roundTrip(t, a, `{"type":"publish","channel":"ch","data":1}`)
	read(t, b) // the event
	want := map[string]float64{
		"active_connections": 2, "connections_today": 2,
		"messages_received": 5, "messages_sent": 6, // 5 replies + 1 event
		"messages_per_minute": 5, "avg_connection_duration": 0,
	}
	check := func(when string) {
		t.Helper()
		m := e.metrics(t)
		for k, v := range want {
			if num(m, k) != v {
				t.Fatalf("%s: %s = %v, want %v (all: %v)", when, k, m[k], v, m)
			}
		}
		ts, err := time.Parse(time.RFC3339, m["timestamp"].(string))
		if err != nil || !ts.Equal(clock.Now().Truncate(time.Second)) {
			t.Fatalf("%s: timestamp %v, want %v", when, m["timestamp"], clock.Now())
		}
	}
	check("start")

	clock.Set(time.Date(2026, 5, 1, 23, 58, 45, 0, time.UTC))
	a.Close(websocket.StatusNormalClosure, "")
	eventually(t, "a's disconnect", func() bool { return num(e.metrics(t), "active_connections") == 1 })
	want["active_connections"], want["avg_connection_duration"] = 1, 45
	check("after a closed at 45 s")

	clock.Set(time.Date(2026, 5, 1, 23, 59, 1, 0, time.UTC))
	want["messages_per_minute"] = 0
	check("a minute later")

	// Past midnight UTC: the day's figures start again; b is still open.
	clock.Set(time.Date(2026, 5, 2, 0, 0, 5, 0, time.UTC))
	want = map[string]float64{"active_connections": 1, "connections_today": 0, "messages_received": 0,
		"messages_sent": 0, "messages_per_minute": 0, "avg_connection_duration": 0}
	check("after midnight")
	roundTrip(t, b, `{"type":"ping"}`)
	want["messages_received"], want["messages_sent"], want["messages_per_minute"] = 1, 1, 1
	check("first message of the new day")

	status, body := e.admin(t, "GET", "/api/monitoring/websocket/active-connections/", "Bearer "+token(t, "root", true), "")
	if status != 200 || body["active_connections"] != 1.0 || len(body) != 1 {
		t.Fatalf("active-connections: %d %v", status, body)
	}
}

func TestTimeouts(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		e := newEnv(t, func(_ *core.Config, o *httpadapter.Options) {
			o.IdleTimeout = 300 * time.Millisecond
			o.PingInterval = 100 * time.Millisecond
		})
		c := e.dial(t, token(t, "idle", false))
		// Reading keeps answering pings; data messages keep it alive.
		go func() {
			for range 3 {
				time.Sleep(150 * time.Millisecond)
				c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`))
			}
		}()
		start := time.Now()
		var err error
		for err == nil {
			_, _, err = c.Read(tctx(t))
		}
		if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
			t.Fatalf("idle close: %v, want 1001", err)
		}
		if d := time.Since(start); d < 650*time.Millisecond {
			t.Fatalf("closed after %v although data arrived until 450ms", d)
		}
		eventually(t, "the disconnect", func() bool { return num(e.metrics(t), "active_connections") == 0 })
	})
	t.Run("max age", func(t *testing.T) {
		e := newEnv(t, func(_ *core.Config, o *httpadapter.Options) { o.MaxConnectionAge = 300 * time.Millisecond })
		c := e.dial(t, token(t, "old", false))
		_, _, err := c.Read(tctx(t))
		if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
			t.Fatalf("age close: %v, want 1001", err)
		}
	})
	t.Run("dead peer", func(t *testing.T) {
		e := newEnv(t, func(_ *core.Config, o *httpadapter.Options) { o.PingInterval = 100 * time.Millisecond })
		e.dial(t, token(t, "dead", false)) // never reads, so never answers pings
		eventually(t, "the dead peer to be dropped", func() bool { return num(e.metrics(t), "active_connections") == 0 })
	})
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	conns := []*websocket.Conn{e.dial(t, token(t, "s1", false)), e.dial(t, token(t, "s2", false))}
	errs := make(chan error, len(conns))
	for _, c := range conns {
		go func() {
			_, _, err := c.Read(tctx(t))
			errs <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range conns {
		if err := <-errs; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("client saw %v, want 1001", err)
		}
	}
	snap, err := e.store.Snapshot(context.Background(), time.Now(), time.Hour)
	if err != nil || snap.ActiveConnections != 0 || snap.ClosedToday != 2 {
		t.Fatalf("after shutdown: %+v %v; want every disconnect recorded", snap, err)
	}
	status, body, _ := e.refusal(t, e.ws+"?token="+token(t, "late", false), nil)
	if status != 503 {
		t.Fatalf("connect during shutdown: %d %v", status, body)
	}
}
