package dynamodb

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/core"
)

// errAdmitted: the connection is already in its IP's map.
var errAdmitted = errors.New("dynamodb: connection already admitted")

// Admit implements [core.Store]; see the package doc for the algorithm.
func (s *Store) Admit(ctx context.Context, c core.Conn, lim core.Limits, now time.Time) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	s.runRepairs(ctx)

	ipSlot := lim.MaxConnectionsPerIP > 0
	if lim.MaxConnectionsPerIP > 0 || lim.MaxConnectsPerHour > 0 {
		switch err := s.takeSlot(ctx, c, lim, now); {
		case errors.Is(err, errAdmitted):
			return nil // admitting twice counts once
		case err != nil:
			return err
		}
	}
	_, err := s.db.PutItem(ctx, &ddb.PutItemInput{
		TableName:           &s.table,
		Item:                s.connItem(c, lim, ipSlot),
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err != nil {
		if conditionFailed(err) {
			return nil // already admitted
		}
		// The write may have happened without its answer arriving: undo both.
		s.undoAdmit(ctx, repair{ip: c.IP, id: c.ID, slot: ipSlot, conn: true})
		return unavailable("admit", err)
	}
	s.countCarried(ctx, now, dayDelta{connects: 1})
	return nil
}

// takeSlot records connection c in its IP item if the limits allow it,
// under optimistic concurrency on the item's version.
func (s *Store) takeSlot(ctx context.Context, c core.Conn, lim core.Limits, now time.Time) error {
	nowNs := now.UnixNano()
	for attempt := 0; ; attempt++ {
		out, err := s.db.GetItem(ctx, &ddb.GetItemInput{
			TableName:      &s.table,
			Key:            ipKey(c.IP),
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return unavailable("admit: read IP", err)
		}
		version := getN(out.Item, "v")
		open := map[string]types.AttributeValue{}
		if m, ok := out.Item["open"].(*types.AttributeValueMemberM); ok {
			open = m.Value
		}
		if _, dup := open[c.ID]; dup {
			return errAdmitted
		}
		for id, v := range open {
			t, ok := v.(*types.AttributeValueMemberN)
			if !ok || (lim.MaxAge > 0 && nowNs-parseN(t.Value) >= int64(lim.MaxAge)) {
				delete(open, id) // gone for good: its disconnect was lost
			}
		}
		if lim.MaxConnectionsPerIP > 0 && len(open) >= lim.MaxConnectionsPerIP {
			return core.ErrTooManyConnections
		}
		hour := getNList(out.Item, "hour")
		slices.Sort(hour)
		hour = slices.DeleteFunc(hour, func(t int64) bool { return t <= nowNs-int64(time.Hour) })
		if n := lim.MaxConnectsPerHour; n > 0 && len(hour) >= n {
			wait := time.Duration(hour[len(hour)-n] + int64(time.Hour) - nowNs)
			return &core.RetryError{Err: core.ErrTooManyConnects, After: wait}
		}

		if lim.MaxConnectionsPerIP > 0 {
			open[c.ID] = num(c.ConnectedAt.UnixNano())
		}
		if n := lim.MaxConnectsPerHour; n > 0 {
			hour = append(hour, nowNs)
			slices.Sort(hour)
			hour = hour[max(0, len(hour)-n):]
		} else {
			hour = hour[:0]
		}
		item := ipKey(c.IP)
		item["open"] = &types.AttributeValueMemberM{Value: open}
		item["hour"] = nList(hour)
		item["v"] = num(version + 1)
		item[TTLAttribute] = epoch(now.Add(max(lim.MaxAge, time.Hour) + time.Hour))
		in := &ddb.PutItemInput{TableName: &s.table, Item: item}
		if out.Item == nil {
			in.ConditionExpression = aws.String("attribute_not_exists(pk)")
		} else {
			in.ConditionExpression = aws.String("v = :v")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(version)}
		}
		_, err = s.db.PutItem(ctx, in)
		if err == nil {
			return nil
		}
		if !conditionFailed(err) {
			return unavailable("admit: write IP", err)
		}
		// Another connect or disconnect of this IP won the race: read again.
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return unavailable("admit: contention", err)
		}
	}
}

// backoff is the jittered wait before retry attempt+1 of a lost race.
func backoff(attempt int) time.Duration {
	ceiling := time.Millisecond << min(attempt, 5) // 1 ms .. 32 ms
	return rand.N(ceiling) + time.Millisecond/4
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Store) connItem(c core.Conn, lim core.Limits, ipSlot bool) map[string]types.AttributeValue {
	item := connKey(c.ID)
	for name, v := range map[string]string{"user": c.User, "ip": c.IP, "endpoint": c.Endpoint} {
		if v != "" {
			item[name] = str(v)
		}
	}
	item["admin"] = &types.AttributeValueMemberBOOL{Value: c.Admin}
	item[attrConnectedAt] = num(c.ConnectedAt.UnixNano())
	item[attrActiveShard] = str(s.activeShard(c.ID))
	if ipSlot {
		item["ip_slot"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	life := 24 * time.Hour
	if lim.MaxAge > 0 {
		life = lim.MaxAge
		item["dead_at"] = num(c.ConnectedAt.Add(lim.MaxAge).UnixNano())
	}
	item[TTLAttribute] = epoch(c.ConnectedAt.Add(life + time.Hour))
	return item
}

func connFrom(item map[string]types.AttributeValue) core.Conn {
	return core.Conn{
		ID:          strings.TrimPrefix(getS(item, attrPK), "conn#"),
		User:        getS(item, "user"),
		Admin:       getBool(item, "admin"),
		IP:          getS(item, "ip"),
		ConnectedAt: time.Unix(0, getN(item, attrConnectedAt)).UTC(),
		Endpoint:    getS(item, "endpoint"),
	}
}

// Release implements [core.Store]. Only the call that deletes the
// connection item frees its slot, drops its subscriptions and counts it.
// Once the item is deleted it reports success: a count it could not write
// is carried to the next counter write, an IP slot it could not free is
// retried by the next Admit (and stops counting at MaxAge anyway), and
// subscriptions it could not delete are skipped after MaxAge.
func (s *Store) Release(ctx context.Context, id string, now time.Time) (core.Conn, bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	s.rates.drop(id)
	out, err := s.db.DeleteItem(ctx, &ddb.DeleteItemInput{
		TableName:           &s.table,
		Key:                 connKey(id),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ReturnValues:        types.ReturnValueAllOld,
	})
	if conditionFailed(err) {
		return core.Conn{}, false, nil
	}
	if err != nil {
		return core.Conn{}, false, unavailable("release", err)
	}
	c := connFrom(out.Attributes)
	if getBool(out.Attributes, "ip_slot") {
		if err := s.freeSlot(ctx, c.IP, id); err != nil {
			s.addRepair(repair{ip: c.IP, id: id, slot: true})
			s.log.LogAttrs(ctx, slog.LevelWarn, "dynamodb: IP slot not freed, retried later", slog.String("connection_id", id), slog.String("error", err.Error()))
		}
	}
	s.countCarried(ctx, now, dayDelta{closed: 1, durationNs: int64(max(now.Sub(c.ConnectedAt), 0))})
	if subs, ok := out.Attributes["subs"].(*types.AttributeValueMemberSS); ok {
		if err := s.deleteSubs(ctx, id, subs.Value); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "dynamodb: subscriptions not deleted, skipped after max age", slog.String("connection_id", id), slog.String("error", err.Error()))
		}
	}
	return c, true, nil
}

// freeSlot removes connection id from its IP's map and bumps the version,
// so that an Admit that read the map before fails its condition.
func (s *Store) freeSlot(ctx context.Context, ip, id string) error {
	_, err := s.db.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       ipKey(ip),
		UpdateExpression:          aws.String("REMOVE #open.#id SET v = if_not_exists(v, :zero) + :one"),
		ConditionExpression:       aws.String("attribute_exists(#open)"),
		ExpressionAttributeNames:  map[string]string{"#open": "open", "#id": id},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":one": num(1)},
	})
	if err != nil && !conditionFailed(err) {
		return unavailable("free IP slot", err)
	}
	return nil
}

// repair undoes what a failed Admit may have written.
type repair struct {
	ip, id     string
	slot, conn bool
}

// maxRepairs bounds the repairs kept; the rest heal at MaxAge.
const maxRepairs = 1024

// undoAdmit undoes a failed Admit now, or queues it for the next Admit.
func (s *Store) undoAdmit(ctx context.Context, r repair) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if err := s.doRepair(ctx, r); err != nil {
		s.addRepair(r)
	}
}

func (s *Store) doRepair(ctx context.Context, r repair) error {
	if r.conn {
		if _, err := s.db.DeleteItem(ctx, &ddb.DeleteItemInput{TableName: &s.table, Key: connKey(r.id)}); err != nil {
			return unavailable("undo admit", err)
		}
		r.conn = false
	}
	if r.slot {
		return s.freeSlot(ctx, r.ip, r.id)
	}
	return nil
}

func (s *Store) addRepair(r repair) {
	s.mu.Lock()
	if len(s.repairs) < maxRepairs {
		s.repairs = append(s.repairs, r)
	}
	s.mu.Unlock()
}

// runRepairs retries the queued repairs, keeping those that fail again.
func (s *Store) runRepairs(ctx context.Context) {
	s.mu.Lock()
	rs := s.repairs
	s.repairs = nil
	s.mu.Unlock()
	for i, r := range rs {
		if err := s.doRepair(ctx, r); err != nil {
			for _, r := range rs[i:] {
				s.addRepair(r)
			}
			return
		}
	}
}

// Lookup implements [core.Store]. It also caches the connection's message
// rate window for [Store.AllowMessage].
func (s *Store) Lookup(ctx context.Context, id string) (core.Conn, error) {
	if st, ok := s.rates.get(id); ok && st.conn.ID != "" && time.Since(st.readAt) < recordFresh {
		return st.conn, nil // read by this message's AllowMessage
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &ddb.GetItemInput{
		TableName:      &s.table,
		Key:            connKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return core.Conn{}, unavailable("lookup", err)
	}
	if out.Item == nil {
		return core.Conn{}, core.ErrNotFound
	}
	st := rateFrom(out.Item)
	st.conn, st.readAt = connFrom(out.Item), time.Now()
	s.rates.put(id, st)
	return st.conn, nil
}
