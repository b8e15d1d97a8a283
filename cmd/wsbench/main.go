// Command wsbench is wsgate's load tool. It measures, against a server in
// another process on loopback:
//
//   - echo: the hot path, one message in and one reply out, over many
//     connections: messages per second and the server's CPU per message
//     (from /proc/PID/stat);
//   - idle: the server's resident memory per idle connection (from
//     /proc/PID/status);
//   - fanout: the latency from a publish to its delivery at every
//     subscriber (wsgate only).
//
// `wsbench bare` runs the baseline: a bare coder/websocket server that
// answers every text message with {"type":"pong"}.
//
//	wsbench bare -addr 127.0.0.1:9001
//	wsbench echo -url ws://127.0.0.1:9001/ws -pid PID -conns 50 -duration 5s
//
// Every run is bounded by its -duration and targets loopback only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "bare":
		err = runBare(os.Args[2:])
	case "echo", "idle", "fanout":
		err = runClient(os.Args[1], os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: wsbench bare|echo|idle|fanout [flags]")
	os.Exit(2)
}

// runBare serves the baseline: accept, then answer every message.
func runBare(args []string) error {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9001", "listen address (loopback)")
	fs.Parse(args)
	pong := []byte(`{"type":"pong"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			_, _, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, websocket.MessageText, pong); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: *addr, Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Printf("bare coder/websocket server on %s\n", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type clientFlags struct {
	url      string
	pid      int
	conns    int
	duration time.Duration
	secret   string
	subs     int
}

func runClient(mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	var f clientFlags
	fs.StringVar(&f.url, "url", "ws://127.0.0.1:8080/ws", "server WebSocket URL (loopback only)")
	fs.IntVar(&f.pid, "pid", 0, "server process id, for CPU and memory readings")
	fs.IntVar(&f.conns, "conns", 50, "connections")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long to load the server")
	fs.StringVar(&f.secret, "secret", "", "HS256 secret to mint tokens with (wsgate)")
	fs.IntVar(&f.subs, "subs", 100, "fanout: subscribers")
	fs.Parse(args)
	u, err := url.Parse(f.url)
	if err != nil || !isLoopback(u.Hostname()) {
		return fmt.Errorf("-url must be a ws:// URL on loopback, got %q", f.url)
	}
	switch mode {
	case "echo":
		return echo(f)
	case "idle":
		return idle(f)
	default:
		return fanout(f)
	}
}

func isLoopback(h string) bool {
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

func (f clientFlags) dial(ctx context.Context, sub string) (*websocket.Conn, error) {
	u := f.url
	if f.secret != "" {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": sub, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(f.secret))
		if err != nil {
			return nil, err
		}
		u += "?token=" + tok
	}
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", sub, err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// cpuTicks is the process's user+system CPU time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return ut + st, nil
}

const ticksPerSecond = 100 // USER_HZ on Linux

func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strconv.ParseInt(strings.Fields(l)[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

func dialAll(ctx context.Context, f clientFlags, n int, prefix string) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		c, err := f.dial(ctx, fmt.Sprintf("%s%d", prefix, i))
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// echo drives ping/pong round trips on every connection for the duration.
func echo(f clientFlags) error {
	ctx, cancel := context.WithTimeout(context.Background(), f.duration+30*time.Second)
	defer cancel()
	conns, err := dialAll(ctx, f, f.conns, "echo")
	if err != nil {
		return err
	}
	defer closeAll(conns)
	ping := []byte(`{"type":"ping"}`)
	var n atomic.Int64
	var failed atomic.Value
	stop := time.Now().Add(f.duration)
	cpu0, _ := cpuTicks(f.pid)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := c.Write(ctx, websocket.MessageText, ping); err != nil {
					failed.Store(err)
					return
				}
				if _, _, err := c.Read(ctx); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := cpuTicks(f.pid)
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	msgs := n.Load()
	out := map[string]any{
		"mode": "echo", "conns": f.conns, "messages": msgs,
		"msgs_per_sec": float64(msgs) / elapsed.Seconds(),
	}
	if f.pid > 0 && msgs > 0 {
		out["server_cpu_us_per_msg"] = float64(cpu1-cpu0) / ticksPerSecond * 1e6 / float64(msgs)
	}
	return report(out)
}

// idle opens connections and reads the server's memory per connection.
func idle(f clientFlags) error {
	if f.pid == 0 {
		return errors.New("idle needs -pid")
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.duration+60*time.Second)
	defer cancel()
	before, err := rssKB(f.pid)
	if err != nil {
		return err
	}
	conns, err := dialAll(ctx, f, f.conns, "idle")
	if err != nil {
		return err
	}
	defer closeAll(conns)
	time.Sleep(f.duration)
	after, err := rssKB(f.pid)
	if err != nil {
		return err
	}
	return report(map[string]any{
		"mode": "idle", "conns": f.conns,
		"server_rss_kb_before": before, "server_rss_kb_after": after,
		"bytes_per_idle_conn": float64(after-before) * 1024 / float64(f.conns),
	})
}

// fanout subscribes f.subs connections to one channel and measures, per
// publish, the time until the last subscriber received the event.
func fanout(f clientFlags) error {
	ctx, cancel := context.WithTimeout(context.Background(), f.duration+60*time.Second)
	defer cancel()
	subs, err := dialAll(ctx, f, f.subs, "sub")
	if err != nil {
		return err
	}
	defer closeAll(subs)
	sub := []byte(`{"type":"subscribe","channel":"bench"}`)
	for _, c := range subs {
		if err := c.Write(ctx, websocket.MessageText, sub); err != nil {
			return err
		}
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
	pub, err := f.dial(ctx, "publisher")
	if err != nil {
		return err
	}
	defer pub.CloseNow()
	var lat []time.Duration
	stop := time.Now().Add(f.duration)
	for i := 0; time.Now().Before(stop) && i < 55; i++ { // stays under the default 60 messages per minute
		start := time.Now()
		if err := pub.Write(ctx, websocket.MessageText, []byte(`{"type":"publish","channel":"bench","data":`+strconv.Itoa(i)+`}`)); err != nil {
			return err
		}
		var wg sync.WaitGroup
		for _, c := range subs {
			wg.Go(func() { c.Read(ctx) })
		}
		wg.Wait()
		lat = append(lat, time.Since(start))
		var reply map[string]any
		_, b, err := pub.Read(ctx)
		if err != nil {
			return err
		}
		json.Unmarshal(b, &reply)
		if reply["delivered"] != float64(f.subs) {
			return fmt.Errorf("publish %d delivered %v, want %d", i, reply["delivered"], f.subs)
		}
	}
	slices.Sort(lat)
	return report(map[string]any{
		"mode": "fanout", "subscribers": f.subs, "publishes": len(lat),
		"median_ms": ms(lat[len(lat)/2]), "p99_ms": ms(lat[len(lat)*99/100]),
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func report(v map[string]any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}
