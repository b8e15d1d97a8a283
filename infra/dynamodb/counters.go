package dynamodb

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/core"
)

// dayDelta is an increment of one UTC day's counters.
type dayDelta struct {
	connects, sent, received, closed, durationNs int64
}

func (d *dayDelta) add(o dayDelta) {
	d.connects += o.connects
	d.sent += o.sent
	d.received += o.received
	d.closed += o.closed
	d.durationNs += o.durationNs
}

// increment is one attribute of a day item and what to add to it.
type increment struct {
	attr string
	n    int64
}

// increments lists the day attributes d changes.
func (d dayDelta) increments() []increment {
	var out []increment
	for _, inc := range [...]increment{{"connects", d.connects}, {"sent", d.sent}, {"received", d.received}, {"closed", d.closed}, {"duration_ns", d.durationNs}} {
		if inc.n != 0 {
			out = append(out, inc)
		}
	}
	return out
}

// tally is a set of counter increments not yet written.
type tally struct {
	days map[string]*dayDelta // by UTC day, YYYY-MM-DD
	secs map[int64]int64      // received messages by Unix second
}

func (t *tally) addDay(day string, d dayDelta) {
	if t.days == nil {
		t.days = make(map[string]*dayDelta)
	}
	if t.days[day] == nil {
		t.days[day] = new(dayDelta)
	}
	t.days[day].add(d)
}

func (t *tally) addSec(sec, n int64) {
	if t.secs == nil {
		t.secs = make(map[int64]int64)
	}
	t.secs[sec] += n
}

func (t *tally) merge(o tally) {
	for day, d := range o.days {
		t.addDay(day, *d)
	}
	for sec, n := range o.secs {
		t.addSec(sec, n)
	}
}

func (t *tally) empty() bool { return len(t.days) == 0 && len(t.secs) == 0 }

// trimSecs drops the seconds a minute or more older than the newest: no
// reading at or after the newest can count them (the day totals keep
// them), and a flush after a long outage stays one write per recent second.
func (t *tally) trimSecs() {
	if len(t.secs) <= 60 {
		return
	}
	newest := slices.Max(slices.Collect(maps.Keys(t.secs)))
	maps.DeleteFunc(t.secs, func(sec, _ int64) bool { return sec <= newest-60 })
}

func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func secDay(sec int64) string { return dayOf(time.Unix(sec, 0)) }

// Count implements [core.Store]. Counting directly, an error means nothing
// was counted; batching, Count makes no request and never fails.
func (s *Store) Count(ctx context.Context, n core.Counts, now time.Time) error {
	if n.Received == 0 && n.Sent == 0 {
		return nil
	}
	var t tally
	t.addDay(dayOf(now), dayDelta{sent: n.Sent, received: n.Received})
	if n.Received != 0 {
		t.addSec(now.Unix(), n.Received)
	}
	if s.batch.Load() {
		s.mu.Lock()
		s.pending.merge(t)
		s.mu.Unlock()
		return nil
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.write(ctx, t); err != nil { // one item, one write: all or nothing
		return err
	}
	s.flushCarried(ctx)
	return nil
}

// countCarried counts d for an operation that already happened: a write
// that fails is carried to the next one rather than lost.
func (s *Store) countCarried(ctx context.Context, now time.Time, d dayDelta) {
	var t tally
	t.addDay(dayOf(now), d)
	if !s.batch.Load() {
		rest, err := s.write(ctx, t)
		if err == nil {
			s.flushCarried(ctx)
			return
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "dynamodb: count carried to the next write", slog.String("error", err.Error()))
		t = rest
	}
	s.mu.Lock()
	s.pending.merge(t)
	s.mu.Unlock()
}

// flushCarried writes the counts carried from failed writes, if any.
func (s *Store) flushCarried(ctx context.Context) {
	s.mu.Lock()
	carried := !s.pending.empty()
	s.mu.Unlock()
	if carried {
		_ = s.Flush(ctx) // what fails stays pending
	}
}

// Flush writes the counts kept in memory: the batched ones and those
// carried after a failed write. What it cannot write stays for the next
// flush.
func (s *Store) Flush(ctx context.Context) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	s.mu.Lock()
	t := s.pending
	s.pending = tally{}
	s.mu.Unlock()
	if t.empty() {
		return nil
	}
	t.trimSecs()
	rest, err := s.write(ctx, t)
	if err != nil {
		s.mu.Lock()
		s.pending.merge(rest)
		s.mu.Unlock()
	}
	return err
}

// write writes t, one UpdateItem per day and second, and returns what it
// did not write when it fails.
func (s *Store) write(ctx context.Context, t tally) (tally, error) {
	bySec := map[string][]int64{}
	for sec := range t.secs {
		day := secDay(sec)
		bySec[day] = append(bySec[day], sec)
	}
	days := slices.Sorted(maps.Keys(t.days))
	for day := range bySec {
		if t.days[day] == nil {
			days = append(days, day)
		}
	}
	for i, day := range days {
		shard := int(s.next.Add(1) % uint64(s.shards))
		secs := bySec[day]
		slices.Sort(secs)
		d := t.days[day]
		var err error
		j := 0
		if len(secs) == 0 {
			err = s.writeDay(ctx, day, shard, -1, 0, *d)
		}
		for ; j < len(secs) && err == nil; j++ {
			var dd dayDelta
			if j == 0 && d != nil {
				dd = *d
			}
			err = s.writeDay(ctx, day, shard, secs[j], t.secs[secs[j]], dd)
		}
		if err == nil {
			continue
		}
		// Return what is left: this day from the failed write on, and
		// every later day.
		var rest tally
		if j <= 1 && d != nil {
			rest.addDay(day, *d)
		}
		for _, sec := range secs[max(j-1, 0):] {
			rest.addSec(sec, t.secs[sec])
		}
		for _, day := range days[i+1:] {
			if d := t.days[day]; d != nil {
				rest.addDay(day, *d)
			}
			for _, sec := range bySec[day] {
				rest.addSec(sec, t.secs[sec])
			}
		}
		return rest, err
	}
	return tally{}, nil
}

// write modes of a day item's per-second bucket.
const (
	bucketAdd   = iota // the bucket counts this second: add to it
	bucketReset        // the bucket counts an older second: take it over
	bucketSkip         // the bucket counts a later second: day totals only
)

// writeDay adds d to a day item and, when sec >= 0, n to the bucket of
// second sec, with the conditions of the package doc.
func (s *Store) writeDay(ctx context.Context, day string, shard int, sec, n int64, d dayDelta) error {
	start, _ := time.Parse(time.DateOnly, day)
	names := map[string]string{"#exp": TTLAttribute}
	values := map[string]types.AttributeValue{":exp": epoch(start.Add(48 * time.Hour))}
	var add []string
	for i, inc := range d.increments() {
		names[fmt.Sprintf("#a%d", i)] = inc.attr
		values[fmt.Sprintf(":a%d", i)] = num(inc.n)
		add = append(add, fmt.Sprintf("#a%d :a%d", i, i))
	}
	if sec < 0 {
		if len(add) == 0 {
			return nil
		}
		return s.updateDay(ctx, day, shard, "SET #exp = :exp ADD "+strings.Join(add, ", "), "", names, values)
	}
	k := sec % 60
	names["#r"], names["#t"] = fmt.Sprintf("r%02d", k), fmt.Sprintf("t%02d", k)
	last := &s.lastSec[shard*60+int(k)]
	plan := []int{bucketReset, bucketAdd, bucketSkip}
	if last.Load() == sec {
		plan = []int{bucketAdd, bucketReset, bucketAdd, bucketSkip}
	}
	for _, mode := range plan {
		vals := maps.Clone(values)
		nms := maps.Clone(names)
		var update, cond string
		switch mode {
		case bucketAdd:
			update = "SET #exp = :exp ADD #r :n"
			cond = "#t = :sec"
			vals[":n"], vals[":sec"] = num(n), num(sec)
			if len(add) > 0 {
				update += ", " + strings.Join(add, ", ")
			}
		case bucketReset:
			update = "SET #exp = :exp, #r = :n, #t = :sec"
			cond = "attribute_not_exists(#t) OR #t < :sec"
			vals[":n"], vals[":sec"] = num(n), num(sec)
			if len(add) > 0 {
				update += " ADD " + strings.Join(add, ", ")
			}
		case bucketSkip:
			if len(add) == 0 {
				return nil
			}
			update = "SET #exp = :exp ADD " + strings.Join(add, ", ")
			delete(nms, "#r")
			delete(nms, "#t")
		}
		err := s.updateDay(ctx, day, shard, update, cond, nms, vals)
		if err == nil {
			if mode != bucketSkip {
				last.Store(sec)
			}
			return nil
		}
		if !conditionFailed(err) {
			return err
		}
	}
	return nil
}

func (s *Store) updateDay(ctx context.Context, day string, shard int, update, cond string, names map[string]string, values map[string]types.AttributeValue) error {
	in := &ddb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       dayKey(day, shard),
		UpdateExpression:          &update,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if cond != "" {
		in.ConditionExpression = &cond
	}
	_, err := s.db.UpdateItem(ctx, in)
	if err != nil && !conditionFailed(err) {
		return unavailable("count", err)
	}
	return err
}

// Snapshot implements [core.Store]: one BatchGetItem of the day items of
// today (and, in the minute after midnight, yesterday) and one COUNT Query
// per shard of the "active" index, in parallel. Counts kept in memory are
// flushed first.
func (s *Store) Snapshot(ctx context.Context, now time.Time, maxAge time.Duration) (core.Snapshot, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var out core.Snapshot
	s.mu.Lock()
	unflushed := !s.pending.empty()
	s.mu.Unlock()
	if unflushed {
		if err := s.Flush(ctx); err != nil {
			return out, err
		}
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
		active int64
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for shard := range s.shards {
		wg.Go(func() {
			n, err := s.countActive(ctx, shard, now, maxAge)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			active += n
			mu.Unlock()
		})
	}
	today := dayOf(now)
	nowSec := now.Unix()
	items, err := s.dayItems(ctx, today, secDay(nowSec-59))
	if err != nil {
		fail(err)
	}
	wg.Wait()
	if first != nil {
		return core.Snapshot{}, first
	}
	out.ActiveConnections = active
	for _, item := range items {
		if strings.HasPrefix(getS(item, attrPK), "day#"+today+"#") {
			out.ConnectionsToday += getN(item, "connects")
			out.MessagesSent += getN(item, "sent")
			out.MessagesReceived += getN(item, "received")
			out.ClosedToday += getN(item, "closed")
			out.DurationToday += time.Duration(getN(item, "duration_ns"))
		}
		for k := range 60 {
			if t := getN(item, fmt.Sprintf("t%02d", k)); t > nowSec-60 && t <= nowSec {
				out.MessagesLastMinute += getN(item, fmt.Sprintf("r%02d", k))
			}
		}
	}
	return out, nil
}

// dayItems reads every shard of the given days.
func (s *Store) dayItems(ctx context.Context, days ...string) ([]map[string]types.AttributeValue, error) {
	var keys []map[string]types.AttributeValue
	seen := map[string]bool{}
	for _, day := range days {
		if seen[day] {
			continue
		}
		seen[day] = true
		for shard := range s.shards {
			keys = append(keys, dayKey(day, shard))
		}
	}
	var items []map[string]types.AttributeValue
	for attempt := 0; len(keys) > 0; attempt++ {
		n := min(len(keys), 100)
		out, err := s.db.BatchGetItem(ctx, &ddb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.table: {Keys: keys[:n], ConsistentRead: aws.Bool(true)}},
		})
		if err != nil {
			return nil, unavailable("snapshot", err)
		}
		items = append(items, out.Responses[s.table]...)
		keys = keys[n:]
		if left := out.UnprocessedKeys[s.table].Keys; len(left) > 0 {
			if attempt == 8 {
				return nil, unavailable("snapshot", fmt.Errorf("%d keys unprocessed", len(left)))
			}
			keys = append(keys, left...)
			if err := sleep(ctx, backoff(attempt+3)); err != nil {
				return nil, unavailable("snapshot", err)
			}
		}
	}
	return items, nil
}

// countActive counts the connections of one index shard that connected
// less than maxAge before now (all of them when maxAge is 0).
func (s *Store) countActive(ctx context.Context, shard int, now time.Time, maxAge time.Duration) (int64, error) {
	in := &ddb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(ActiveIndex),
		Select:                    types.SelectCount,
		KeyConditionExpression:    aws.String("active_shard = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(fmt.Sprintf("active#%d", shard))},
	}
	if maxAge > 0 {
		in.KeyConditionExpression = aws.String("active_shard = :s AND connected_at > :cut")
		in.ExpressionAttributeValues[":cut"] = num(now.Add(-maxAge).UnixNano())
	}
	var n int64
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, unavailable("snapshot: active", err)
		}
		n += int64(page.Count)
		if len(page.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
