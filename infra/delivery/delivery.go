// Package delivery is a [core.Sender] for connections held outside this
// process. A [core.Target] whose Endpoint starts with
// [core.APIGatewayPrefix] is held by API Gateway and reached through its
// Management API (PostToConnection); any other endpoint is a wsgate local
// server, reached through its own `@connections` API with a short-lived
// admin token signed with the shared secret.
//
// Use [New] to build a [Sender] and call [Sender.Send]. A connection found
// gone (API Gateway's GoneException, a peer's 410, or a peer that does not
// answer at all) gives an error wrapping [core.ErrGone], so that the
// gateway cleans it up.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
)

var _ core.Sender = (*Sender)(nil)

// PeerSubject is the sub claim of the tokens a Sender presents to peers.
const PeerSubject = "wsgate-peer"

// tokenLife is the lifetime of a peer token; a token is re-minted when
// less than tokenRenew of it is left.
const (
	tokenLife  = 60 * time.Second
	tokenRenew = 20 * time.Second
)

// Options configure a [Sender]. Zero fields take the documented defaults.
type Options struct {
	// Secret is the HS256 secret shared by the instances
	// (WSGATE_JWT_SECRET). Without it, sends to wsgate peers fail; sends
	// to API Gateway do not need it.
	Secret []byte
	// AdminClaim is the claim that makes a token admin, as
	// WSGATE_ADMIN_CLAIM spells it: "NAME" (set to true) or "NAME=VALUE"
	// (set to the string VALUE). Empty means "is_staff".
	AdminClaim string
	// AWS gives the credentials and region of the Management API clients
	// (config.LoadDefaultConfig's chain). An empty Region is taken from the
	// endpoint's host ({api}.execute-api.{region}.amazonaws.com).
	AWS aws.Config
	// APIGatewayEndpoint, when set (WSGATE_APIGW_ENDPOINT), is where every
	// connection held by API Gateway is reached, whatever endpoint its
	// Lambda recorded: a VPC endpoint, or a stand-in in tests.
	APIGatewayEndpoint string
	// APIGateway further configures each Management API client.
	APIGateway []func(*apigatewaymanagementapi.Options)
	// HTTPClient sends to peers. Nil means a client with a 2 s dial and a
	// 5 s overall timeout, and no proxy.
	HTTPClient *http.Client
	// Timeout bounds one send. Zero means 5 s.
	Timeout time.Duration
	// Clock tells the time of peer tokens. Nil means time.Now.
	Clock func() time.Time
}

// Sender delivers frames to connections held by API Gateway or by other
// wsgate instances. It is safe for concurrent use.
type Sender struct {
	opts Options

	mu      sync.Mutex
	token   string
	expires time.Time
	apigw   map[string]*apigatewaymanagementapi.Client // by endpoint
}

// New returns a Sender.
func New(opts Options) (*Sender, error) {
	if opts.Timeout < 0 {
		return nil, errors.New("delivery: Timeout must not be negative")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if name, _, _ := core.ParseAdminClaim(opts.AdminClaim); name == "" {
		return nil, fmt.Errorf("delivery: admin claim %q has no name", opts.AdminClaim)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   3 * time.Second,
				ResponseHeaderTimeout: 5 * time.Second,
				MaxIdleConns:          100,
				MaxIdleConnsPerHost:   16,
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			},
		}
	}
	return &Sender{opts: opts, apigw: make(map[string]*apigatewaymanagementapi.Client)}, nil
}

// Send implements [core.Sender].
func (s *Sender) Send(ctx context.Context, t core.Target, frame []byte) error {
	if t.ID == "" {
		return errors.New("delivery: target has no connection id")
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if ep, ok := strings.CutPrefix(t.Endpoint, core.APIGatewayPrefix); ok {
		if s.opts.APIGatewayEndpoint != "" {
			ep = s.opts.APIGatewayEndpoint
		}
		return s.postAPIGateway(sendCtx, ep, t.ID, frame)
	}
	return s.peerRequest(ctx, sendCtx, http.MethodPost, t.Endpoint, t.ID, frame)
}

// Close closes a connection held elsewhere: DeleteConnection on API
// Gateway's management API, or DELETE on a wsgate peer's `@connections`
// API. A connection already gone answers an error wrapping [core.ErrGone].
// It lets the Lambda close a connection that broke the protocol (an
// oversized or binary message), as the local server does.
func (s *Sender) Close(ctx context.Context, t core.Target) error {
	if t.ID == "" {
		return errors.New("delivery: target has no connection id")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	ep, ok := strings.CutPrefix(t.Endpoint, core.APIGatewayPrefix)
	if !ok {
		return s.peerRequest(ctx, ctx, http.MethodDelete, t.Endpoint, t.ID, nil)
	}
	if s.opts.APIGatewayEndpoint != "" {
		ep = s.opts.APIGatewayEndpoint
	}
	client, err := s.apiGateway(ep)
	if err != nil {
		return err
	}
	_, err = client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &t.ID})
	var gone *types.GoneException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &gone):
		return fmt.Errorf("delivery: API Gateway: connection %q: %w", t.ID, core.ErrGone)
	default:
		return fmt.Errorf("delivery: API Gateway %s: %w", ep, err)
	}
}

// peerRequest sends one request to a wsgate peer's `@connections` API (POST
// delivers frame). A peer that does not answer within the timeout counts as
// gone, unless the caller's own context (parent) ended first.
func (s *Sender) peerRequest(parent, ctx context.Context, method, endpoint, id string, frame []byte) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("delivery: connection %q has no usable endpoint %q", id, endpoint)
	}
	token, err := s.peerToken()
	if err != nil {
		return err
	}
	target := strings.TrimRight(endpoint, "/") + "/@connections/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(frame))
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set(core.CountedHeader, "1") // the gateway counts what it fans out
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		if parent.Err() != nil {
			return fmt.Errorf("delivery: %s to %s: %w", method, endpoint, err)
		}
		return fmt.Errorf("delivery: peer %s does not answer (%w): %w", endpoint, err, core.ErrGone)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusGone:
		return fmt.Errorf("delivery: peer %s: connection %q: %w", endpoint, id, core.ErrGone)
	default:
		return fmt.Errorf("delivery: peer %s answered %s", endpoint, resp.Status)
	}
}

// peerToken returns the admin token for peers, minting a new one when the
// cached one has less than tokenRenew left.
func (s *Sender) peerToken() (string, error) {
	if len(s.opts.Secret) == 0 {
		return "", errors.New("delivery: no shared secret to authenticate to peers (WSGATE_JWT_SECRET)")
	}
	now := s.opts.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && now.Before(s.expires.Add(-tokenRenew)) {
		return s.token, nil
	}
	name, value := core.AdminClaimFor(s.opts.AdminClaim)
	claims := jwt.MapClaims{
		"sub": PeerSubject,
		"iat": now.Unix(),
		"exp": now.Add(tokenLife).Unix(),
		name:  value,
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.opts.Secret)
	if err != nil {
		return "", fmt.Errorf("delivery: sign peer token: %w", err)
	}
	s.token, s.expires = token, now.Add(tokenLife)
	return token, nil
}

// postAPIGateway posts frame through API Gateway's Management API at
// endpoint (https://{domain}/{stage}).
func (s *Sender) postAPIGateway(ctx context.Context, endpoint, id string, frame []byte) error {
	client, err := s.apiGateway(endpoint)
	if err != nil {
		return err
	}
	_, err = client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: frame})
	var gone *types.GoneException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &gone):
		return fmt.Errorf("delivery: API Gateway: connection %q: %w", id, core.ErrGone)
	default:
		return fmt.Errorf("delivery: API Gateway %s: %w", endpoint, err)
	}
}

// apiGateway returns the cached Management API client of endpoint.
func (s *Sender) apiGateway(endpoint string) (*apigatewaymanagementapi.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.apigw[endpoint]; c != nil {
		return c, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("delivery: bad API Gateway endpoint %q", endpoint)
	}
	cfg := s.opts.AWS.Copy()
	if cfg.Region == "" {
		cfg.Region = regionOf(u.Hostname())
	}
	c := apigatewaymanagementapi.NewFromConfig(cfg, append([]func(*apigatewaymanagementapi.Options){func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, s.opts.APIGateway...)...)
	s.apigw[endpoint] = c
	return c, nil
}

// regionOf reads the region from an execute-api host name, or gives
// us-east-1.
func regionOf(host string) string {
	parts := strings.Split(host, ".")
	for i, p := range parts {
		if p == "execute-api" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return "us-east-1"
}
