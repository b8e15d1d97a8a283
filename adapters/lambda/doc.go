// Package lambdaadapter serves wsgate's core from AWS Lambda: it translates
// aws-lambda-go's API Gateway events into the same core calls the local
// server makes, and nothing more.
//
// Use [NewWebSocket] for the function behind a WebSocket API's `$connect`,
// `$disconnect` and `$default` routes; its [WebSocket.Handle] takes
// [events.APIGatewayWebsocketProxyRequest]:
//
//   - `$connect` reads the token (query `token`, then `Authorization:
//     Bearer`, then the subprotocol pair `bearer, JWT`, whose use the
//     response answers with `Sec-WebSocket-Protocol: bearer`), the client IP
//     (requestContext.identity.sourceIp), Origin and Host, and calls
//     [core.Gateway.Connect]; a refusal is the SPEC's status with the body
//     {"error":CODE,"message":TEXT} (and Retry-After for too_many_connects),
//     which API Gateway returns to the client as the handshake's answer.
//   - `$default` resumes the connection's session from the store, runs
//     [core.Gateway.Message] and posts the reply to the caller's own
//     connection through the management API, with the same [core.Sender]
//     that delivers fan-out.
//   - `$disconnect` records the disconnect.
//
// Use [NewAdmin] for the function behind an HTTP API (payload format 2.0)
// serving the admin API; its [Admin.Handle] takes
// [events.APIGatewayV2HTTPRequest] and routes on method and path, whatever
// the route key, through [adminapi.Handler], which the local server shares.
//
// Subpackage coldstart builds both from the WSGATE_* environment once per
// cold start (cmd/lambda-ws, cmd/lambda-admin).
package lambdaadapter
