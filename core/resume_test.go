package core_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// lookups counts Lookup calls.
type lookups struct {
	*memory.Store
	n atomic.Int32
}

func (l *lookups) Lookup(ctx context.Context, id string) (core.Conn, error) {
	l.n.Add(1)
	return l.Store.Lookup(ctx, id)
}

// TestResume: a resumed session reads its record only for the messages
// that need it, and reports a connection the store does not know.
func TestResume(t *testing.T) {
	ctx := context.Background()
	st := &lookups{Store: memory.New()}
	a := auth(t, core.AuthConfig{})
	gw, err := core.New(core.Config{Auth: a, Store: st, Sender: inline{}, MaxMessagesPerMinute: 60})
	if err != nil {
		t.Fatal(err)
	}
	gw.UseStoreRates(st)
	tok := sign(t, jwt.MapClaims{"sub": "lambda-user", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := gw.Connect(ctx, core.ConnectRequest{ID: "L1", Token: tok, IP: "192.0.2.9"}); err != nil {
		t.Fatal(err)
	}
	frame := func(s *core.Session, msg string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(gw.Message(ctx, s, []byte(msg)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	s := gw.Resume(ctx, "L1")
	if got := frame(s, `{"type":"ping"}`); got["type"] != "pong" || st.n.Load() != 0 {
		t.Fatalf("ping: %v after %d lookups, want pong and none", got, st.n.Load())
	}
	if got := frame(s, `{"type":"whoami"}`); got["user"] != "lambda-user" || st.n.Load() != 1 {
		t.Fatalf("whoami: %v after %d lookups", got, st.n.Load())
	}
	if got := frame(s, `{"type":"subscribe","channel":"user:lambda-user"}`); got["type"] != "subscribed" || st.n.Load() != 1 {
		t.Fatalf("subscribe: %v after %d lookups, want the record read once", got, st.n.Load())
	}
	if s.Unknown() {
		t.Fatal("a known connection reported unknown")
	}
	ghost := gw.Resume(ctx, "ghost")
	if got := frame(ghost, `{"type":"ping","id":"g"}`); got["code"] != "unavailable" || got["id"] != "g" || !ghost.Unknown() {
		t.Fatalf("ping from an unknown connection: %v, unknown %v", got, ghost.Unknown())
	}
}
