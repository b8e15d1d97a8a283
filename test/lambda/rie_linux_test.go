//go:build linux

package lambdatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/internal/dynalite"
)

// RIEVersion is the pinned AWS Lambda Runtime Interface Emulator; the
// test command installs it into bin/ (scripts/deps.sh), or the test does
// when it is missing outside CI.
const RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"

// rieEnv names the path of aws-lambda-rie; default bin/aws-lambda-rie.
const rieEnv = "WSGATE_RIE"

// rieBinary returns the emulator, installing the pinned version into the
// repository's bin/ when it is missing (not under CI, where the test
// command must have installed it).
func rieBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv(rieEnv)
	if path == "" {
		path = filepath.Join(repoRoot(), "bin", "aws-lambda-rie")
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s missing: the test command installs it (scripts/deps.sh) or %s names it", path, rieEnv)
	}
	cmd := exec.Command("go", "install", "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@"+RIEVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(path))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing aws-lambda-rie@%s: %v\n%s", RIEVersion, err, out)
	}
	return path
}

// dynamoEndpoint returns the test command's DynamoDB endpoint, or starts
// dynalite for this test (internal/dynalite).
func dynamoEndpoint(t *testing.T) string {
	t.Helper()
	ep, stop, err := dynalite.Endpoint()
	if err != nil {
		t.Fatalf("DynamoDB for the emulator test: %v", err)
	}
	t.Cleanup(stop)
	return ep
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s", addr)
}

// buildBootstraps builds both functions for this machine with the recipes
// `sam build` uses (scripts/lambda.mk), in parallel; it returns the
// directory of each bootstrap by logical id.
func buildBootstraps(t *testing.T) map[string]string {
	t.Helper()
	dirs := map[string]string{"WebSocketFunction": t.TempDir(), "AdminFunction": t.TempDir()}
	var wg sync.WaitGroup
	errs := make(chan string, len(dirs))
	for id, dir := range dirs {
		wg.Go(func() {
			cmd := exec.Command("make", "--no-print-directory", "-f", filepath.Join("scripts", "lambda.mk"),
				"build-"+id, "ARTIFACTS_DIR="+dir, "LAMBDA_ARCH="+runtime.GOARCH)
			cmd.Dir = repoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Sprintf("make build-%s: %v\n%s", id, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	return dirs
}

// emulator is one bootstrap running under aws-lambda-rie. Invokes are
// serialized: the emulator crashes on concurrent ones.
type emulator struct {
	name string
	url  string
	out  *syncBuffer
	mu   sync.Mutex
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEmulator runs dir/bootstrap under the emulator with env (and
// nothing else of this process's environment but PATH).
func startEmulator(t *testing.T, rie, name, dir string, env []string) *emulator {
	t.Helper()
	p, q := freePort(t), freePort(t)
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", "127.0.0.1:"+p,
		"--runtime-api-address", "127.0.0.1:"+q,
		"./bootstrap")
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_NAME=" + name, "AWS_LAMBDA_FUNCTION_TIMEOUT=30"}, env...)
	e := &emulator{name: name, url: "http://127.0.0.1:" + p + "/2015-03-31/functions/function/invocations", out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = e.out, e.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", rie, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the emulator and its bootstrap
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, clipLog(e.out.String()))
		}
	})
	waitListening(t, "127.0.0.1:"+p)
	return e
}

func clipLog(s string) string {
	if len(s) > 8000 {
		return "…" + s[len(s)-8000:]
	}
	return s
}

// invoke sends one event and decodes the function's response into resp.
func (e *emulator) invoke(t *testing.T, event []byte, resp any) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(event))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke %s: %v", e.name, err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	var fnErr struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &fnErr)
	if r.StatusCode != http.StatusOK || fnErr.ErrorType != "" || fnErr.ErrorMessage != "" {
		t.Fatalf("invoke %s: HTTP %d %s", e.name, r.StatusCode, body)
	}
	if err := json.Unmarshal(body, resp); err != nil {
		t.Fatalf("invoke %s: response %q: %v", e.name, body, err)
	}
}

// captured is one PostToConnection the capture server received.
type captured struct {
	ID      string
	Body    string
	Gone    bool
	Deleted bool // a DeleteConnection rather than a post
}

// captureServer plays API Gateway's management API: it records
// POST {stage}/@connections/{id} bodies and DELETEs, checks they are SigV4-signed, and
// answers 410 GoneException for the ids marked gone.
type captureServer struct {
	url  string
	mu   sync.Mutex
	got  []captured
	gone map[string]bool
}

func newCaptureServer(t *testing.T, stage string) *captureServer {
	t.Helper()
	c := &captureServer{gone: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+stage+"/@connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			http.Error(w, `{"message":"Missing Authentication Token"}`, http.StatusForbidden)
			return
		}
		id := r.PathValue("id")
		c.mu.Lock()
		gone := c.gone[id]
		c.got = append(c.got, captured{ID: id, Body: string(body), Gone: gone})
		c.mu.Unlock()
		if gone {
			w.Header().Set("X-Amzn-ErrorType", "GoneException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusGone)
			_, _ = io.WriteString(w, `{"message":"Gone"}`)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("DELETE /"+stage+"/@connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			http.Error(w, `{"message":"Missing Authentication Token"}`, http.StatusForbidden)
			return
		}
		c.mu.Lock()
		c.got = append(c.got, captured{ID: r.PathValue("id"), Deleted: true})
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c.url = "http://" + l.Addr().String() + "/" + stage
	return c
}

func (c *captureServer) setGone(id string) {
	c.mu.Lock()
	c.gone[id] = true
	c.mu.Unlock()
}

// take returns and forgets what was received.
func (c *captureServer) take() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.got
	c.got = nil
	return g
}

// to returns the one delivered (not gone) body for id among got.
func to(t *testing.T, got []captured, id string) string {
	t.Helper()
	var bodies []string
	for _, c := range got {
		if c.ID == id && !c.Gone {
			bodies = append(bodies, c.Body)
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("deliveries to %s: %q, want exactly one (all: %+v)", id, bodies, got)
	}
	return bodies[0]
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTable creates a fresh table on endpoint as the stack would.
func newTable(t *testing.T, endpoint string) string {
	t.Helper()
	table := "wsgate-lambda-" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dynamodb.CreateTable(ctx, dynamodb.NewClient(testAWS(), endpoint), table); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return table
}

// openStore opens the DynamoDB store on table, counting directly as a
// Lambda does.
func openStore(t *testing.T, endpoint, table string) *dynamodb.Store {
	t.Helper()
	st, err := dynamodb.New(context.Background(), dynamodb.Options{Client: dynamodb.NewClient(testAWS(), endpoint), Table: table, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wsResponse and adminResponse are what the two functions answer.
type (
	wsResponse    = events.APIGatewayProxyResponse
	adminResponse = events.APIGatewayV2HTTPResponse
)
