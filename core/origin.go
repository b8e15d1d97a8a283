package core

import (
	"net/url"
	"strings"
)

// OriginPolicy decides which browser origins may connect. A request without
// Origin (a non-browser client) is always allowed, and so is one whose
// Origin host[:port] equals the request's Host.
type OriginPolicy struct {
	// Hosts lists further allowed Origin hosts. "*.example.com" matches any
	// host ending in ".example.com" (never "example.com" itself); "*"
	// matches every host. The Origin's port is ignored when matching.
	Hosts []string
}

// Allowed reports whether a request with this Origin and Host may connect.
func (p OriginPolicy) Allowed(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	name := u.Hostname()
	for _, h := range p.Hosts {
		switch {
		case h == "*":
			return true
		case strings.HasPrefix(h, "*."):
			suffix := h[1:] // ".example.com"
			if len(name) > len(suffix) && strings.EqualFold(name[len(name)-len(suffix):], suffix) {
				return true
			}
		case strings.EqualFold(h, name):
			return true
		}
	}
	return false
}
