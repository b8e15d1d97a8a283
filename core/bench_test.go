package core_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/memory"
)

// inline counts deliveries as an in-process hand-off, like the local hub.
type inline struct{}

func (inline) Send(context.Context, core.Target, []byte) error { return nil }
func (inline) Holds(core.Target) bool                          { return true }

func benchGateway(b *testing.B, limit int) (*core.Gateway, string) {
	key := []byte("bench-secret-0123456789abcdef012")
	auth, _ := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: func(*jwt.Token) (any, error) { return key, nil }, Methods: []string{"HS256"},
	})
	gw, err := core.New(core.Config{Auth: auth, Store: memory.New(), Sender: inline{}, MaxMessagesPerMinute: limit, ClientPublish: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bench", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	return gw, tok
}

// BenchmarkMessage is the core's share of the hot path: one inbound message
// parsed, rate-limited, counted and answered.
func BenchmarkMessage(b *testing.B) {
	for _, tc := range []struct {
		name, msg string
		limit     int
	}{
		{"ping", `{"type":"ping"}`, 0},
		{"ping-with-id", `{"type":"ping","id":"req-123"}`, 0},
		{"ping-rate-limited-window", `{"type":"ping"}`, 1 << 30},
	} {
		b.Run(tc.name, func(b *testing.B) {
			gw, tok := benchGateway(b, tc.limit)
			ctx := context.Background()
			s, err := gw.Connect(ctx, core.ConnectRequest{Token: tok, IP: "192.0.2.1"})
			if err != nil {
				b.Fatal(err)
			}
			msg := []byte(tc.msg)
			b.ReportAllocs()
			for b.Loop() {
				gw.Message(ctx, s, msg)
			}
		})
	}
}

// BenchmarkFanout publishes to n in-process subscribers.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			gw, tok := benchGateway(b, 0)
			ctx := context.Background()
			for i := range n {
				s, err := gw.Connect(ctx, core.ConnectRequest{Token: tok, IP: fmt.Sprint("192.0.2.", i%250)})
				if err != nil {
					b.Fatal(err)
				}
				gw.Message(ctx, s, []byte(`{"type":"subscribe","channel":"room"}`))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gw.Publish(ctx, "room", []byte(`{"n":1}`)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
