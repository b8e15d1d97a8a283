// Package core is wsgate's transport-agnostic gateway: it authenticates
// WebSocket connections, enforces the per-IP and per-connection limits,
// speaks the message protocol (ping, whoami, subscribe, unsubscribe, publish)
// and keeps the metrics.
//
// Use [New] to build a [Gateway] from a [Config]. A transport adapter then
//
//   - calls [Gateway.Connect] when a client asks to connect, and maps a
//     refusal to its wire form with [RefusalFor];
//   - calls [Gateway.Message] for every inbound data message and delivers the
//     reply it returns to the same connection;
//   - calls [Gateway.Disconnect] once the connection is gone;
//   - serves the admin API with [Gateway.Authenticate], [Gateway.Metrics] and
//     [Gateway.Publish].
//
// The core reaches the outside world only through the small interfaces it
// declares: [Store] (limits, subscriptions, counters), [Sender] (delivery of a
// frame to a connection, which may answer [ErrGone]) and [Clock]. It imports
// the standard library and the JWT library only.
package core
