// Package dynamodb is wsgate's DynamoDB [core.Store] and [core.RateStore]:
// the store of record when several local servers and Lambdas share one
// table. Use [New] to open a [Store] on a table, [CreateTable] to create the
// table (and enable TTL) where it is missing, and [TableSpec] for the one
// definition of the table that template.yaml must match.
//
// The store uses single-item operations only (GetItem, PutItem, UpdateItem
// and DeleteItem with conditions, Query, BatchGetItem, BatchWriteItem):
// no transactions and no PartiQL, so it runs on DynamoDB-API servers that
// lack them (dynalite) and pays no transaction surcharge. It never relies
// on TTL deletion for correctness: every read ignores expired data by its
// own timestamps, and TTL (attribute [TTLAttribute], epoch seconds) only
// reclaims space, as AWS advises since deletion can lag by days.
//
// # Table
//
// One table, partition key "pk" (S) and sort key "sk" (S), and one global
// secondary index "active" (partition "active_shard" S, sort
// "connected_at" N, keys only). Times are Unix nanoseconds unless named
// otherwise. Items:
//
//	pk                      sk       attributes
//	conn#{id}               conn     user, admin, ip, endpoint, connected_at,
//	                                 dead_at, active_shard, ip_slot, subs (SS),
//	                                 rate (L of N), rate_v, expires_at
//	ip#{ip}                 ip       open (M id -> connected_at), hour (L),
//	                                 v, expires_at
//	chan#{channel}          {id}     endpoint, dead_at, expires_at
//	day#{YYYY-MM-DD}#{n}    day      connects, sent, received, closed,
//	                                 duration_ns, r00..r59, t00..t59,
//	                                 expires_at
//
// A connection item carries the "active" index keys: active_shard is
// "active#{n}" with n a hash of the id modulo the shard count.
//
// # Per-IP limits (Admit)
//
// The IP item holds the open connections of the IP (a map from id to
// connect time) and the accept times of its last [core.Limits]
// MaxConnectsPerHour connects, under a version number v. Admit reads it
// with a strongly consistent GetItem, drops the connections older than
// MaxAge (their disconnect was lost: they stop counting here) and the
// accept times older than an hour, decides, and writes the pruned item
// back with PutItem on the condition that v is still the version it read
// (or that the item does not exist), retrying from the read when the
// condition fails. Release removes its id from the map and bumps v in one
// UpdateItem. Guarantee: every admitted connection was checked against a
// state no other write changed between the read and the write, so two
// connects never both take the last slot, on one instance or many, and
// refusals write nothing (refused connects do not count toward the hour).
// Then the connection item is put (on the condition that it does not
// exist) and the day's connects counted. A refusal costs one GetItem. When
// both per-IP limits are off the IP item is not touched.
//
// A connection stops counting against its IP and in active_connections
// once MaxAge has passed since it connected, whether or not its disconnect
// was recorded: the IP map is pruned by age, and the active count is a
// Query on the "active" index for connected_at newer than now - maxAge.
//
// # Subscriptions
//
// One item per (channel, connection), queried by channel with a strongly
// consistent Query. The connection item keeps the set of its channels:
// Subscribe first adds the channel to that set on the condition that the
// connection exists and the set holds it or has fewer than max members,
// then puts the subscription item; Release deletes the items the set
// names. A subscription item carries its connection's dead_at (connect
// time + MaxAge) and Subscribers skips items past it, so a subscription
// that outlived its connection (a crash mid-Release, a Subscribe racing a
// Release) is never a target after MaxAge.
//
// # Counters
//
// Day counters are sharded over [Options].Shards items per UTC day
// (default 8) so that no item takes every write; a write goes to the next
// shard in turn and a reading sums the shards. Each day item also holds a
// ring of 60 per-second buckets (r{k} counts the messages received in the
// second t{k}, k = second mod 60), updated in the same UpdateItem as the
// day totals: ADD to r{k} on the condition t{k} = second, or reset the
// bucket on the condition that t{k} is older. The messages of the last
// minute are the buckets, of today's and (across midnight) yesterday's
// items, whose second lies in (now-60 s, now]: per-second precision.
//
// With [Options].FlushInterval set, counts are kept in memory and written
// every interval (and by Flush, Close and Snapshot, which flushes this
// process's counts before reading), so a long-lived server pays about
// nothing per message; Lambdas count directly. Other instances see batched
// counts up to one interval late.
//
// # Message rate (AllowMessage)
//
// The connection item holds the times of its last limit accepted messages
// (rate) under a version (rate_v). AllowMessage refuses when limit of them
// lie in the minute before now, and otherwise writes the list with the new
// time on the condition that rate_v is unchanged, re-reading and retrying
// when it changed. Guarantee: no more than limit messages are accepted in
// any 60 s, whichever processes handle them. The list and its version are
// cached per process from the last read or write (Lookup fills the cache),
// so a message costs one conditional UpdateItem when no other process
// wrote in between, and a refusal found in the cache costs nothing. A cold
// read takes the whole connection item, and for a second after it Lookup
// answers from that record (a connection's user, admin flag, IP and
// endpoint never change), so a Lambda message that needs the record after
// its rate check does not read it twice.
//
// # Request costs
//
// Measured by TestRequestCost and BenchmarkRequests (requests/op), with
// direct counting (FlushInterval 0, as a Lambda runs):
//
//	Admit         4: GetItem + PutItem (IP), PutItem (connection), UpdateItem (day);
//	              2 when both per-IP limits are off; a refusal 1 GetItem
//	Release       3 + ceil(subscriptions/25): DeleteItem, UpdateItem (IP),
//	              UpdateItem (day), BatchWriteItem; a repeated Release 1
//	Count         1 UpdateItem (2 when its bucket holds another second)
//	AllowMessage  1 UpdateItem when this process holds the window (after its
//	              last AllowMessage or a Lookup), else GetItem + UpdateItem;
//	              a refusal found in the cache 0
//	Subscribe 2, Unsubscribe 2, Subscribers 1 Query per 1 MB page
//	Lookup        1 GetItem; 0 within a second of this process's last read
//	              of the record
//	Snapshot      1 BatchGetItem + Shards COUNT Queries on the index, in parallel
//
// So an inbound message costs 2 (Count + AllowMessage) in a warm process,
// and 3 in a cold one. A Lambda's `$default` reads the record only for
// whoami, subscribe and publish, which the cold read above serves: a ping
// costs 2 requests in a warm Lambda and 3 in a cold one, and other messages
// add what they do (a subscribe's 2, a publish's Query). With
// FlushInterval set (a long-lived local server), Admit takes 3, Release 2,
// Count none, and each flush one UpdateItem per day and per second with
// received messages (at most the last 60 seconds).
// The active count reads the index entries of the open connections, about
// 40 per 4 KB read unit; it is eventually consistent on DynamoDB (a GSI),
// exact on dynalite. The IP item grows by about 25 bytes per allowed
// connection of the two per-IP limits, far below the 400 KB item limit for
// any sensible setting.
//
// # Failures
//
// A Count that returns an error counted nothing. Admit and Release count
// once the connection item is written or deleted; a count they cannot
// write then is kept in memory and added to the next counter write (or
// [Store.Flush], [Store.Close]), so outages do not skew the figures. An IP
// slot that a failed Admit or Release could not give back is retried by
// the next Admit of this process, and stops counting at MaxAge anyway. A
// subscription item that outlives its connection (a crash mid-Release, a
// Subscribe racing a Release) is skipped once its dead_at has passed. A
// write whose answer is lost but which the server applied may be counted
// twice by the SDK's retry: counters are at least once.
//
// Every store call runs under [Options].Timeout (default 2 s), within which
// the SDK's retryer retries throttling and 5xx answers with backoff; every
// failure to reach the table is returned wrapped with [core.ErrUnavailable].
//
// Instances sharing a table must use the same Shards.
package dynamodb
