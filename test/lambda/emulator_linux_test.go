//go:build linux

package lambdatest

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/core"
)

// TestEmulator runs both bootstrap binaries, built as `sam build` builds
// them (for this machine's architecture), under the AWS Lambda Runtime
// Interface Emulator against a DynamoDB API (dynalite), with
// WSGATE_APIGW_ENDPOINT pointed at a capture server playing API Gateway's
// management API, and feeds them the events/ files with tokens and ids
// filled in. A local server on the same table shows in the admin
// Lambda's metrics and exchanges events with the Lambda's connections.
func TestEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the Lambdas; skipped with -short")
	}
	t.Parallel()
	rie := rieBinary(t)
	endpoint := dynamoEndpoint(t)
	table := newTable(t, endpoint)
	store := openStore(t, endpoint, table)
	capture := newCaptureServer(t, "prod")
	dirs := buildBootstraps(t)

	env := []string{
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "none"),
		"WSGATE_JWT_SECRET=" + testSecret,
		"WSGATE_TABLE=" + table,
		"WSGATE_DYNAMODB_ENDPOINT=" + endpoint,
		"WSGATE_APIGW_ENDPOINT=" + capture.url,
		"WSGATE_MAX_CONNECTIONS_PER_IP=2",
		"WSGATE_MAX_CONNECTS_PER_HOUR=3",
	}
	ws := startEmulator(t, rie, "WebSocketFunction", dirs["WebSocketFunction"], env)
	admin := startEmulator(t, rie, "AdminFunction", dirs["AdminFunction"], env)

	const ipX = "198.51.100.7"
	connect := func(id, ip string, replace map[string]string, mutate func(*events.APIGatewayWebsocketProxyRequest)) wsResponse {
		t.Helper()
		ev := eventFile(t, "connect.json", replace, func(ev *events.APIGatewayWebsocketProxyRequest) {
			ev.RequestContext.ConnectionID = id
			ev.RequestContext.Identity.SourceIP = ip
			if mutate != nil {
				mutate(ev)
			}
		})
		var resp wsResponse
		ws.invoke(t, ev, &resp)
		return resp
	}
	withToken := func(sub string) map[string]string {
		return map[string]string{"REPLACE_WITH_A_JWT": token(t, sub, false)}
	}
	send := func(file, id string) []captured {
		t.Helper()
		ev := eventFile(t, file, nil, func(ev *events.APIGatewayWebsocketProxyRequest) { ev.RequestContext.ConnectionID = id })
		var resp wsResponse
		ws.invoke(t, ev, &resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s from %s: status %d, want 200", file, id, resp.StatusCode)
		}
		return capture.take()
	}
	refused := func(resp wsResponse, status int, code string) {
		t.Helper()
		if resp.StatusCode != status || field(t, resp.Body, "error") != code || field(t, resp.Body, "message") == "" {
			t.Fatalf("connect answered %d %s, want %d %s", resp.StatusCode, resp.Body, status, code)
		}
	}

	// Refusals: the placeholder is no token, a foreign Origin, the per-IP
	// connection limit.
	refused(connect("R1=", ipX, nil, nil), 401, "unauthorized")
	refused(connect("R2=", ipX, withToken("alice"), func(ev *events.APIGatewayWebsocketProxyRequest) {
		ev.Headers["Origin"] = "https://evil.example"
	}), 403, "forbidden_origin")
	for _, c := range []struct{ id, sub string }{{"A=", "alice"}, {"B=", "bob"}} {
		if resp := connect(c.id, ipX, withToken(c.sub), nil); resp.StatusCode != 200 {
			t.Fatalf("connect %s: %d %s", c.id, resp.StatusCode, resp.Body)
		}
	}
	refused(connect("C=", ipX, withToken("carol"), nil), 429, "too_many_connections")

	// Messages: replies reach the capture server, ids echoed.
	if got := to(t, send("default-ping.json", "A="), "A="); canon(t, got) != `{"id":"1","type":"pong"}` {
		t.Errorf("ping reply %s", got)
	}
	if got := to(t, send("default-subscribe.json", "A="), "A="); canon(t, got) != `{"channel":"news","id":"2","type":"subscribed"}` {
		t.Errorf("subscribe reply %s", got)
	}
	got := send("default-publish.json", "B=")
	if e := to(t, got, "A="); canon(t, e) != `{"channel":"news","data":{"text":"hello"},"from":"bob","type":"event"}` {
		t.Errorf("event to A: %s", e)
	}
	if r := to(t, got, "B="); canon(t, r) != `{"channel":"news","delivered":1,"id":"3","type":"published"}` {
		t.Errorf("publish reply %s", r)
	}

	// A 410 from the management API cleans the connection up.
	capture.setGone("A=")
	got = send("default-publish.json", "B=")
	if r := to(t, got, "B="); field(t, r, "delivered") != 0.0 {
		t.Errorf("publish to a gone subscriber: %s, want delivered 0", r)
	}
	if len(got) != 2 || !got[0].Gone && !got[1].Gone {
		t.Errorf("captured %+v, want the Gone attempt to A= and the reply to B=", got)
	}
	if _, err := store.Lookup(tctx(t), "A="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("A= after a 410: Lookup = %v, want not found", err)
	}

	// $disconnect releases B.
	ev := eventFile(t, "disconnect.json", nil, func(ev *events.APIGatewayWebsocketProxyRequest) { ev.RequestContext.ConnectionID = "B=" })
	var dresp wsResponse
	ws.invoke(t, ev, &dresp)
	if dresp.StatusCode != 200 {
		t.Errorf("$disconnect: %d", dresp.StatusCode)
	}
	if _, err := store.Lookup(tctx(t), "B="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("B= after $disconnect: Lookup = %v, want not found", err)
	}

	// The third connect of the hour from ipX is the last: the fourth is
	// refused with Retry-After, though only one connection is open.
	if resp := connect("D=", ipX, withToken("dora"), nil); resp.StatusCode != 200 {
		t.Fatalf("connect D: %d %s", resp.StatusCode, resp.Body)
	}
	resp := connect("E=", ipX, withToken("eve"), nil)
	refused(resp, 429, "too_many_connects")
	if ra, err := strconv.Atoi(resp.Headers["Retry-After"]); err != nil || ra < 1 || ra > 3600 {
		t.Errorf("Retry-After %q, want whole seconds in 1..3600", resp.Headers["Retry-After"])
	}
	send("default-subscribe.json", "D=")

	// A local server on the same table: its connection counts in the admin
	// Lambda's metrics, and events cross between the two transports.
	local := startLocalServer(t, core.Config{
		Auth: hsAuth(t), Store: store, Logger: quiet,
		MaxConnectionsPerIP: 2, MaxConnectsPerHour: 3, MaxMessagesPerMinute: 60, ClientPublish: true,
	})
	lou := local.dial(t, token(t, "lou", false))
	lou.request(t, `{"type":"subscribe","channel":"news","id":1}`)

	adminEvent := func(tok string, mutate func(*events.APIGatewayV2HTTPRequest)) adminResponse {
		t.Helper()
		ev := eventFile(t, "admin-metrics.json", map[string]string{"REPLACE_WITH_AN_ADMIN_JWT": tok}, mutate)
		var resp adminResponse
		admin.invoke(t, ev, &resp)
		return resp
	}
	if r := adminEvent("REPLACE_WITH_AN_ADMIN_JWT", nil); r.StatusCode != 401 || field(t, r.Body, "error") != "unauthorized" {
		t.Errorf("metrics with the placeholder token: %d %s, want 401", r.StatusCode, r.Body)
	}
	if r := adminEvent(token(t, "alice", false), nil); r.StatusCode != 403 || field(t, r.Body, "error") != "forbidden" {
		t.Errorf("metrics with a user token: %d %s, want 403", r.StatusCode, r.Body)
	}
	r := adminEvent(token(t, "root", true), nil)
	if r.StatusCode != 200 || r.Headers["Content-Type"] != "application/json" {
		t.Fatalf("metrics as admin: %d %s", r.StatusCode, r.Body)
	}
	// D on API Gateway and lou on the local server are open; A, B, D and
	// lou were accepted today.
	if a, c := field(t, r.Body, "active_connections"), field(t, r.Body, "connections_today"); a != 2.0 || c != 4.0 {
		t.Errorf("metrics %s: want active_connections 2, connections_today 4", r.Body)
	}
	for _, f := range []string{"messages_sent", "messages_received", "avg_connection_duration", "messages_per_minute", "timestamp"} {
		if field(t, r.Body, f) == nil {
			t.Errorf("metrics %s: no %s", r.Body, f)
		}
	}

	// POST /api/publish through the admin Lambda reaches both transports.
	r = adminEvent(token(t, "root", true), func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RequestContext.HTTP.Method = "POST"
		ev.RawPath, ev.RequestContext.HTTP.Path = "/api/publish", "/api/publish"
		ev.Body = `{"channel":"news","data":{"n":1}}`
	})
	if r.StatusCode != 200 || canon(t, r.Body) != `{"delivered":2}` {
		t.Errorf("admin publish: %d %s, want 200 {\"delivered\":2}", r.StatusCode, r.Body)
	}
	want := `{"channel":"news","data":{"n":1},"from":"server","type":"event"}`
	if e := to(t, capture.take(), "D="); canon(t, e) != want {
		t.Errorf("admin event to D: %s", e)
	}
	if e := lou.read(t); canon(t, e) != want {
		t.Errorf("admin event to lou: %s", e)
	}
	// A client of the local server publishes; D on API Gateway receives it.
	lou.request(t, `{"type":"publish","channel":"news","data":"from the edge","id":2}`)
	if e := to(t, capture.take(), "D="); canon(t, e) != `{"channel":"news","data":"from the edge","from":"lou","type":"event"}` {
		t.Errorf("local publish to D: %s", e)
	}

	// A binary message breaks the protocol: the Lambda closes D through
	// DeleteConnection and releases it, as the local server closes with 1003.
	ev = eventFile(t, "default-ping.json", nil, func(ev *events.APIGatewayWebsocketProxyRequest) {
		ev.RequestContext.ConnectionID = "D="
		ev.IsBase64Encoded = true
		ev.Body = "AAEC"
	})
	var bresp wsResponse
	ws.invoke(t, ev, &bresp)
	if got := capture.take(); bresp.StatusCode != 200 || len(got) != 1 || !got[0].Deleted || got[0].ID != "D=" {
		t.Errorf("binary message: status %d, captured %+v; want one DeleteConnection of D=", bresp.StatusCode, got)
	}
	if _, err := store.Lookup(tctx(t), "D="); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("D= after a binary message: Lookup = %v, want not found", err)
	}
}
