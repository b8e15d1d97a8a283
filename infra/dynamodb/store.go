package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/core"
)

var (
	_ core.Store     = (*Store)(nil)
	_ core.RateStore = (*Store)(nil)
	_ API            = (*ddb.Client)(nil)
)

// API is the part of the DynamoDB client the store uses; *dynamodb.Client
// implements it. Tests wrap it to count or fail requests.
type API interface {
	GetItem(ctx context.Context, in *ddb.GetItemInput, opts ...func(*ddb.Options)) (*ddb.GetItemOutput, error)
	PutItem(ctx context.Context, in *ddb.PutItemInput, opts ...func(*ddb.Options)) (*ddb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *ddb.UpdateItemInput, opts ...func(*ddb.Options)) (*ddb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *ddb.DeleteItemInput, opts ...func(*ddb.Options)) (*ddb.DeleteItemOutput, error)
	Query(ctx context.Context, in *ddb.QueryInput, opts ...func(*ddb.Options)) (*ddb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *ddb.BatchGetItemInput, opts ...func(*ddb.Options)) (*ddb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *ddb.BatchWriteItemInput, opts ...func(*ddb.Options)) (*ddb.BatchWriteItemOutput, error)
}

// Options configure a [Store]. Zero fields take the documented defaults.
type Options struct {
	// Client reaches DynamoDB; required. Throttling and 5xx answers are
	// retried by its retryer (the SDK's standard one by default).
	Client API
	// Table names the table; required. Create it with [CreateTable].
	Table string
	// Shards is the number of items each day's counters and the active
	// index are spread over. Zero means 8. Every instance sharing the table
	// must use the same value.
	Shards int
	// Timeout bounds each store call, retries included. Zero means 2 s.
	Timeout time.Duration
	// FlushInterval, when positive, keeps counts in memory and writes them
	// every interval (and on [Store.Flush], [Store.Close] and Snapshot), so
	// that counting costs no request on the hot path. Counts not yet
	// written are lost if the process dies without Close. Zero counts
	// directly, as a Lambda must.
	FlushInterval time.Duration
	// Clock tells the time where the store needs it without being told
	// (Subscribers, which skips subscriptions past their connection's
	// maximum age, and flushes). Nil means time.Now.
	Clock func() time.Time
	// Logger receives the failures the store recovers from by itself
	// (counts carried to a later write, background flushes). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultShards is the shard count when [Options].Shards is zero.
const DefaultShards = 8

// Store is a [core.Store] and [core.RateStore] on one DynamoDB table. It is
// safe for concurrent use. Call [Store.Close] when done with a store that
// batches counts.
type Store struct {
	db      API
	table   string
	shards  int
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	batch   atomic.Bool // counts kept in memory until a flush

	next atomic.Uint64 // round-robin shard of counter writes
	// lastSec[shard*60+k] is the second this process last wrote to bucket
	// k of the shard: it picks which conditional write to try first.
	lastSec []atomic.Int64

	mu      sync.Mutex
	pending tally    // counts to write: batched, or carried after a failure
	repairs []repair // writes to undo after a failed Admit or Release

	rates rateCache

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a store on opts.Table. It makes no request, so it succeeds
// while DynamoDB is unreachable (calls then fail with
// [core.ErrUnavailable]). ctx is the parent of the background flusher's
// context, whose values it keeps; its cancellation does not stop the
// flusher (use Close).
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Client == nil || opts.Table == "" {
		return nil, errors.New("dynamodb: Options need a Client and a Table")
	}
	if opts.Shards < 0 || opts.Shards > 1000 || opts.Timeout < 0 || opts.FlushInterval < 0 {
		return nil, errors.New("dynamodb: Shards must be in 0..1000, Timeout and FlushInterval not negative")
	}
	s := &Store{
		db:      opts.Client,
		table:   opts.Table,
		shards:  opts.Shards,
		timeout: opts.Timeout,
		now:     opts.Clock,
		log:     opts.Logger,
	}
	if s.shards == 0 {
		s.shards = DefaultShards
	}
	if s.timeout == 0 {
		s.timeout = 2 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.lastSec = make([]atomic.Int64, s.shards*60)
	s.next.Store(uint64(time.Now().UnixNano())) // instances start on different shards
	if opts.FlushInterval > 0 {
		s.batch.Store(true)
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.flusher(context.WithoutCancel(ctx), opts.FlushInterval)
	}
	return s, nil
}

// Close stops the background flusher, if any, and writes the counts not
// yet written. The store remains usable afterwards, counting directly, so
// that disconnects recorded after Close during a shutdown are not lost.
func (s *Store) Close(ctx context.Context) error {
	if s.stop != nil {
		s.stopOnce.Do(func() {
			s.batch.Store(false)
			close(s.stop)
			<-s.done
		})
	}
	return s.Flush(ctx)
}

func (s *Store) flusher(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "dynamodb: counts not flushed, kept for the next flush", slog.String("error", err.Error()))
			}
		}
	}
}

// call bounds one store call by the store's timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// unavailable wraps a transport or service error with core.ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("dynamodb: %s: %w: %w", op, core.ErrUnavailable, err)
}

// conditionFailed reports whether err is a failed write condition.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Keys and attribute names; see the package doc.
const (
	attrPK          = "pk"
	attrSK          = "sk"
	attrActiveShard = "active_shard"
	attrConnectedAt = "connected_at"
	// TTLAttribute is the attribute DynamoDB's TTL deletes items by
	// (epoch seconds). Reads never rely on it.
	TTLAttribute = "expires_at"
	// ActiveIndex is the global secondary index of open connections by
	// shard and connect time.
	ActiveIndex = "active"
)

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func connKey(id string) map[string]types.AttributeValue { return key("conn#"+id, "conn") }
func ipKey(ip string) map[string]types.AttributeValue   { return key("ip#"+ip, "ip") }
func subKey(channel, id string) map[string]types.AttributeValue {
	return key("chan#"+channel, id)
}
func dayKey(day string, shard int) map[string]types.AttributeValue {
	return key("day#"+day+"#"+strconv.Itoa(shard), "day")
}

// activeShard is the "active" index partition of connection id.
func (s *Store) activeShard(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return "active#" + strconv.Itoa(int(h.Sum32()%uint32(s.shards)))
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		return parseN(v.Value)
	}
	return 0
}

func parseN(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // not written by this store; read as zero
		return 0
	}
	return n
}

func getBool(item map[string]types.AttributeValue, name string) bool {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func getNList(item map[string]types.AttributeValue, name string) []int64 {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]int64, 0, len(l.Value))
	for _, v := range l.Value {
		if n, ok := v.(*types.AttributeValueMemberN); ok {
			out = append(out, parseN(n.Value))
		}
	}
	return out
}

func nList(ts []int64) types.AttributeValue {
	l := make([]types.AttributeValue, len(ts))
	for i, t := range ts {
		l[i] = num(t)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func epoch(t time.Time) types.AttributeValue { return num(t.Unix()) }

// NewClient returns a DynamoDB client for a store: cfg gives credentials
// and region (config.LoadDefaultConfig's chain), endpoint, when not empty,
// replaces AWS's (a local DynamoDB such as "http://127.0.0.1:8000"), and
// the retryer fits the store's short call timeouts: up to 5 attempts with
// jittered backoff capped at 200 ms, throttling and 5xx included.
func NewClient(cfg aws.Config, endpoint string, optFns ...func(*ddb.Options)) *ddb.Client {
	return ddb.NewFromConfig(cfg, append([]func(*ddb.Options){func(o *ddb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.BaseDelay = 25 * time.Millisecond
			so.MaxBackoff = 200 * time.Millisecond
		})
	}}, optFns...)...)
}
