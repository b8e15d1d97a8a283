package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/wsgate/wsgate/infra/dynamodb"
)

// EndpointEnv names the DynamoDB endpoint the tests use. Unset, TestMain
// starts dynalite from the repository's node_modules, except under CI,
// where the test command must provide it (scripts/dynalite.sh does).
const EndpointEnv = "WSGATE_TEST_DYNAMODB_ENDPOINT"

var endpoint string

func TestMain(m *testing.M) {
	endpoint = os.Getenv(EndpointEnv)
	var stop func()
	if endpoint == "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "FAIL: %s is not set: under CI the DynamoDB store tests need a DynamoDB endpoint; run them through scripts/dynalite.sh\n", EndpointEnv)
			os.Exit(1)
		}
		var err error
		endpoint, stop, err = startDynalite()
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: cannot start dynalite (set %s to use another DynamoDB endpoint): %v\n", EndpointEnv, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

// startDynalite runs dynalite on a free loopback port until stop.
func startDynalite() (string, func(), error) {
	cli, err := findUp("node_modules/dynalite/cli.js")
	if err != nil {
		return "", nil, fmt.Errorf("%w (run npm ci at the repository root)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("node", cli, "--host", "127.0.0.1", "--port", port, "--createTableMs", "0")
	cmd.Stderr = os.Stderr
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("dynalite did not answer within 20 s")
		}
	}
}

func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the test directory", rel)
		}
		dir = parent
	}
}

var ctx = context.Background()

// newClient returns a client of the test endpoint (or of ep, when given).
func newClient(ep string, apiOptions ...func(*middleware.Stack) error) *ddb.Client {
	if ep == "" {
		ep = endpoint
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		APIOptions:  apiOptions,
	}
	return dynamodb.NewClient(cfg, ep)
}

var tableSeq atomic.Int64

// newTable creates a fresh table for t and returns its name.
func newTable(t testing.TB) string {
	t.Helper()
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	name = fmt.Sprintf("t%d_%s", tableSeq.Add(1), name)
	if len(name) > 255 {
		name = name[:255]
	}
	if _, err := dynamodb.CreateTable(ctx, newClient(""), name); err != nil {
		t.Fatalf("CreateTable(%s): %v", name, err)
	}
	return name
}

// newStore opens a store on table; zero opts fields are filled in.
func newStore(t testing.TB, opts dynamodb.Options) *dynamodb.Store {
	t.Helper()
	if opts.Client == nil {
		opts.Client = newClient("")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Table == "" {
		opts.Table = newTable(t)
	}
	s, err := dynamodb.New(ctx, opts)
	if err != nil {
		t.Fatalf("dynamodb.New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// requests counts the requests a client sends, retries included, by
// operation, through an SDK middleware.
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) middleware(st *middleware.Stack) error {
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("wsgateCountRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			r.mu.Lock()
			if r.n == nil {
				r.n = make(map[string]int)
			}
			r.n[awsmiddleware.GetOperationName(ctx)]++
			r.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// take returns the count since the last take, and the operations.
func (r *requests) take() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	var ops []string
	for op, n := range r.n {
		total += n
		ops = append(ops, fmt.Sprintf("%s×%d", op, n))
	}
	r.n = nil
	slices.Sort(ops)
	return total, strings.Join(ops, " ")
}
