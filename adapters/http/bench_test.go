package httpadapter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
)

// BenchmarkRoundTrip is the hot path over a real loopback socket, one
// message in and one reply out, for a bare coder/websocket server that
// answers {"type":"pong"} and for wsgate (memory store, limits off). Client
// and server share the process, so ns/op covers both ends; compare the two
// sub-benchmarks with each other.
func BenchmarkRoundTrip(b *testing.B) {
	pong := []byte(`{"type":"pong"}`)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
			if err := c.Write(context.Background(), websocket.MessageText, pong); err != nil {
				return
			}
		}
	}))
	defer bare.Close()
	e := newEnv(b, func(c *core.Config, _ *httpadapter.Options) {
		c.MaxMessagesPerMinute, c.MaxConnectionsPerIP = 0, 0
	})
	for _, tc := range []struct{ name, url string }{
		{"bare-coder-websocket", "ws" + strings.TrimPrefix(bare.URL, "http")},
		{"wsgate", e.ws + "?token=" + token(b, "bench", false)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, tc.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			ping := []byte(`{"type":"ping"}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageText, ping); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
