package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestDynamoDBStore runs two real servers with WSGATE_STORE=dynamodb on
// one new table: the first creates it, a publish on one reaches a
// subscriber on the other through its advertised @connections API, and the
// counts a server batches are written when it shuts down.
func TestDynamoDBStore(t *testing.T) {
	t.Parallel()
	const secret = "dynamo-shared-secret-0123456789ab"
	table := fmt.Sprintf("local_%d", time.Now().UnixNano())
	env := []string{"WSGATE_STORE=dynamodb", "WSGATE_DYNAMODB_ENDPOINT=" + dynamoEndpoint, "WSGATE_TABLE=" + table,
		"WSGATE_JWT_SECRET=" + secret, "AWS_EC2_METADATA_DISABLED=true", "HOME=" + t.TempDir()}
	a := start(t, env)
	b := start(t, env)
	mint := func(sub string, admin bool) string {
		args := []string{"token", "-sub", sub, "-jwt-secret", secret}
		if admin {
			args = append(args, "-admin")
		}
		out, err := exec.Command(binary, args...).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(p *proc, sub string) *websocket.Conn {
		// The table is created in the background: until then connects get 503.
		for {
			c, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws?token="+mint(sub, false), nil)
			if err == nil {
				t.Cleanup(func() { c.CloseNow() })
				return c
			}
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || ctx.Err() != nil {
				t.Fatalf("dial %s: %v", sub, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	roundTrip := func(c *websocket.Conn, msg string) map[string]any {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	sub := dial(a, "subscriber")
	if got := roundTrip(sub, `{"type":"subscribe","channel":"news"}`); got["type"] != "subscribed" {
		t.Fatalf("subscribe: %v", got)
	}
	pub := dial(b, "publisher")
	if got := roundTrip(pub, `{"type":"publish","channel":"news","data":"across"}`); got["delivered"] != 1.0 {
		t.Fatalf("publish on the other server: %v", got)
	}
	_, ev, err := sub.Read(ctx)
	if err != nil || !strings.Contains(string(ev), `"data":"across"`) {
		t.Fatalf("event on the first server: %s %v", ev, err)
	}

	// A shuts down gracefully: its connection's disconnect and its batched
	// counts reach the table, and B reads them.
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.exit(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+b.addr+"/api/monitoring/websocket/metrics/", nil)
	req.Header.Set("Authorization", "Bearer "+mint("ops", true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]float64
	json.NewDecoder(resp.Body).Decode(&m)
	// received: subscribe, publish; sent: their 2 replies and the event.
	if resp.StatusCode != 200 || m["active_connections"] != 1 || m["connections_today"] != 2 ||
		m["messages_received"] != 2 || m["messages_sent"] != 3 {
		t.Fatalf("metrics on B after A's shutdown: %d %v", resp.StatusCode, m)
	}
}
