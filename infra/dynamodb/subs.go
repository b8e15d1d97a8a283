package dynamodb

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/core"
)

// Subscribe implements [core.Store]: the connection item's channel set
// enforces max under a write condition, then the subscription item is put.
func (s *Store) Subscribe(ctx context.Context, c core.Conn, channel string, max int) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	cond := "attribute_exists(pk)"
	values := map[string]types.AttributeValue{":set": &types.AttributeValueMemberSS{Value: []string{channel}}}
	if max > 0 {
		cond += " AND (attribute_not_exists(subs) OR contains(subs, :ch) OR size(subs) < :max)"
		values[":ch"] = str(channel)
		values[":max"] = num(int64(max))
	}
	out, err := s.db.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       connKey(c.ID),
		UpdateExpression:          aws.String("ADD subs :set"),
		ConditionExpression:       &cond,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if conditionFailed(err) {
		got, err := s.db.GetItem(ctx, &ddb.GetItemInput{
			TableName:            &s.table,
			Key:                  connKey(c.ID),
			ConsistentRead:       aws.Bool(true),
			ProjectionExpression: aws.String("pk"),
		})
		switch {
		case err != nil:
			return unavailable("subscribe", err)
		case got.Item == nil:
			return core.ErrNotFound
		default:
			return core.ErrTooManySubscriptions
		}
	}
	if err != nil {
		return unavailable("subscribe", err)
	}
	item := subKey(channel, c.ID)
	if ep := getS(out.Attributes, "endpoint"); ep != "" {
		item["endpoint"] = str(ep)
	}
	if v, ok := out.Attributes["dead_at"]; ok {
		item["dead_at"] = v
	}
	if v, ok := out.Attributes[TTLAttribute]; ok {
		item[TTLAttribute] = v
	}
	if _, err := s.db.PutItem(ctx, &ddb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return unavailable("subscribe", err)
	}
	return nil
}

// Unsubscribe implements [core.Store]. The subscription item goes first, so
// that a failure half way leaves a harmless stale entry in the channel set
// rather than a subscription the client gave up.
func (s *Store) Unsubscribe(ctx context.Context, id, channel string) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.db.DeleteItem(ctx, &ddb.DeleteItemInput{TableName: &s.table, Key: subKey(channel, id)}); err != nil {
		return unavailable("unsubscribe", err)
	}
	_, err := s.db.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       connKey(id),
		UpdateExpression:          aws.String("DELETE subs :set"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":set": &types.AttributeValueMemberSS{Value: []string{channel}}},
	})
	if err != nil && !conditionFailed(err) {
		return unavailable("unsubscribe", err)
	}
	return nil
}

// Subscribers implements [core.Store] with a strongly consistent Query of
// the channel's items, skipping those past their connection's max age.
func (s *Store) Subscribers(ctx context.Context, channel string) ([]core.Target, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	now := s.now().UnixNano()
	var out []core.Target
	in := &ddb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str("chan#" + channel)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, unavailable("subscribers", err)
		}
		for _, item := range page.Items {
			if dead := getN(item, "dead_at"); dead > 0 && now >= dead {
				continue
			}
			out = append(out, core.Target{ID: getS(item, attrSK), Endpoint: getS(item, "endpoint")})
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// deleteSubs deletes connection id's subscription items, 25 a request.
func (s *Store) deleteSubs(ctx context.Context, id string, channels []string) error {
	for len(channels) > 0 {
		n := min(len(channels), 25)
		reqs := make([]types.WriteRequest, n)
		for i, ch := range channels[:n] {
			reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: subKey(ch, id)}}
		}
		channels = channels[n:]
		if err := s.batchWrite(ctx, reqs); err != nil {
			return err
		}
	}
	return nil
}

// batchWrite writes reqs, retrying the unprocessed ones with backoff.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for attempt := 0; len(reqs) > 0; attempt++ {
		out, err := s.db.BatchWriteItem(ctx, &ddb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.table: reqs},
		})
		if err != nil {
			return unavailable("batch write", err)
		}
		reqs = out.UnprocessedItems[s.table]
		if len(reqs) > 0 {
			if attempt == 8 {
				return unavailable("batch write", fmt.Errorf("%s requests unprocessed", strconv.Itoa(len(reqs))))
			}
			if err := sleep(ctx, backoff(attempt+3)); err != nil {
				return unavailable("batch write", err)
			}
		}
	}
	return nil
}
