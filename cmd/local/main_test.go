package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/dynalite"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsgate-local")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wsgate-local")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	ep, stop, err := dynalite.Endpoint()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(1)
	}
	dynamoEndpoint = ep
	code := m.Run()
	stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dynamoEndpoint is a real DynamoDB-API server for WSGATE_STORE=dynamodb.
var dynamoEndpoint string

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running cmd/local.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bufio.Scanner
	lines  []string
	done   chan error
}

// start runs the binary with env and waits for its listening line.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "WSGATE_ADDR=" + addr}, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: addr, stdout: bufio.NewScanner(out), done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		for p.stdout.Scan() {
			lines <- p.stdout.Text()
		}
		close(lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	ready := "DEV ONLY admin token" // dev mode prints tokens last
	for _, e := range env {
		if strings.HasPrefix(e, "WSGATE_JWT_SECRET=") {
			ready = "wsgate listening"
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("server exited early; output: %v", p.lines)
			}
			p.lines = append(p.lines, l)
			if strings.Contains(l, ready) {
				go func() {
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("server did not start; output: %v", p.lines)
		}
	}
}

func (p *proc) devToken(t *testing.T, kind string) string {
	t.Helper()
	for _, l := range p.lines {
		if strings.Contains(l, "DEV ONLY "+kind+" token:") {
			f := strings.Fields(l)
			return f[len(f)-1]
		}
	}
	t.Fatalf("no %s token printed: %v", kind, p.lines)
	return ""
}

func (p *proc) exit(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit")
	}
	return -1
}

func TestBadSettingExits2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"WSGATE_STORE=redis"}, nil, "WSGATE_STORE"},
		{nil, []string{"-store", "redis"}, "WSGATE_STORE"},
		{[]string{"WSGATE_TRUSTED_PROXIES=10.0.0.0/40"}, nil, "WSGATE_TRUSTED_PROXIES"},
		{[]string{"WSGATE_MAX_MESSAGES_PER_MINUTE=-3"}, nil, "WSGATE_MAX_MESSAGES_PER_MINUTE"},
		{nil, []string{"-max-connections-per-ip=-1"}, "WSGATE_MAX_CONNECTIONS_PER_IP"},
		{[]string{"WSGATE_JWT_SECRET=a", "WSGATE_JWT_PUBLIC_KEY=/nonexistent"}, nil, "WSGATE_JWT_SECRET"},
		{[]string{"WSGATE_JWT_PUBLIC_KEY=/nonexistent.pem"}, nil, "WSGATE_JWT_PUBLIC_KEY"},
		{[]string{"WSGATE_IDLE_TIMEOUT=10"}, nil, "WSGATE_IDLE_TIMEOUT"},
	}
	for _, tc := range tests {
		cmd := exec.Command(binary, tc.args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "WSGATE_ADDR=" + freeAddr(t)}, tc.env...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v %v: exit %v, want 2; output %q", tc.env, tc.args, err, out)
			continue
		}
		first := strings.SplitN(string(out), "\n", 2)[0]
		if !strings.Contains(first, tc.want) {
			t.Errorf("%v %v: first line %q does not name %s", tc.env, tc.args, first, tc.want)
		}
	}
}

func TestDevModeAndGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := start(t, nil)
			user, admin := p.devToken(t, "user"), p.devToken(t, "admin")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws?token="+user, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"whoami","id":1}`)); err != nil {
				t.Fatal(err)
			}
			_, b, err := c.Read(ctx)
			if err != nil || !strings.Contains(string(b), `"user":"dev-user"`) {
				t.Fatalf("whoami with the printed token: %s %v", b, err)
			}
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/monitoring/websocket/metrics/", nil)
			req.Header.Set("Authorization", "Bearer "+admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if resp.StatusCode != 200 || m["active_connections"] != 1.0 {
				t.Fatalf("metrics with the printed admin token: %d %v", resp.StatusCode, m)
			}
			p.cmd.Process.Signal(sig)
			_, _, err = c.Read(ctx)
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("client saw %v at shutdown, want 1001", err)
			}
			if code := p.exit(t); code != 0 {
				t.Fatalf("exit status %d after %v, want 0", code, sig)
			}
		})
	}
}

func TestTokenSubcommand(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "token", "-sub", "alice", "-admin", "-ttl", "5m", "-jwt-secret", "shared-secret")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(out))
	p := start(t, []string{"WSGATE_JWT_SECRET=shared-secret"})
	if strings.Contains(strings.Join(p.lines, "\n"), "DEV ONLY") {
		t.Fatalf("dev tokens printed although a secret is set: %v", p.lines)
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/monitoring/websocket/active-connections/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("minted admin token: %d", resp.StatusCode)
	}
	bad := exec.Command(binary, "token", "-sub", "x")
	bad.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := bad.Run(); err == nil {
		t.Fatal("token without a secret succeeded")
	}
}

func rssKB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

func TestHugeHeadersAndTokens(t *testing.T) {
	t.Parallel()
	p := start(t, []string{"WSGATE_JWT_SECRET=s3cret"})
	before := rssKB(t, p.cmd.Process.Pid)
	// Four concurrent ~1 MiB malformed tokens (CVE-2025-30204's shape).
	tok := "eyJ" + strings.Repeat(".", 1<<19) + strings.Repeat("a", (1<<20)-(1<<19)-8192)
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/ws", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 401 && resp.StatusCode != 431 {
				t.Errorf("1 MiB malformed token: %d, want 401 or 431", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("refusing the tokens took %v", d)
	}
	if grew := rssKB(t, p.cmd.Process.Pid) - before; grew > 64<<10 {
		t.Fatalf("RSS grew by %d KiB", grew)
	}
	// A request head over 1 MiB is refused with 431.
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 1<<20+10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Fatalf("head over 1 MiB: %d, want 431", resp.StatusCode)
	}
}

func TestSlowHeadIsClosed(t *testing.T) {
	t.Parallel()
	p := start(t, []string{"WSGATE_JWT_SECRET=s3cret"})
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n")) // never finished
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if d := time.Since(start); err != nil || d < 9*time.Second || d > 13*time.Second {
		t.Fatalf("incomplete head closed after %v (%v), want about 10s", d, err)
	}
}
