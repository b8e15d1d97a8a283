package dynamodb_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/internal/dynalite"
)

var endpoint string

func TestMain(m *testing.M) {
	ep, stop, err := dynalite.Endpoint()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: DynamoDB store tests: %v\n", err)
		os.Exit(1)
	}
	endpoint = ep
	code := m.Run()
	stop()
	os.Exit(code)
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
