package httpadapter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

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
	bare := bareServer(true)
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

// BenchmarkIdleConnection reports the memory (Go heap and goroutine stacks,
// after a GC) that 1,000 idle connections hold, per connection, for a bare
// coder/websocket server and for wsgate. The client ends live in the same
// process and are the same for both, so the difference between the two is
// the difference between the servers.
func BenchmarkIdleConnection(b *testing.B) {
	const n = 1000
	bare := bareServer(false)
	defer bare.Close()
	e := newEnv(b, func(c *core.Config, _ *httpadapter.Options) { c.MaxConnectionsPerIP = 0 })
	for _, tc := range []struct{ name, url string }{
		{"bare-coder-websocket", "ws" + strings.TrimPrefix(bare.URL, "http")},
		{"wsgate", e.ws + "?token=" + token(b, "idle", false)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				before := inUse()
				conns := make([]*websocket.Conn, 0, n)
				for range n {
					c, _, err := websocket.Dial(context.Background(), tc.url, nil)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
				}
				time.Sleep(100 * time.Millisecond) // let every server goroutine park
				b.ReportMetric(float64(inUse()-before)/n, "bytes/conn")
				for _, c := range conns {
					c.CloseNow()
				}
				time.Sleep(200 * time.Millisecond) // let the server side finish closing
			}
		})
	}
}

// bareServer is the baseline: a coder/websocket server that reads every
// message and, when pong is set, answers it with {"type":"pong"}.
func bareServer(pong bool) *httptest.Server {
	reply := []byte(`{"type":"pong"}`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
			if pong {
				if err := c.Write(context.Background(), websocket.MessageText, reply); err != nil {
					return
				}
			}
		}
	}))
}

// inUse is the heap and stack memory in use after two GCs (the second
// empties sync.Pool's victim cache, which coder/websocket's buffers use).
func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
