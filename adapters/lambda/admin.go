package lambdaadapter

import (
	"context"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/internal/adminapi"
)

// Admin handles an HTTP API's (payload format 2.0) requests for the admin
// API. It is safe for concurrent use.
type Admin struct {
	gw  *core.Gateway
	api *adminapi.Handler
}

// NewAdmin builds the gateway from cfg; cfg.Sender delivers what
// POST /api/publish fans out (infra/delivery). log defaults to
// slog.Default().
func NewAdmin(cfg core.Config, log *slog.Logger) (*Admin, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	gw, err := core.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Admin{gw: gw, api: adminapi.New(gw, log)}, nil
}

// Gateway returns the core gateway the handler serves.
func (a *Admin) Gateway() *core.Gateway { return a.gw }

// Handle serves one request, routed on its method and raw path whatever
// its route key (a stage name that prefixes the path is dropped). It never
// returns an error: every outcome is a status code.
func (a *Admin) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	method := ev.RequestContext.HTTP.Method
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	if st := ev.RequestContext.Stage; st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(path, "/"+st+"/"); ok {
			path = "/" + rest
		}
	}
	body, err := decodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		body = []byte(ev.Body) // not a JSON object either: publish answers 400, after the token checks
	}
	resp := a.api.Serve(ctx, adminapi.Request{
		Method:        strings.ToUpper(method),
		Path:          path,
		Authorization: headers{single: ev.Headers}.get("Authorization"),
		Body:          body,
	})
	out := events.APIGatewayV2HTTPResponse{
		StatusCode: resp.Status,
		Headers:    map[string]string{"Content-Type": adminapi.ContentType},
		Body:       string(resp.Body),
	}
	for k, v := range resp.Header {
		out.Headers[k] = v
	}
	return out, nil
}
