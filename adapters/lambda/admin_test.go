package lambdaadapter_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	lambdaadapter "github.com/wsgate/wsgate/adapters/lambda"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// adminEvent is the captured HTTP API v2 request with method, path and
// an Authorization header (none when empty). Its routeKey stays the
// fixture's "$default": the handler routes on method and path.
func adminEvent(t *testing.T, method, path, authorization, body string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	fixture(t, "apigw-v2-request-no-authorizer.json", &ev)
	ev.RawPath = path
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = path
	if authorization != "" {
		ev.Headers["authorization"] = authorization
	}
	ev.Body = body
	return ev
}

// TestAdmin: the admin routes' status codes and bodies, as the local
// server answers them.
func TestAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, sender := memory.New(), newSender()
	ws, err := lambdaadapter.NewWebSocket(config(t, st, sender, nil), lambdaadapter.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a, err := lambdaadapter.NewAdmin(config(t, st, sender, nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	// One open connection, subscribed to "news", one message received.
	e := &wsEnv{h: ws, store: st, sender: sender}
	e.connect(t, "A=", "alice")
	e.send(t, "A=", `{"type":"subscribe","channel":"news"}`)

	admin, user := "Bearer "+token(t, "root", true), "Bearer "+token(t, "alice", false)
	const metrics = "/api/monitoring/websocket/metrics/"
	cases := []struct {
		name                     string
		method, path, auth, body string
		status                   int
		code                     string // error code, or "" for success
		allow                    string
	}{
		{"metrics no token", "GET", metrics, "", "", 401, "unauthorized", ""},
		{"metrics bad token", "GET", metrics, "Bearer nope", "", 401, "unauthorized", ""},
		{"metrics other scheme", "GET", metrics, "Token " + token(t, "root", true), "", 401, "unauthorized", ""},
		{"metrics non-admin", "GET", metrics, user, "", 403, "forbidden", ""},
		{"metrics", "GET", metrics, admin, "", 200, "", ""},
		{"metrics no slash", "GET", "/api/monitoring/websocket/metrics", admin, "", 200, "", ""},
		{"metrics POST", "POST", metrics, admin, "", 405, "method_not_allowed", "GET"},
		{"active", "GET", "/api/monitoring/websocket/active-connections/", admin, "", 200, "", ""},
		{"active no slash", "GET", "/api/monitoring/websocket/active-connections", admin, "", 200, "", ""},
		{"active non-admin", "GET", "/api/monitoring/websocket/active-connections", user, "", 403, "forbidden", ""},
		{"publish", "POST", "/api/publish", admin, `{"channel":"news","data":{"n":1}}`, 200, "", ""},
		{"publish no token", "POST", "/api/publish", "", `{"channel":"news","data":1}`, 401, "unauthorized", ""},
		{"publish GET", "GET", "/api/publish", admin, "", 405, "method_not_allowed", "POST"},
		{"publish bad channel", "POST", "/api/publish", admin, `{"channel":"no spaces","data":1}`, 400, "bad_request", ""},
		{"publish not an object", "POST", "/api/publish", admin, `[1]`, 400, "bad_request", ""},
		{"publish no data", "POST", "/api/publish", admin, `{"channel":"news"}`, 400, "bad_request", ""},
		{"publish trailing slash", "POST", "/api/publish/", admin, `{"channel":"news","data":1}`, 404, "not_found", ""},
		{"unknown path", "GET", "/", admin, "", 404, "not_found", ""},
	}
	for _, tc := range cases {
		resp, err := a.Handle(ctx, adminEvent(t, tc.method, tc.path, tc.auth, tc.body))
		if err != nil {
			t.Fatalf("%s: Handle returned an error: %v", tc.name, err)
		}
		if resp.StatusCode != tc.status || resp.Headers["Content-Type"] != "application/json" || resp.Headers["Allow"] != tc.allow {
			t.Errorf("%s: %d %v %s, want %d (Allow %q)", tc.name, resp.StatusCode, resp.Headers, resp.Body, tc.status, tc.allow)
			continue
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Errorf("%s: body %q: %v", tc.name, resp.Body, err)
			continue
		}
		if tc.code != "" && (body["error"] != tc.code || body["message"] == "") {
			t.Errorf("%s: body %s, want error %s", tc.name, resp.Body, tc.code)
		}
	}

	// The figures: alice's connection, her subscribe, the admin publish.
	resp, _ := a.Handle(ctx, adminEvent(t, "GET", metrics, admin, ""))
	var m core.Metrics
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatal(err)
	}
	if m.ActiveConnections != 1 || m.ConnectionsToday != 1 || m.MessagesReceived != 1 || m.MessagesSent != 2 || m.MessagesPerMinute != 1 {
		t.Errorf("metrics %s", resp.Body)
	}
	if ts, err := time.Parse(time.RFC3339, m.Timestamp); err != nil || ts.Location() != time.UTC {
		t.Errorf("timestamp %q", m.Timestamp)
	}
	resp, _ = a.Handle(ctx, adminEvent(t, "GET", "/api/monitoring/websocket/active-connections/", admin, ""))
	jsonEqual(t, resp.Body, `{"active_connections":1}`)

	// The admin publish reached alice as an event from "server".
	jsonEqual(t, reply(t, sender.take(), "A="), `{"type":"event","channel":"news","data":{"n":1},"from":"server"}`)
}

// TestAdminEventForms: a base64 body, a named stage prefixing the path and
// a route key other than $default are all handled.
func TestAdminEventForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, err := lambdaadapter.NewAdmin(config(t, memory.New(), newSender(), nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	admin := "Bearer " + token(t, "root", true)

	ev := adminEvent(t, "POST", "/api/publish", admin, base64.StdEncoding.EncodeToString([]byte(`{"channel":"c","data":true}`)))
	ev.IsBase64Encoded = true
	ev.RouteKey, ev.RequestContext.RouteKey = "POST /api/publish", "POST /api/publish"
	if resp, _ := a.Handle(ctx, ev); resp.StatusCode != 200 || resp.Body != "{\"delivered\":0}\n" {
		t.Errorf("base64 publish: %d %q", resp.StatusCode, resp.Body)
	}

	ev = adminEvent(t, "GET", "/v1/api/monitoring/websocket/metrics", admin, "")
	ev.RequestContext.Stage = "v1"
	ev.RouteKey, ev.RequestContext.RouteKey = "ANY /{proxy+}", "ANY /{proxy+}"
	if resp, _ := a.Handle(ctx, ev); resp.StatusCode != 200 {
		t.Errorf("stage-prefixed path: %d %s", resp.StatusCode, resp.Body)
	}

	ev = adminEvent(t, "GET", "/api/monitoring/websocket/metrics", "", "")
	ev.Headers["Authorization"] = "Bearer " + token(t, "alice", false)
	if resp, _ := a.Handle(ctx, ev); resp.StatusCode != 403 {
		t.Errorf("Authorization in upper case: %d, want 403", resp.StatusCode)
	}
}

// TestAdminStoreDown: a store that cannot be reached answers 503.
func TestAdminStoreDown(t *testing.T) {
	t.Parallel()
	a, err := lambdaadapter.NewAdmin(config(t, snapshotDown{memory.New()}, newSender(), nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := a.Handle(context.Background(), adminEvent(t, "GET", "/api/monitoring/websocket/metrics/", "Bearer "+token(t, "root", true), ""))
	if resp.StatusCode != 503 {
		t.Fatalf("%d %s, want 503", resp.StatusCode, resp.Body)
	}
	jsonEqual(t, resp.Body, `{"error":"unavailable","message":"service unavailable, try again"}`)
}

// snapshotDown is a memory store whose metrics cannot be read.
type snapshotDown struct{ *memory.Store }

func (snapshotDown) Snapshot(context.Context, time.Time, time.Duration) (core.Snapshot, error) {
	return core.Snapshot{}, core.ErrUnavailable
}
