// Package httpadapter serves the wsgate core over plain HTTP and WebSockets
// (github.com/coder/websocket): the `/ws` endpoint, the admin API, API
// Gateway's `@connections` management API, `/healthz` and the embedded dev
// console. Its [Server] is an [net/http.Handler] that mounts in any Go server.
//
// Importing files alias it as httpadapter, since the folder name would shadow
// net/http:
//
//	import httpadapter "github.com/wsgate/wsgate/adapters/http"
package httpadapter
