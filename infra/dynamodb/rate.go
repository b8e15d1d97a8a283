package dynamodb

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/core"
)

// AllowMessage implements [core.RateStore] with the sliding log of the
// package doc: exact, and safe under concurrent calls from any number of
// processes. It costs one UpdateItem when this process holds the
// connection's current window (from its last AllowMessage or Lookup),
// otherwise a GetItem more; a refusal found in the cached window costs
// nothing, since other writers can only fill a window further.
func (s *Store) AllowMessage(ctx context.Context, id string, limit int, now time.Time) error {
	if limit <= 0 {
		return nil
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	nowNs := now.UnixNano()
	for attempt := 0; ; attempt++ {
		st, cached := s.rates.get(id)
		if !cached {
			// The whole item: the record rides along in the cache, so that a
			// Lookup right after (a Lambda's whoami, subscribe or publish)
			// costs no second read.
			out, err := s.db.GetItem(ctx, &ddb.GetItemInput{
				TableName:      &s.table,
				Key:            connKey(id),
				ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return unavailable("allow message", err)
			}
			if out.Item == nil {
				return core.ErrNotFound
			}
			st = rateFrom(out.Item)
			st.conn, st.readAt = connFrom(out.Item), time.Now()
			s.rates.put(id, st)
		}
		window := slices.DeleteFunc(slices.Clone(st.times), func(t int64) bool { return nowNs-t >= int64(time.Minute) })
		slices.Sort(window)
		if len(window) >= limit {
			oldest := window[len(window)-limit]
			return &core.RetryError{Err: core.ErrRateLimited, After: time.Duration(oldest + int64(time.Minute) - nowNs)}
		}
		window = append(window, nowNs)
		slices.Sort(window)
		window = window[max(0, len(window)-limit):]
		in := &ddb.UpdateItemInput{
			TableName:                 &s.table,
			Key:                       connKey(id),
			UpdateExpression:          aws.String("SET rate = :rate, rate_v = :next"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rate": nList(window), ":next": num(st.version + 1)},
		}
		if st.version == 0 {
			in.ConditionExpression = aws.String("attribute_exists(pk) AND attribute_not_exists(rate_v)")
		} else {
			in.ConditionExpression = aws.String("rate_v = :v")
			in.ExpressionAttributeValues[":v"] = num(st.version)
		}
		_, err := s.db.UpdateItem(ctx, in)
		if err == nil {
			s.rates.put(id, rateState{version: st.version + 1, times: window, conn: st.conn, readAt: st.readAt})
			return nil
		}
		s.rates.drop(id)
		if !conditionFailed(err) {
			return unavailable("allow message", err)
		}
		// Another process took a message of this connection, or it closed.
		if cached {
			continue // the cache was stale: read and try again at once
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return unavailable("allow message: contention", err)
		}
	}
}

// rateState is a connection's message window as last read or written,
// with the connection's record when it came from a read of the whole item.
type rateState struct {
	version int64   // rate_v
	times   []int64 // accepted message times, Unix nanoseconds
	conn    core.Conn
	readAt  time.Time // when conn was read; zero without conn
}

// recordFresh bounds how long a record read by AllowMessage serves Lookup:
// long enough for the rest of the same message, short enough that a
// connection released elsewhere is soon seen gone.
const recordFresh = time.Second

func rateFrom(item map[string]types.AttributeValue) rateState {
	return rateState{version: getN(item, "rate_v"), times: getNList(item, "rate")}
}

// rateCache keeps the windows this process last saw, a bounded number.
type rateCache struct {
	mu sync.Mutex
	m  map[string]rateState
}

const rateCacheSize = 4096

func (c *rateCache) get(id string) (rateState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[id]
	return st, ok
}

func (c *rateCache) put(id string, st rateState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]rateState)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= rateCacheSize {
		for k := range c.m { // evict an arbitrary entry: a miss costs one read
			delete(c.m, k)
			break
		}
	}
	c.m[id] = st
}

func (c *rateCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
